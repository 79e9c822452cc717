"""Exponential moving average of model weights, the weights evaluated and shipped (π0 / openpi: decay 0.99).

    θ_ema ← decay · θ_ema + (1 − decay) · θ

The average lives in a full copy of the model (`EMA.model`), so it is saved, loaded and run like the model
itself; buffers are copied, not averaged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from reasonact.checks import check_range


class EMA:
    """Keeps `model`'s moving average; call `update(model)` after every optimizer step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        check_range(decay, "ema_decay", 0.0, 1.0)
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for average, p in zip(self.model.parameters(), model.parameters(), strict=True):
            average.lerp_(p.detach(), 1.0 - self.decay)
        for average, b in zip(self.model.buffers(), model.buffers(), strict=True):
            average.copy_(b)


def optimize_with_ema(
    loss: torch.Tensor,
    params: list[nn.Parameter],
    optimizer: torch.optim.Optimizer,
    ema: EMA,
    model: nn.Module,
    grad_clip: float,
    step: int,
) -> float:
    """One step of the acting trainers: refuse a non-finite loss (naming the step; the last checkpoint stays
    intact) → zero the gradients → backward → clip the global norm to `grad_clip` → optimizer step → EMA update
    of `model` → the gradient norm before clipping."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss: non-finite ({float(loss)}) at step {step}; lower --lr")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    ema.update(model)
    return float(grad_norm)
