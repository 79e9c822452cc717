"""The KI study's plan and layout (`reasonact vla study`, `studies/ki.py`): its config and presets, the variants,
each run's training config, and where runs, checkpoints and measurement files live — what the runner
(`ki.py`), the cost model (`ki_cost.py`) and the report (`ki_report.py`) all read."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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


def on_schedule(cfg: StudyConfig, step: int) -> bool:
    """Whether the success-vs-step curve has a point at checkpoint `step` (`eval_every`, and the last step)."""
    return not cfg.eval_every or step % cfg.eval_every == 0 or step == cfg.train.steps


def scheduled_steps(cfg: StudyConfig) -> list[int]:
    """The checkpoint steps a run's success-vs-step curve evaluates: those the trainer writes (every
    `train.save_every` and the last) that are `on_schedule`."""
    saved = [*range(cfg.train.save_every, cfg.train.steps, cfg.train.save_every), cfg.train.steps]
    return [step for step in saved if on_schedule(cfg, step)]


def pretrain_dir(cfg: StudyConfig) -> Path:
    return cfg.out / "pretrain"


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


def run_state(cfg: StudyConfig, run: Path) -> str:
    """'failed', 'measured', 'trained' (finished, measurements pending) or 'untrained' (absent or interrupted)."""
    if (run / "failed.json").exists():
        return "failed"
    if not (run / "eval.json").exists():
        return "untrained"
    return "measured" if all(p.exists() for p in measurement_files(cfg, run)) else "trained"
