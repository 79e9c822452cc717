"""Configuration of `reasonact bc train`: the CNN behaviour-cloning baseline (`reasonact.bc`) on the same
LeRobot datasets as `reasonact vla train`, with the same held-out split and normalisation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from reasonact.bc.model import BCConfig


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

PRESETS: dict[str, tuple[str, BCTrainConfig]] = {
    "tiny": ("Seconds: a 32 px CNN on `runs/datasets/tiny` (`reasonact data collect tiny`).", BCTrainConfig()),
    "small": (
        "The MT10 baseline: 64 px CNN (0.8 M parameters) on `reasonact data collect mt10 --episodes-per-task 20 "
        "--env.image-size 64 --out runs/datasets/mt10_64`, 8-step chunks.",
        SMALL,
    ),
}
