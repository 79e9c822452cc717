"""The optimisation loop every reasoning trainer runs on the run layer (`reasonact.runs`).

A trainer supplies `loss_fn(step) -> (loss, metrics)`; the loop owns AdamW, the warm-up + cosine (or
constant) learning rate (a function of the step, so nothing but the optimizer needs saving), gradient
clipping, the finite-loss check, metrics, checkpoints and exact resume: a run killed at any
point and started again with the same config writes the same metrics and weights as one that
was never interrupted (batches and samples are seeded by the step number, RNGs are restored).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from reasonact.runs import Run
from reasonact.training.schedule import ramp_then_constant, ramp_times_cosine, set_lr

LossFn = Callable[[int], tuple[torch.Tensor | None, dict[str, float]]]  # None loss: nothing to learn this step


@dataclass(frozen=True)
class OptimConfig:
    steps: int = 200  # optimiser steps
    lr: float = 1e-3  # peak AdamW learning rate
    warmup: float = 0.05  # fraction of steps of linear warm-up, then the schedule
    schedule: Literal["cosine", "constant"] = "cosine"  # after warm-up: cosine decay to 0, or the peak held
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    clip: float = 1.0  # gradient-norm clip
    checkpoint_every: int = 50  # steps between checkpoints (and at the last step)

    def __post_init__(self) -> None:
        for name in ("steps", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, received {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, received {self.lr}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup: expected a fraction in [0, 1), received {self.warmup}")

    def lr_at(self, step: int) -> float:
        warmup = max(1, round(self.warmup * self.steps))
        if self.schedule == "constant":
            return ramp_then_constant(step, warmup, self.lr)
        return ramp_times_cosine(step, self.steps, warmup, self.lr)


def fit(
    run: Run,
    model: torch.nn.Module,
    optim: OptimConfig,
    loss_fn: LossFn,
    on_update: Callable[[], None] | None = None,
    progress: bool = False,
    plot: tuple[str, ...] = ("loss",),
) -> int:
    """Run `loss_fn` for optim.steps steps from the run's latest checkpoint → the step reached.

    `on_update` runs after every weight change (an optimiser step, a restored checkpoint): a
    generation backend sharing the model drops its prefix-KV store there."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=optim.lr, weight_decay=optim.weight_decay)
    start, _ = run.restore(model, optimizer)
    if start and on_update is not None:
        on_update()
    for step in range(start, optim.steps):
        began = time.perf_counter()
        set_lr(optimizer, optim.lr_at(step))
        model.train()
        loss, metrics = loss_fn(step)
        record = dict(metrics, lr=optim.lr_at(step))
        if loss is None:
            record["skipped"] = 1
        else:
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss: expected a finite value at step {step} of run {run.path}, received {loss.item()}; "
                    "the last checkpoint is intact"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            record["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), optim.clip))
            optimizer.step()
            record["loss"] = loss.item()
            if on_update is not None:
                on_update()
        model.eval()
        record["step_s"] = time.perf_counter() - began
        run.log(step + 1, **record)
        if (step + 1) % optim.checkpoint_every == 0 or step + 1 == optim.steps:
            run.save(step + 1, model, optimizer)
        if progress and ((step + 1) % max(1, optim.steps // 10) == 0 or step + 1 == optim.steps):
            shown = " ".join(f"{k} {v:.4g}" for k, v in record.items() if isinstance(v, float | int))
            print(f"{run.path.name} step {step + 1}/{optim.steps}: {shown}", flush=True)
    keys = [k for k in plot if any(k in m for m in run.metrics())]
    if keys:
        run.plot_metrics(keys)
    return optim.steps


def open_training_run(config: Any, records: list[dict] | None = None) -> tuple[Run, Path | None]:
    """Open or resume the run of a trainer config (root, name, resume fields) and pin its data
    → (run, the finished policy directory, or None while training is still to do)."""
    run = Run.open(config.root, config.name, config, resume=config.resume)
    if records is not None:
        pin_data(run, records)
    out = run.path / "policy"
    return run, out if (out / "config.json").exists() else None


def pin_data(run: Run, records: list[dict], filename: str = "data.jsonl") -> None:
    """Write the trainer's data into the run (first time), or refuse to resume on different data."""
    import json

    from reasonact.atomic import atomic_write_bytes

    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    path = run.path / filename
    if path.exists() and path.read_text() != text:
        raise ValueError(f"data: differs from the data of the run being resumed ({path}); use another name")
    if not path.exists():
        atomic_write_bytes(path, text.encode())
