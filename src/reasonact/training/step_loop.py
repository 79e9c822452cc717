"""The acting trainers' outer loop (VLA, VLM pre-stage, CNN BC): step → log → evaluate → checkpoint.

One loop, so that the logging, evaluation and checkpoint cadence (and with it exact resume: a run restarts at
`trainer.step`, the step of its last checkpoint) mean the same in every acting trainer, each with a progress bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Steppable(Protocol):
    step: int  # optimiser steps taken (restored from the checkpoint on resume)

    def train_step(self, step: int) -> dict[str, float]:
        """One optimiser step; its metrics, `loss` among them."""


def run_steps(
    trainer: Steppable,
    steps: int,
    log_every: int,
    save_every: int,
    log: Callable[..., None],  # run.log(step, **metrics)
    save: Callable[[], None],  # checkpoint at trainer.step
    evaluate: Callable[[], dict[str, float]] | None = None,  # held-out metrics logged every `eval_every` steps
    eval_every: int = 0,  # 0: no evaluation inside the loop
    main: bool = True,  # the rank that logs, evaluates and shows progress (every rank saves: `save` decides)
) -> None:
    """Train `trainer` from its current step to `steps`; the last step is always logged and checkpointed."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, disable=not main) as progress:
        bar = progress.add_task("train", total=steps, completed=trainer.step)
        while trainer.step < steps:
            start = time.perf_counter()
            metrics = trainer.train_step(trainer.step)
            trainer.step += 1
            last = trainer.step == steps
            if main and (trainer.step % log_every == 0 or last):
                log(trainer.step, **metrics, step_s=time.perf_counter() - start)
            progress.update(bar, advance=1, description=f"train loss {metrics['loss']:.4f}")
            if evaluate and eval_every and trainer.step % eval_every == 0 and not last and main:
                log(trainer.step, **evaluate())
            if trainer.step % save_every == 0 or last:
                save()
