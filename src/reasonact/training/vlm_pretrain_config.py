"""Configuration of `reasonact vla pretrain`: the VLM pre-stage that gives the backbone knowledge of the scenes
before any action training (captions, VQA, boxes, subtasks of `reasonact data vlm`).

The model is the VLA the action trainer will build (`vla_config.py` presets), so the exported backbone fits
it: `tiny` pairs with `vla train tiny`, `small` with `vla train small`. `gemma270m` starts from the real
Gemma 3 270M LM and trains only the vision tower and projector (LLaVA's stage 1); it needs a faster machine
than this CPU (a training step of batch 8 took 36 s here, docs/vla.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from reasonact.training.vla_config import PROMPT_TOKENS, SMALL_MT10, TINY_VLM
from reasonact.vla.config import GEMMA270M, VLAConfig


@dataclass(frozen=True)
class VLMPretrainConfig:
    """One pre-stage run; every field is a `--flag` (e.g. `--steps 2000 --no-train-lm`)."""

    model: VLAConfig = field(default_factory=lambda: TINY_VLM)  # the VLA whose backbone is trained (expert unused)
    records: tuple[Path, ...] = (Path("runs/vlm/tiny/vlm.parquet"),)  # `reasonact data vlm` files (train split)
    train_vision: bool = True  # train the image encoder
    train_lm: bool = True  # train the LM too (False: LM frozen, vision + projector only)
    steps: int = 300  # optimizer steps
    batch_size: int = 16  # records per step
    lr: float = 2e-3  # peak learning rate
    final_lr: float = 2e-4  # learning rate at the end of the cosine decay
    warmup: int = 20  # linear warmup steps
    weight_decay: float = 1e-10  # AdamW decoupled weight decay
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW (β1, β2)
    grad_clip: float = 1.0  # max global gradient norm
    ema_decay: float = 0.99  # EMA of the weights: evaluated and exported
    seed: int = 0  # model init; batch s is a pure function of (seed, s)
    log_every: int = 10  # steps between metrics.jsonl records
    save_every: int = 100  # steps between checkpoints (and one at the end)
    eval_every: int = 0  # steps between held-out VQA evaluations (0: only at the end)
    eval_samples: int = 0  # records per split in an evaluation (0: all)
    threads: int = 1  # torch intra-op threads
    device: str = "cpu"  # torch device ("cuda" on a GPU machine)
    out: Path = Path("runs/vlm_pretrain")  # runs root
    name: str = "tiny"  # run directory name under `out`
    resume: bool = False  # continue `out/name` from its latest checkpoint
    overwrite: bool = False  # replace an existing `out/name`


SMALL = VLMPretrainConfig(
    model=dataclasses.replace(SMALL_MT10.model, max_prompt_tokens=PROMPT_TOKENS),  # VLM questions: up to 66 bytes
    records=(Path("runs/vlm/mt15/vlm.parquet"),),
    steps=450,
    batch_size=8,
    lr=1e-3,
    final_lr=1e-4,
    warmup=30,
    log_every=10,
    save_every=50,
    eval_samples=150,
    name="small",
)
GEMMA = VLMPretrainConfig(
    model=dataclasses.replace(GEMMA270M, variant="ki"),
    records=(Path("runs/vlm/mt15/vlm.parquet"),),
    train_lm=False,
    steps=2000,
    batch_size=32,
    lr=1e-3,
    final_lr=1e-4,
    warmup=100,
    log_every=20,
    save_every=200,
    eval_every=500,
    eval_samples=200,
    name="gemma270m",
)

PRESETS: dict[str, tuple[str, VLMPretrainConfig]] = {
    "tiny": (
        "Seconds: the tiny VLA's backbone on `reasonact data vlm tiny` records.",
        VLMPretrainConfig(ema_decay=0.9),
    ),
    "small": (
        "The small VLA's backbone (from scratch, 64 px) on `reasonact data vlm small --episodes-per-task 15 "
        "--out runs/vlm/mt15` records; 4–12 s/step on this loaded 2-core CPU.",
        SMALL,
    ),
    "gemma270m": (
        "Real Gemma 3 270M LM (frozen) + 112 px ViT + projector trained on the same records (a GPU machine).",
        GEMMA,
    ),
}
