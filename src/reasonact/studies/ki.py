"""`reasonact vla study <preset>`: the knowledge-insulation study (issue 17; KI paper, Driess et al. 2025, §5).

One VLM pre-stage run (`vla pretrain`) first; then every variant × seed trains from its backbone on the same
data, steps and batch (`vla train --init-backbone`), keeping the checkpoints of the success-vs-step schedule
(`eval_every`) and the latest; then each run is measured from its run directory: closed-loop success at each
scheduled checkpoint (`vla eval`), success with held-out paraphrased
instructions at the last one (`EnvConfig.instruction="heldout"`), language following at the last one (same
scene, different instruction, open and closed loop: `vla.language_following`), VQA accuracy after action training
(`vqa_eval.evaluate_vqa`, relative to the pre-stage's on the same records), and inference latency. The report
(JSON + Markdown + plots, `ki_report.py`) is written from those files alone, so `--report-only` regenerates it;
`--estimate` times the pieces and projects the study's hours first (`ki_cost.py`). The plan (config, presets,
variants, run layout) is `ki_config.py`, which the runner, the report and the cost model all read.

    out/pretrain/                      the pre-stage run (+ study_vqa.json: its VQA accuracy, the "before")
    out/runs/<variant>_s<seed>/        a `vla train` run; failed.json when its loss went non-finite
        study/closed_loop_step_<n>.json   `vla eval` report of checkpoint n
        study/heldout_instruction.json    the last checkpoint with held-out paraphrases
        study/language_following.json     the last checkpoint given other same-scene tasks' instructions
                                          (+ language_following/closed_loop/: its closed-loop harness runs)
        study/vqa.json  study/latency.json
    report/ki_study.json  ki_study.md  plots/{success_vs_step,vqa_retention,language_following{,_closed_loop},
                                                latency_ms}.png

Scripted and resumable: every step writes its file atomically and is skipped when the file exists; a run
interrupted mid-training resumes from its latest checkpoint (the trainer's exact resume); a run whose loss goes
non-finite is recorded with its step in failed.json and left out of every mean. A study is built up in pieces
(`--variants`, `--seeds`, `--stage pretrain|train|measure`, `--max-runs`, across sessions and machines: runs are plain
safetensors + JSON); the report covers the planned runs and lists the ones not finished yet.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from reasonact.atomic import atomic_write_json, read_json
from reasonact.studies.ki_config import (
    PRESETS,
    VARIANTS,
    StudyConfig,
    checkpoints,
    on_schedule,
    pretrain_dir,
    run_dir,
    run_state,
    train_config,
)

# --stage → the run states (`run_state`) it works on: untrained runs are trained, trained ones measured
STAGE_WORK = {"all": ("untrained", "trained"), "pretrain": (), "train": ("untrained",), "measure": ("trained",)}


def selected_runs(cfg: StudyConfig) -> list[tuple[str, int]]:
    """(variant, seed) of the runs this call works on: `variants` × `seeds`, each () meaning all planned ones."""
    return [(v, s) for v in cfg.variants or cfg.planned_variants for s in cfg.seeds or cfg.planned_seeds]


def check_config(cfg: StudyConfig) -> None:
    """Clear errors for unknown variants, a selection outside the plan, an off-checkpoint schedule and a device this
    machine lacks (before anything is written)."""
    from reasonact.devices import parse_device

    unknown = [v for v in cfg.planned_variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"planned_variants: expected names from {list(VARIANTS)}, received {unknown}")
    for name, chosen, planned in (("variants", cfg.variants, cfg.planned_variants),
                                  ("seeds", cfg.seeds, cfg.planned_seeds)):  # fmt: skip
        outside = [x for x in chosen if x not in planned]
        if outside:
            raise ValueError(f"{name}: {outside} are not in the study's planned_{name} {list(planned)}; add them "
                             f"there (--planned-{name}) so the report accounts for them")  # fmt: skip
    if cfg.eval_every < 0 or cfg.eval_every % cfg.train.save_every:
        raise ValueError(f"eval_every: expected 0 or a multiple of train.save_every ({cfg.train.save_every}), "
                         f"received {cfg.eval_every}")  # fmt: skip
    if not cfg.report_only:
        parse_device(cfg.device)


# ---- stage 1: the pre-stage -----------------------------------------------------------------------------------


def run_pretrain(cfg: StudyConfig) -> Path:
    """Train the pre-stage once (resuming if interrupted) and score its VQA: the knowledge before action data."""
    from reasonact.training.vlm_pretrain import pretrain

    path = pretrain_dir(cfg)
    if not (path / "backbone.safetensors").exists():
        pretrain(dataclasses.replace(cfg.pretrain, out=cfg.out, name=path.name, resume=True, device=cfg.device))
    vqa_file(cfg, path, path / "study_vqa.json")
    return path


# ---- stage 2: training runs ----------------------------------------------------------------------------------


def train_run(cfg: StudyConfig, variant: str, seed: int) -> None:
    """Train one run to the end unless it is finished (eval.json) or failed (failed.json).

    A non-finite loss stops the run: failed.json records the step and the error, and the study goes on."""
    from reasonact.training.vla_trainer import Trainer

    path = run_dir(cfg, variant, seed)
    if (path / "eval.json").exists() or (path / "failed.json").exists():
        return
    trainer = Trainer(train_config(cfg, variant, seed))
    trainer.run.keep_last = 1  # the latest, to resume from; and the success-vs-step schedule's checkpoints
    trainer.run.keep_every = cfg.eval_every or cfg.train.save_every
    try:
        trainer.fit()
    except FloatingPointError as error:
        atomic_write_json(path / "failed.json", {"step": trainer.step, "error": str(error)})
    finally:
        trainer.dist.close()


# ---- stage 3: measurements from the run directories -----------------------------------------------------------


def closed_loop(cfg: StudyConfig, checkpoint: Path, out: Path, instruction: str = "train") -> dict:
    """`vla eval` of one checkpoint (no expert, no GIFs) → its report, cached in `out`."""
    from reasonact.vla.evaluate import VLAEvalConfig, run

    if out.exists():
        return read_json(out)
    config = VLAEvalConfig(checkpoint=checkpoint, suite=cfg.suite, tasks=cfg.tasks, episodes=cfg.episodes,
                           max_steps=cfg.max_steps, instruction=instruction, num_envs=cfg.num_envs,
                           asynchronous=cfg.asynchronous, videos_per_task=0, expert=False, out=out,
                           device=cfg.device)  # fmt: skip
    return run(config)


def vqa_file(cfg: StudyConfig, run_dir: Path, out: Path) -> dict:
    """VQA accuracy per split of a run's EMA weights on the pre-stage's records (`evaluate_vqa`), cached."""
    from reasonact.vla.vqa_eval import evaluate_vqa, load_pretrained, load_records

    if out.exists():
        return read_json(out)
    model = load_pretrained(run_dir).to(cfg.device)
    records = load_records(cfg.pretrain.records, model.config.vision.image_size)
    with torch.no_grad():
        report = evaluate_vqa(model, records, max_per_split=cfg.vqa_per_split)
    atomic_write_json(out, report)
    return report


def following_file(cfg: StudyConfig, run_dir: Path, out: Path) -> dict:
    """Language following of a run's last checkpoint (`vla.language_following`: open loop, and closed loop with
    `follow_closed_loop` episodes) on the study's tasks that share a scene with another MT10 task, cached (a
    file from before scenes were recorded, or without a wanted closed loop, is measured again); `following` is
    null when no task has a partner (e.g. a LIBERO suite)."""
    from reasonact.vla.evaluate import select_tasks
    from reasonact.vla.language_following import FollowConfig, follow, partners

    if out.exists():
        cached = read_json(out)
        if "frame_episode" in cached and (cached.get("closed_loop") or not cfg.follow_closed_loop):
            return cached
    tasks = select_tasks(cfg.suite, cfg.tasks)
    if not any(partners(t) for t in tasks):
        report = {"following": None, "sensitivity": None, "closed_loop": None, "tasks": [], "skipped": tasks}
        atomic_write_json(out, report)
        return report
    config = FollowConfig(checkpoint=run_dir, suite=cfg.suite, tasks=cfg.tasks, episodes=cfg.follow_episodes,
                          every=cfg.follow_every, closed_loop=cfg.follow_closed_loop > 0,
                          closed_loop_episodes=max(cfg.follow_closed_loop, 1), closed_loop_max_steps=cfg.max_steps,
                          num_envs=cfg.num_envs, asynchronous=cfg.asynchronous, device=cfg.device,
                          out=out)  # fmt: skip
    return follow(config)


def latency_file(cfg: StudyConfig, run_dir: Path, out: Path) -> dict:
    """Median ms of one `sample_actions` call (π0-FAST: `sample_fast`) on one real env observation, batch 1."""
    from reasonact.envs import EnvConfig, expand_tasks, make_env
    from reasonact.vla.policy import load_checkpoint

    if out.exists():
        return read_json(out)
    policy = load_checkpoint(run_dir)
    model = policy.model.to(cfg.device)
    task = (cfg.tasks or tuple(expand_tasks((cfg.suite,))))[0]
    env = make_env(EnvConfig(task=task, image_size=policy.spec.image_size, cameras=policy.spec.cameras))
    obs = policy.transforms.env_observation(env.reset(seed=0)[0]).to(model_device(model))
    env.close()
    times = []
    with torch.no_grad():
        for i in range(3 + cfg.latency_iters):
            start = time.perf_counter()
            model.sample_actions(obs)
            if model_device(model).type == "cuda":
                torch.cuda.synchronize()
            if i >= 3:
                times.append(time.perf_counter() - start)
    report = {"median_ms": 1e3 * float(np.median(times)), "min_ms": 1e3 * min(times), "calls": len(times),
              "device": cfg.device, "threads": torch.get_num_threads()}  # fmt: skip
    atomic_write_json(out, report)
    return report


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def measure_run(cfg: StudyConfig, run: Path) -> None:
    """Every measurement of one finished run, each skipped when its file exists."""
    study = run / "study"
    steps = [(step, path) for step, path in checkpoints(run) if on_schedule(cfg, step)]
    for step, path in steps:
        closed_loop(cfg, path, study / f"closed_loop_step_{step:09d}.json")
    closed_loop(cfg, steps[-1][1], study / "heldout_instruction.json", instruction="heldout")
    following_file(cfg, run, study / "language_following.json")
    vqa_file(cfg, run, study / "vqa.json")
    latency_file(cfg, run, study / "latency.json")


# ---- the study ------------------------------------------------------------------------------------------


def work(cfg: StudyConfig) -> None:
    """The pre-stage, then the selected runs' training and measurement (`stage`), at most `max_runs` of them."""
    if cfg.stage != "measure" or (pretrain_dir(cfg) / "backbone.safetensors").exists():
        run_pretrain(cfg)
    done = 0
    for variant, seed in selected_runs(cfg):
        run = run_dir(cfg, variant, seed)
        if run_state(cfg, run) not in STAGE_WORK[cfg.stage]:
            continue
        if cfg.max_runs and done >= cfg.max_runs:
            print(f"max_runs: stopped after {done} runs; run the same command again to continue")
            return
        done += 1
        if cfg.stage != "measure":
            train_run(cfg, variant, seed)
        if cfg.stage != "train" and run_state(cfg, run) == "trained":
            measure_run(cfg, run)


def study(config: StudyConfig) -> dict:
    """Run (or resume) the KI study: pre-stage, variants × seeds, measurements, report; see docs/vla.md."""
    check_config(config)
    torch.set_num_threads(config.train.threads)
    if config.estimate:
        from reasonact.studies.ki_cost import estimate

        report = estimate(config, closed_loop)
        print(f"study ≈ {report['study_h']:.1f} h here → {config.out / 'estimate.json'}")
        return report
    if not config.report_only:
        work(config)
    from reasonact.studies.ki_report import write_report

    summary = write_report(config)
    print(f"→ {config.report / 'ki_study.json'}, {config.report / 'ki_study.md'}")
    return summary


__all__ = ["PRESETS", "VARIANTS", "StudyConfig", "study"]
