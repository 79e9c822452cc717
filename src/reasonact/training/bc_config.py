"""Configuration of `reasonact bc train`: the CNN behaviour-cloning baseline (`reasonact.bc`) on the same
LeRobot datasets as `reasonact vla train`, with the same held-out split and normalisation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from reasonact.bc.model import BCConfig
from reasonact.training.vla_config import EXTRA_DATASETS


@dataclass(frozen=True)
class BCTrainConfig:
    """One BC training run; every field is a `--flag` (e.g. `--steps 4000 --model.horizon 16`)."""

    model: BCConfig = field(default_factory=lambda: BCConfig(image_size=32, channels=(16, 16, 32, 32), hidden=64))
    datasets: tuple[Path, ...] = (Path("runs/datasets/tiny"),)  # LeRobot v3 roots (`reasonact data collect`)
    heldout_per_task: int = 1  # last episodes of every task kept out of training (open-loop evaluation)
    norm: Literal["quantile", "mean_std"] = "quantile"  # state/action normalisation from meta/stats.json
    cameras: tuple[str, ...] = ()  # dataset cameras the policy sees, in order (() = the first in the dataset)
    shift: int = 4  # random-shift augmentation: pad by this many pixels (edge-replicated), crop back (DrQ)
    steps: int = 200  # optimizer steps
    batch_size: int = 32  # frames per step
    lr: float = 1e-3  # peak learning rate
    final_lr: float = 1e-4  # learning rate at the end of the cosine decay
    warmup: int = 20  # linear warmup steps
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    grad_clip: float = 1.0  # max global gradient norm
    ema_decay: float = 0.99  # EMA of the weights, evaluated and saved beside them
    seed: int = 0  # model init; batch s and its augmentation derive from (seed, s)
    log_every: int = 10  # steps between metrics.jsonl records
    save_every: int = 100  # steps between checkpoints (and one at the end)
    eval_samples: int = 256  # held-out frames in the final open-loop evaluation
    threads: int = 1  # torch intra-op threads
    out: Path = Path("runs/bc")  # runs root
    name: str = "tiny"  # run directory name under `out`
    resume: bool = False  # continue `out/name` from its latest checkpoint
    overwrite: bool = False  # replace an existing `out/name`


SMALL = BCTrainConfig(
    model=BCConfig(image_size=64, horizon=8),
    datasets=(Path("runs/datasets/mt10_64"),),
    steps=3000,  # ~25 min here at 0.3–0.5 s per step
    batch_size=64,
    lr=1e-3,
    final_lr=1e-5,
    warmup=200,
    log_every=50,
    save_every=500,
    name="small_mt10",
)

# The baselines of `vla train small-128` / `small-128-2cam` (issue 18: same data, same CPU time): `small` at 128 px
# on the same 50-demo datasets, shifts of ±8 px (the same share of the image as `small`'s ±4 at 64 px).
# Steps = the VLA's 15,000 steps × its CPU seconds per step / the BC's, both measured by one script on the real
# datasets (40 steps after 5 warm-up ones, `time.process_time`, 1 thread, `nice -n 15`, load 4–6 on 2 cores,
# 2026-12-01): VLA 0.183 (1 camera) and 0.297 (2 cameras), BC 0.505 and 1.065 s per batch of 64. So
# 15,000 × 0.183 / 0.505 ≈ 5,400 and 15,000 × 0.297 / 1.065 ≈ 4,200 steps: 46 and 74 CPU minutes, which the
# VLAs spread over 80 min and ~2.7 h of wall time (0.32 and ~0.64 s per step: ~57 % and ~46 % of a core here).
SMALL_128 = dataclasses.replace(
    SMALL,
    model=BCConfig(image_size=128, horizon=8),
    datasets=(Path("runs/datasets/mt10_128"),),
    shift=8,
    steps=5400,
    name="small_mt10_128",
)
SMALL_128_2CAM = dataclasses.replace(
    SMALL_128,
    datasets=(Path("runs/datasets/mt10_128_2cam"),),
    cameras=("corner", "topview"),
    steps=4200,
    name="small_mt10_128_2cam",
)

# The baseline of the shipped `vla train small-128-extra`: `small-128` on its three datasets.
SMALL_128_EXTRA = dataclasses.replace(SMALL_128, datasets=EXTRA_DATASETS, name="small_mt10_128_extra")

PRESETS: dict[str, tuple[str, BCTrainConfig]] = {
    "tiny": ("Seconds: a 32 px CNN on `runs/datasets/tiny` (`reasonact data collect tiny`).", BCTrainConfig()),
    "small": (
        "The MT10 baseline: 64 px CNN (0.8 M parameters) on `reasonact data collect mt10 --episodes-per-task 20 "
        "--env.image-size 64 --out runs/datasets/mt10_64`, 8-step chunks.",
        SMALL,
    ),
    "small-128": (
        "The baseline of `vla train small-128`: `small` at 128 px on its 50-demo data (`runs/datasets/mt10_128`),"
        " 5400 steps = the VLA's CPU time (~46 CPU min, ~80 min here).",
        SMALL_128,
    ),
    "small-128-extra": (
        "The baseline of the shipped `vla train small-128-extra`: `small-128` on its three datasets, 5400 steps.",
        SMALL_128_EXTRA,
    ),
    "small-128-2cam": (
        "The baseline of `vla train small-128-2cam`: `small-128` on both cameras (corner, topview) of"
        " `runs/datasets/mt10_128_2cam`, 4200 steps = the VLA's CPU time (~74 CPU min, ~2.7 h here).",
        SMALL_128_2CAM,
    ),
}
