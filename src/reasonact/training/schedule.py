"""Learning-rate schedule shared by every trainer: linear warmup, then cosine decay to a floor.

    lr(s) = peak · (s + 1) / warmup                                        s < warmup
    lr(s) = final + (peak − final) · ½ (1 + cos(π · (s − warmup) / (total − warmup)))   otherwise

(openpi's `CosineDecaySchedule`, the schedule of π0 / KI training.) The reasoning trainers use
`ramp_times_cosine`, where the warm-up ramp multiplies a cosine that starts at step 0:

    lr(s) = peak · min(1, (s + 1) / warmup) · ½ (1 + cos(π · min(1, s / total)))

or `ramp_then_constant`, the ramp then the peak held (DeepSeekMath's GRPO trains at a constant rate, §4.2):

    lr(s) = peak · min(1, (s + 1) / warmup)

Both are pure functions of the step, so a resumed run needs no scheduler state.
"""

from __future__ import annotations

import math

from reasonact.checks import check_range


def warmup_cosine(step: int, total: int, warmup: int, peak: float, final: float) -> float:
    """The learning rate at 0-based `step` of a `total`-step run."""
    check_range(total, "total steps", low=1)
    check_range(warmup, "warmup steps", low=0)
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final + (peak - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def ramp_times_cosine(step: int, total: int, warmup: int, peak: float) -> float:
    """The learning rate at 0-based `step` of a `total`-step run of the reasoning trainers (module docstring)."""
    return peak * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total)))


def ramp_then_constant(step: int, warmup: int, peak: float) -> float:
    """The learning rate at 0-based `step`: linear warm-up over `warmup` steps, then `peak`."""
    check_range(warmup, "warmup steps", low=1)
    return peak * min(1.0, (step + 1) / warmup)


def set_lr(optimizer, lr: float) -> None:
    """Write `lr` into every parameter group of a torch optimizer."""
    for group in optimizer.param_groups:
        group["lr"] = lr
