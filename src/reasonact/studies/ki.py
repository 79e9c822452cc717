"""`reasonact vla study <preset>`: the knowledge-insulation study (issue 17; KI paper, Driess et al. 2025, §5).

One VLM pre-stage run (`vla pretrain`) first; then every variant × seed trains from its backbone on the same
data, steps and batch (`vla train --init-backbone`), keeping the checkpoints of the success-vs-step schedule
(`eval_every`) and the latest; then each run is measured from its run directory: closed-loop success at each
scheduled checkpoint (`vla eval`), success with held-out paraphrased
instructions at the last one (`EnvConfig.instruction="heldout"`), language following at the last one (same
scene, different instruction, open and closed loop: `vla.language_following`), VQA accuracy after action training
(`vqa_eval.evaluate_vqa`, relative to the pre-stage's on the same records), and inference latency. The report
(JSON + Markdown + plots, `ki_report.py`) is written from those files alone, so `--report-only` regenerates it;
`--estimate` times the pieces and projects the study's hours first (`ki_cost.py`).

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

        report = estimate(config)
        print(f"study ≈ {report['study_h']:.1f} h here → {config.out / 'estimate.json'}")
        return report
    if not config.report_only:
        work(config)
    from reasonact.studies.ki_report import write_report

    summary = write_report(config)
    print(f"→ {config.report / 'ki_study.json'}, {config.report / 'ki_study.md'}")
    return summary


__all__ = ["PRESETS", "VARIANTS", "StudyConfig", "study"]
