"""AdamW as the robot-learning trainers build it (VLA, VLM pre-stage, CNN BC): torch's fused kernel wherever
the parameters' device has one.

torch's default AdamW is a per-parameter loop of separate ops on the CPU (`mul`, `sqrt`, `div`, … each
allocating a temporary the size of the parameter) and the multi-tensor ("foreach") path on CUDA; the fused
kernel reads and writes each parameter and its two moments once. On this CPU (1 thread) it took the VLA
trainer's optimizer step at 157 M parameters from 1.34 s to 0.18 s (`benchmarks/vla_train.py`, docs/vla.md).
The update is AdamW's (Loshchilov & Hutter 2019, Algorithm 2) either way; only the rounding differs, so a run
resumes exactly under the same code but is not bit-identical to one trained with the default kernel.

Where the model is small the gain is too: at the 0.37 M parameters of `search train-policy tiny` the fused step
saves 1.4 ms of a ~330 ms step (0.4%, inside the run-to-run noise), so the tiny reasoning trainers (`run_loop`,
`prm`, `policy_sft`) keep torch's default and the recipe that trained the shipped policies. The CNN BC
baseline (0.74 M parameters in `bc train small`) saves ~2 ms of a 0.3-0.5 s step the same way; it follows
the VLA trainer it is the baseline of.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.optimizer import _default_to_fused_or_foreach

FUSED_DEVICES = ("cpu", "cuda")  # where torch's fused AdamW runs and this project has run it


def adamw(
    params: Iterable[nn.Parameter],
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.01,
) -> torch.optim.AdamW:
    """AdamW over `params` (torch's defaults for what is not given), fused when every parameter lives on a
    device of `FUSED_DEVICES`, else torch's default implementation (module docstring)."""
    params = list(params)
    fused = all(p.device.type in FUSED_DEVICES for p in params) or None
    return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=fused)


def implementation(optimizer: torch.optim.Optimizer) -> str:
    """Which kernel `optimizer.step()` runs: "fused", "foreach" (multi-tensor: torch's default on CUDA) or
    "for-loop" (per parameter: torch's default on the CPU), resolved by torch's own rule when left unset."""
    fused, foreach = optimizer.defaults.get("fused"), optimizer.defaults.get("foreach")
    if fused:
        return "fused"
    if foreach is None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        foreach = _default_to_fused_or_foreach(params, optimizer.defaults.get("differentiable", False))[1]
    return "foreach" if foreach else "for-loop"
