"""One optimiser step on the run layer, shared by the reasoning trainers: backward, clip the
gradient norm to 1, step, log the loss (and any other metrics), checkpoint every
`checkpoint_every` steps and at the last step of the call (the resume point)."""

from __future__ import annotations

import torch

from reasonact.runs import Run


def optimizer_step(
    run: Run,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss: torch.Tensor,
    checkpoint_every: int,
    end: int,
    **metrics: float,
) -> None:
    """Apply `loss` (a scalar) as optimiser step `step` (0-based) of a call that stops at `end`."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    run.log(step + 1, loss=loss.item(), **metrics)
    if (step + 1) % checkpoint_every == 0 or step + 1 == end:
        run.save(step + 1, model, optimizer)
