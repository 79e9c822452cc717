"""`reasonact vla study <preset>`: the knowledge-insulation study (issue 17; KI paper, Driess et al. 2025, §5).

One VLM pre-stage run (`vla pretrain`) first; then every variant × seed trains from its backbone on the same
data, steps and batch (`vla train --init-backbone`), keeping the checkpoints of the success-vs-step schedule
(`eval_every`) and the latest; then each run is measured from its run directory: closed-loop success at each
scheduled checkpoint (`vla eval`), success with held-out paraphrased
instructions at the last one (`EnvConfig.instruction="heldout"`), language following at the last one (same
scene, different instruction, open and closed loop: `vla.language_following`), VQA accuracy after action training
(`vqa_eval.evaluate_vqa`, relative to the pre-stage's on the same records), and inference latency. The report
(JSON + Markdown + plots) is written from those files alone, so `--report-only` regenerates it.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from reasonact.atomic import atomic_write_json, read_json
from reasonact.stats import bootstrap_interval, wilson_interval
from reasonact.training.vla_config import PROMPT_TOKENS, SMALL_MT10, TINY_VLM, VLATrainConfig
from reasonact.training.vlm_pretrain_config import PRESETS as PRETRAIN_PRESETS
from reasonact.training.vlm_pretrain_config import VLMPretrainConfig

# study variant → (VLAConfig.variant, co-trains on VLM records); "no VLM data" is the KI recipe without them. The
# frozen recipe has no text loss and a fixed backbone: VLM rows would only displace its robot samples.
VARIANTS: dict[str, tuple[str, bool]] = {
    "pi0": ("pi0", True),
    "pi05": ("pi05", True),
    "pi0_fast": ("pi0_fast", True),
    "frozen": ("frozen", False),
    "ki": ("ki", True),
    "ki_no_stopgrad": ("ki_no_stopgrad", True),
    "ki_no_fast": ("ki_no_fast", True),
    "ki_no_vlm": ("ki", False),
}
HELDOUT_SPLITS = ("heldout_template", "heldout_scene", "heldout_combo")  # `reasonact data vlm` splits
# --stage → the run states (`run_state`) it works on: untrained runs are trained, trained ones measured
STAGE_WORK = {"all": ("untrained", "trained"), "pretrain": (), "train": ("untrained",), "measure": ("trained",)}


@dataclass(frozen=True)
class StudyConfig:
    """The KI study: a pre-stage, then variants × seeds on one recipe, then the generated report."""

    train: VLATrainConfig = field(default_factory=VLATrainConfig)  # shared recipe (variant/seed/name set per run)
    pretrain: VLMPretrainConfig = field(default_factory=lambda: PRETRAIN_PRESETS["tiny"][1])  # the pre-stage
    planned_variants: tuple[str, ...] = tuple(VARIANTS)  # the study's variants (keys of VARIANTS): the report's rows
    planned_seeds: tuple[int, ...] = (0, 1, 2)  # the study's training seeds per variant (missing ones are reported)
    variants: tuple[str, ...] = ()  # the variants this call trains / measures (() = all planned ones)
    seeds: tuple[int, ...] = ()  # the seeds this call trains / measures (() = all planned ones)
    stage: Literal["all", "pretrain", "train", "measure"] = "all"  # pre-stage only | + training | measure | both
    eval_every: int = 0  # closed-loop points every N steps + the last (0 = every checkpoint; a multiple of save_every)
    vlm_fraction: float = 0.25  # share of each batch from the VLM records, for variants that co-train on them
    tasks: tuple[str, ...] = ()  # closed-loop tasks (() = the suite's)
    suite: str = "mt10"  # closed-loop suite
    episodes: int = 10  # closed-loop episodes per task and checkpoint (seeds from 10,000)
    max_steps: int = 0  # episode time limit (0 = the task's default)
    num_envs: int = 2  # vectorised sub-envs per task in closed-loop evaluation
    asynchronous: bool = True  # one process per sub-env
    vqa_per_split: int = 150  # VLM records per split scored for VQA retention (0 = all)
    latency_iters: int = 20  # timed sample_actions calls per run (after 3 warm-up calls); the median is kept
    follow_episodes: int = 2  # language following: scenes per same-scene task (seeds from 10,000)
    follow_every: int = 10  # language following: frame stride along the expert's episode in each scene
    follow_closed_loop: int = 5  # closed-loop language following: episodes per (task, instruction) (0 = none)
    max_runs: int = 0  # work on at most this many runs that need training or measuring in this call (0 = all)
    device: str = "cpu"  # where training, evaluation and latency run (cpu, cuda, cuda:N, mps)
    out: Path = Path("runs/ki_study")  # study root: pre-stage and run directories
    report: Path = Path("docs/results")  # where ki_study.json / ki_study.md / plots/ are written
    report_only: bool = False  # only regenerate the report from the run directories
    estimate: bool = False  # only time this config's pieces here and project the study's hours (`ki_cost.py`)


TINY_STUDY = StudyConfig(
    train=VLATrainConfig(
        model=TINY_VLM,
        datasets=(Path("runs/datasets/tiny"),),
        vlm=(Path("runs/vlm/tiny/vlm.parquet"),),
        steps=20,
        batch_size=4,
        warmup=2,
        log_every=10,
        save_every=10,
        eval_samples=8,
    ),
    pretrain=dataclasses.replace(PRETRAIN_PRESETS["tiny"][1], steps=20, batch_size=4, warmup=2, save_every=20),
    planned_seeds=(0, 1),
    tasks=("reach-v3",),
    episodes=1,
    max_steps=20,
    num_envs=1,
    asynchronous=False,
    vqa_per_split=16,
    latency_iters=3,
    follow_every=5,
    follow_closed_loop=1,
    out=Path("runs/ki_study_tiny"),
    report=Path("runs/ki_study_tiny/report"),
)
SMALL_STUDY = StudyConfig(
    train=dataclasses.replace(
        SMALL_MT10,
        model=dataclasses.replace(SMALL_MT10.model, max_prompt_tokens=PROMPT_TOKENS),  # VLM questions: ≤ 66 bytes
        vlm=(Path("runs/vlm/mt15/vlm.parquet"),),
    ),
    pretrain=PRETRAIN_PRESETS["small"][1],
    episodes=10,
    max_steps=150,
    num_envs=1,  # in-process: on the shared 2-core CPU 2 sub-env processes took 7.9 s an episode, 1 took 2.0 s
    asynchronous=False,
    eval_every=1000,
    out=Path("runs/ki_study_small"),
)
PRESETS: dict[str, tuple[str, StudyConfig]] = {
    "tiny": ("Minutes: tiny model, 20 steps, 2 seeds, reach-v3 × 1 episode (the test's shape).", TINY_STUDY),
    "small": (
        "MT10 64 px small model (`vla train small` recipe), 3 seeds × 8 variants, 10 episodes per task every 1000 "
        "steps; ~54 h on the 2-core CPU (`--estimate`), so built in pieces (`--seeds`, `--stage train` on a GPU, "
        "`--stage measure`; docs/vla.md). Writes docs/results/ki_study.*.",
        SMALL_STUDY,
    ),
}


def run_name(variant: str, seed: int) -> str:
    return f"{variant}_s{seed}"


def run_dir(cfg: StudyConfig, variant: str, seed: int) -> Path:
    return cfg.out / "runs" / run_name(variant, seed)


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


def on_schedule(cfg: StudyConfig, step: int) -> bool:
    """Whether the success-vs-step curve has a point at checkpoint `step` (`eval_every`, and the last step)."""
    return not cfg.eval_every or step % cfg.eval_every == 0 or step == cfg.train.steps


# ---- stage 1: the pre-stage -----------------------------------------------------------------------------------


def pretrain_dir(cfg: StudyConfig) -> Path:
    return cfg.out / "pretrain"


def run_pretrain(cfg: StudyConfig) -> Path:
    """Train the pre-stage once (resuming if interrupted) and score its VQA: the knowledge before action data."""
    from reasonact.training.vlm_pretrain import pretrain

    path = pretrain_dir(cfg)
    if not (path / "backbone.safetensors").exists():
        pretrain(dataclasses.replace(cfg.pretrain, out=cfg.out, name=path.name, resume=True, device=cfg.device))
    vqa_file(cfg, path, path / "study_vqa.json")
    return path


# ---- stage 2: training runs ----------------------------------------------------------------------------------


def train_config(cfg: StudyConfig, variant: str, seed: int) -> VLATrainConfig:
    model_variant, uses_vlm = VARIANTS[variant]
    return dataclasses.replace(
        cfg.train,
        model=dataclasses.replace(cfg.train.model, variant=model_variant),
        vlm=cfg.train.vlm if uses_vlm else (),
        vlm_fraction=cfg.vlm_fraction if uses_vlm else 0.0,
        seed=seed,
        out=cfg.out / "runs",
        name=run_name(variant, seed),
        resume=True,
        device=cfg.device,
        init_backbone=pretrain_dir(cfg),
    )


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


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint of a run, by step."""
    found = (run_dir / "checkpoints").glob("step_*")
    return sorted((int(p.name.split("_")[1]), p) for p in found if (p / "state.json").exists())


def measurement_files(cfg: StudyConfig, run: Path) -> list[Path]:
    """The files a finished run's measurement writes under run/study/ (its closed loops on the schedule first)."""
    study = run / "study"
    scheduled = [study / f"closed_loop_step_{step:09d}.json" for step, _ in checkpoints(run) if on_schedule(cfg, step)]
    names = ("heldout_instruction", "language_following", "vqa", "latency")
    return scheduled + [study / f"{name}.json" for name in names]


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


def run_state(cfg: StudyConfig, run: Path) -> str:
    """'failed', 'measured', 'trained' (finished, measurements pending) or 'untrained' (absent or interrupted)."""
    if (run / "failed.json").exists():
        return "failed"
    if not (run / "eval.json").exists():
        return "untrained"
    return "measured" if all(p.exists() for p in measurement_files(cfg, run)) else "trained"


# ---- the report ---------------------------------------------------------------------------------------------


def trials(report: dict) -> tuple[int, int]:
    """(successes, episodes) of a `vla eval` report, over its tasks."""
    n = report["episodes"] * len(report["tasks"])
    return round(report["mean_success"] * n), n


def heldout_mean(vqa: dict, key: str = "accuracy") -> float | None:
    """Mean of a VQA metric over the held-out splits present (all splits when none is held out); NaNs skipped."""
    splits = [s for s in HELDOUT_SPLITS if s in vqa] or list(vqa)
    values = [vqa[s][key] for s in splits if np.isfinite(vqa[s].get(key, np.nan))]
    return float(np.mean(values)) if values else None


def ratio(after: float | None, before: float | None) -> float | None:
    return after / before if before and after is not None else None


def variant_summary(cfg: StudyConfig, variant: str, before: dict) -> dict:
    """Per-variant numbers from its run directories over the planned seeds: failed runs are listed and runs not
    measured yet are `missing` (with their state); neither is averaged in."""
    seeds, failed, curves, final, heldout, retention, perplexity, latency = [], [], [], [0, 0], [0, 0], [], [], []
    following: list[dict] = []
    missing: list[dict] = []
    for seed in cfg.planned_seeds:
        run = run_dir(cfg, variant, seed)
        state = run_state(cfg, run)
        if state == "failed":
            failed.append({"seed": seed, **read_json(run / "failed.json")})
            continue
        if state != "measured":
            missing.append({"seed": seed, "state": state})
            continue
        study = run / "study"
        seeds.append(seed)
        curve = sorted(study.glob("closed_loop_step_*.json"))  # measured under any schedule: keep this one's
        reports = [read_json(p) for p in curve if on_schedule(cfg, int(p.stem.rsplit("_", 1)[1]))]
        curves.append({r["step"]: r["mean_success"] for r in reports})
        for total, report in ((final, reports[-1]), (heldout, read_json(study / "heldout_instruction.json"))):
            k, n = trials(report)
            total[0], total[1] = total[0] + k, total[1] + n
        after = read_json(study / "vqa.json")
        retention.append(ratio(heldout_mean(after), heldout_mean(before)))
        perplexity.append(ratio(heldout_mean(after, "caption_perplexity"), heldout_mean(before, "caption_perplexity")))
        latency.append(read_json(study / "latency.json")["median_ms"])
        following.append(read_json(study / "language_following.json"))
    steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    curve = {s: [c[s] for c in curves] for s in steps}
    known = [r for r in retention if r is not None]
    return {
        "final_success": final[0] / final[1] if final[1] else None,
        "success_ci": list(wilson_interval(*final)) if final[1] else None,
        "episodes": final[1],
        "steps_to_reach_pi0_final": None,  # filled in by `summarise` once pi0's final success is known
        "vqa_retention": float(np.mean(known)) if known else None,
        "vqa_retention_per_seed": retention,
        "caption_perplexity_ratio": mean_known(perplexity),
        "heldout_instruction_success": heldout[0] / heldout[1] if heldout[1] else None,
        "heldout_instruction_ci": list(wilson_interval(*heldout)) if heldout[1] else None,
        **pooled_following(following),
        "latency_ms": float(np.median(latency)) if latency else None,
        "seeds": seeds,
        "failed": failed,
        "missing": missing,
        "success_vs_step": {
            str(s): {"mean": float(np.mean(v)), "min": min(v), "max": max(v)} for s, v in curve.items()
        },
    }


def pooled_following(reports: list[dict]) -> dict:
    """Language following of a variant, its seeds pooled: open loop Σ dot / Σ scale over all frames, closed loop
    the mean paired difference over all episode pairs, each with a 95 % bootstrap interval that resamples
    scenes whole (the seeds' runs are measured on the same scenes, so a scene's frames or episodes from every
    run form one cluster); the per-seed values and the mean sensitivity."""
    from reasonact.vla.language_following import closed_loop_scores

    stale = [r["checkpoint"] for r in reports if "frame_dot" in r and "frame_episode" not in r]
    if stale:
        raise ValueError(f"language_following.json: of {stale} predates scene labels (frame_episode); run the study "
                         "without --report-only to measure it again")  # fmt: skip
    dot = [x for r in reports for x in r.get("frame_dot", [])]
    scale = [x for r in reports for x in r.get("frame_scale", [])]
    ci = bootstrap_interval(dot, scale, clusters=[x for r in reports for x in r.get("frame_episode", [])])
    closed = [r["closed_loop"] for r in reports if r.get("closed_loop")]
    pooled = closed_loop_scores([p for c in closed for p in c["paired"]]) if closed else None
    return {
        "language_following": sum(dot) / sum(scale) if sum(scale) > 0 else None,
        "language_following_ci": list(ci) if ci else None,
        "language_following_per_seed": [r["following"] for r in reports],
        "instruction_sensitivity": mean_known([r["sensitivity"] for r in reports]),
        "language_following_closed_loop": pooled["following"] if pooled else None,
        "language_following_closed_loop_ci": pooled["following_ci"] if pooled else None,
        "language_following_closed_loop_per_seed": [c["following"] for c in closed],
        "success_told_own": pooled["success_told_own"] if pooled else None,
        "success_told_other": pooled["success_told_other"] if pooled else None,
    }


def mean_known(values: list[float | None]) -> float | None:
    """Mean over seeds; None when a seed has no value (or there is none)."""
    return float(np.mean(values)) if values and None not in values else None


def summarise(cfg: StudyConfig) -> dict:
    """The study's JSON from the run directories (steps_to_reach_pi0_final against pi0's final mean success)."""
    pre = pretrain_dir(cfg) / "study_vqa.json"
    before = read_json(pre) if pre.exists() else {}
    variants = {v: variant_summary(cfg, v, before) for v in cfg.planned_variants}
    target = variants.get("pi0", {}).get("final_success")
    for summary in variants.values():
        reached = [int(s) for s, v in summary["success_vs_step"].items() if target is not None and v["mean"] >= target]
        summary["steps_to_reach_pi0_final"] = min(reached) if reached else None
    return {
        "pretrain_vqa_accuracy": heldout_mean(before),
        "pretrain_caption_perplexity": heldout_mean(before, "caption_perplexity"),
        "pi0_final_success": target,
        "steps": cfg.train.steps,
        "batch_size": cfg.train.batch_size,
        "suite": cfg.suite,
        "tasks": list(cfg.tasks),
        "episodes_per_checkpoint": cfg.episodes,
        "eval_every": cfg.eval_every,
        "vlm_fraction": cfg.vlm_fraction,
        "planned_runs": len(cfg.planned_variants) * len(cfg.planned_seeds),
        "missing_runs": [run_name(v, m["seed"]) for v, s in variants.items() for m in s["missing"]],
        "variants": variants,
        "claims": claims(variants, cfg.train.steps),
    }


# The least language following the study counts as following, in either measure: a tenth of the experts'
# instruction-induced switch open loop, one more success in ten episode pairs closed loop. An interval that
# merely excludes 0 is reached by text that barely moves the action (the 20-step study's pi0-FAST read 0.004
# [0.00, 0.01] open loop, docs/vla.md), a change no rollout would show; the claim is about behaviour.
MIN_FOLLOWING = 0.1


def claims(v: dict, steps: int) -> dict[str, str]:
    """Each target of issue 17 → 'reproduced', 'not reproduced' or 'not measurable' (with the numbers), marked
    '(partial: …)' while a variant it compares has planned seeds not measured yet."""

    def get(name: str, key: str):
        return v.get(name, {}).get(key)

    def verdict(ok: bool | None, detail: str, *names: str) -> str:
        partial = [f"{n} lacks seeds {[m['seed'] for m in get(n, 'missing')]}" for n in names if get(n, "missing")]
        status = "not measurable" if ok is None else "reproduced" if ok else "not reproduced"
        return status + (f" (partial: {'; '.join(partial)})" if partial else "") + f": {detail}"

    reach = get("ki", "steps_to_reach_pi0_final")
    retention_ki, retention_pi0 = get("ki", "vqa_retention"), get("pi0", "vqa_retention")
    lat_ki, lat_pi0, lat_fast = get("ki", "latency_ms"), get("pi0", "latency_ms"), get("pi0_fast", "latency_ms")
    frozen, ki = get("frozen", "final_success"), get("ki", "final_success")

    def follows(key: str, what: str) -> str:
        """KI keeps more language following than π0 (`key`): KI's interval clears MIN_FOLLOWING and lies above
        π0's; not measurable while neither interval clears it."""
        value_ki, value_pi0 = (get(name, key) for name in ("ki", "pi0"))
        ci_ki, ci_pi0 = (get(name, key + "_ci") for name in ("ki", "pi0"))
        clear = [ci is not None and ci[0] >= MIN_FOLLOWING for ci in (ci_ki, ci_pi0)]
        ok = None if ci_ki is None or ci_pi0 is None or not any(clear) else clear[0] and ci_ki[0] > ci_pi0[1]
        return verdict(ok, f"{what} KI {with_ci(value_ki, ci_ki)}, pi0 {with_ci(value_pi0, ci_pi0)} (target: "
                       f"KI's interval ≥ {MIN_FOLLOWING:g} and above pi0's; not measurable when neither interval "
                       f"clears {MIN_FOLLOWING:g})", "ki", "pi0")  # fmt: skip

    return {
        "ki_trains_fast": verdict(None if not get("pi0", "final_success") or ki is None else
                                  reach is not None and reach <= steps / 2,
                                  f"KI reaches pi0's final success ({fmt(get('pi0', 'final_success'))}; a target of "
                                  f"0 is not measurable) at step {reach} of {steps} (target ≤ {steps / 2:g})",
                                  "ki", "pi0"),
        "ki_keeps_knowledge": verdict(None if retention_ki is None or retention_pi0 is None else
                                      retention_ki >= 0.9 and retention_pi0 < retention_ki,
                                      f"VQA retention KI {fmt(retention_ki)}, pi0 {fmt(retention_pi0)} "
                                      "(target KI ≥ 0.9 > pi0; not measurable when the pre-stage scores 0)",
                                      "ki", "pi0"),
        "ki_runs_fast": verdict(None if None in (lat_ki, lat_pi0, lat_fast) else
                                lat_ki <= 1.2 * lat_pi0 and lat_fast >= 2 * lat_ki,
                                f"latency ms KI {fmt(lat_ki, 1)}, pi0 {fmt(lat_pi0, 1)}, pi0_fast {fmt(lat_fast, 1)} "
                                "(target KI ≤ 1.2 × pi0, pi0_fast ≥ 2 × KI)", "ki", "pi0", "pi0_fast"),
        "ki_keeps_language_following": follows("language_following", "open-loop language following (1 = the "
                                               "action changes with the instruction as the experts' does, 0 = the "
                                               "text is ignored)"),
        "ki_keeps_language_following_closed_loop": follows("language_following_closed_loop", "closed-loop "
                                                           "language following (success told its own task − told "
                                                           "a same-scene partner's)"),
        "frozen_fails": verdict(None if frozen is None or ki is None else frozen < ki,
                                f"final success frozen {fmt(frozen)}, KI {fmt(ki)} (target frozen < KI)",
                                "frozen", "ki"),
    }  # fmt: skip


def fmt(x, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def with_ci(x: float | None, ci: list[float] | None) -> str:
    return fmt(x) + ("" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]")


def table_row(name: str, s: dict) -> str:
    reach = s["steps_to_reach_pi0_final"]
    failed = ", ".join(f"{f['seed']}@{f['step']}" for f in s["failed"]) or "—"
    missing = ", ".join(f"{m['seed']} ({m['state']})" for m in s["missing"]) or "—"
    cells = [name, with_ci(s["final_success"], s["success_ci"]),
             "—" if reach is None else str(reach), fmt(s["vqa_retention"]), fmt(s["caption_perplexity_ratio"]),
             fmt(s["heldout_instruction_success"]),
             with_ci(s["language_following"], s["language_following_ci"]),
             with_ci(s["language_following_closed_loop"], s["language_following_closed_loop_ci"]),
             fmt(s["latency_ms"], 1), str(s["seeds"]), failed, missing]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def partial_note(summary: dict) -> str:
    """The report's line on completeness: all planned runs measured, or which are not (never silently partial)."""
    missing, planned = summary["missing_runs"], summary["planned_runs"]
    if not missing:
        return f"Complete: all {planned} planned runs are measured or failed."
    return (f"**Partial study: {len(missing)} of {planned} planned runs are not measured yet** ({', '.join(missing)}); "
            "every number below is over the measured seeds listed in its row, and claims that compare an "
            "incomplete variant say so.")  # fmt: skip


def write_report(cfg: StudyConfig) -> dict:
    """ki_study.json, ki_study.md and plots/ under `cfg.report`, from the run directories only."""
    summary = summarise(cfg)
    plots = plot(summary, cfg.report / "plots")
    atomic_write_json(cfg.report / "ki_study.json", summary)
    lines = [
        "# Knowledge-insulation study (generated by `reasonact vla study`)",
        "",
        f"{summary['steps']} steps at batch {summary['batch_size']}, every variant from the same pre-stage backbone "
        f"(VQA accuracy {fmt(summary['pretrain_vqa_accuracy'])}, caption perplexity "
        f"{fmt(summary['pretrain_caption_perplexity'])}); closed loop on {summary['suite']} "
        f"{', '.join(summary['tasks']) or '(all tasks)'}, {summary['episodes_per_checkpoint']} episodes per task "
        "and checkpoint; success CIs are 95 % Wilson over seeds × episodes, language-following CIs 95 % bootstraps "
        f"over scenes (a claim needs ≥ {MIN_FOLLOWING:g}). Failed runs are listed, never averaged in.",
        "",
        partial_note(summary),
        "",
        "| variant | final success [95% CI] | steps to π0's final | VQA retention | caption ppl after / before | "
        "held-out instructions | language following [95% CI] | closed-loop following [95% CI] | latency ms | "
        "seeds | failed (seed@step) | missing (seed, state) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [table_row(name, s) for name, s in summary["variants"].items()]
    lines += ["", "## Claims (issue 17 targets)", ""]
    lines += [f"* **{k}**: {text}" for k, text in summary["claims"].items()]
    lines += ["", *(f"![{p.stem}](plots/{p.name})" for p in plots), ""]
    (cfg.report / "ki_study.md").write_text("\n".join(lines))
    return summary


def plot(summary: dict, out: Path) -> list[Path]:
    """Success vs step (mean over seeds, min–max band), VQA retention, language following and latency bars
    → PNG paths."""
    from reasonact.plotting import pyplot

    plt = pyplot()
    out.mkdir(parents=True, exist_ok=True)
    variants = summary["variants"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, s in variants.items():
        curve = s["success_vs_step"]
        if curve:
            steps = [int(k) for k in curve]
            ax.plot(steps, [c["mean"] for c in curve.values()], marker="o", label=name)
            ax.fill_between(steps, [c["min"] for c in curve.values()], [c["max"] for c in curve.values()], alpha=0.2)
    ax.set(xlabel="training step", ylabel="closed-loop success", ylim=(-0.05, 1.05), title="success vs step")
    if ax.lines:
        ax.legend(fontsize=7)
    paths = [out / "success_vs_step.png"]
    fig.savefig(paths[0], dpi=100, bbox_inches="tight")
    plt.close(fig)
    bars = (("vqa_retention", "VQA accuracy after / pre-stage"), ("language_following", "share of the experts' change"),
            ("language_following_closed_loop", "success told own − told other"),
            ("latency_ms", "ms per sample_actions"))  # fmt: skip
    for key, label in bars:
        fig, ax = plt.subplots(figsize=(6, 3))
        names = [n for n in variants if variants[n][key] is not None]  # unmeasured: no bar, not a bar at 0
        ax.bar(names, [variants[n][key] for n in names])
        ax.set(ylabel=label, title=key)
        ax.tick_params(axis="x", rotation=45)
        paths.append(out / f"{key}.png")
        fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
        plt.close(fig)
    return paths


def study(config: StudyConfig) -> dict:
    """Run (or resume) the KI study: pre-stage, variants × seeds, measurements, report; see docs/vla.md."""
    check_config(config)
    torch.set_num_threads(config.train.threads)
    if config.estimate:
        from reasonact.studies.ki_cost import estimate

        report = estimate(config)
        print(f"study ≈ {report['study_h']:.1f} h here → {config.out / 'estimate.json'}")
        return report
    if not config.report_only:
        work(config)
    summary = write_report(config)
    print(f"→ {config.report / 'ki_study.json'}, {config.report / 'ki_study.md'}")
    return summary


__all__ = ["PRESETS", "VARIANTS", "StudyConfig", "study"]
