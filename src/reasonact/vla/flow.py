"""Conditional flow matching for action chunks (π0, arXiv 2410.24164, Sec. 3 / Eq. 1).

Time convention (the paper's, used everywhere in reasonact): **τ = 0 is noise, τ = 1 is data**.

    a^τ = τ·a + (1 − τ)·ω,      ω ~ N(0, I)                       (noisy chunk)
    u   = d a^τ / dτ = a − ω                                      (target velocity)
    L_flow = E ‖v_θ(a^τ, o, τ) − u‖²                              (MSE, mean over H·d)
    p(τ) = Beta((s − τ)/s; 1.5, 1), s = 0.999  ⇔  τ = s·(1 − x), x ~ Beta(1.5, 1)

The Beta favours small τ (noisy inputs), the hard part of denoising. Inference integrates the ODE
da/dτ = v_θ from a^0 = ω to τ = 1 with N forward-Euler steps of δ = 1/N (π0: N = 10).
(openpi's code uses t = 1 − τ, x_t = t·ω + (1 − t)·a, u_t = ω − a and integrates t from 1 to 0: the same
flow with time reversed.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor


def sample_time(
    batch: int, beta: tuple[float, float] = (1.5, 1.0), s: float = 0.999, rng: np.random.Generator | None = None
) -> Tensor:
    """τ (batch,) = s·(1 − x), x ~ Beta(beta); from `rng`, else torch's global RNG."""
    if rng is not None:
        return torch.from_numpy(s * (1.0 - rng.beta(beta[0], beta[1], batch))).float()
    x = torch.distributions.Beta(torch.tensor(beta[0]), torch.tensor(beta[1])).sample((batch,))
    return s * (1.0 - x)


def noisy_actions(actions: Tensor, noise: Tensor, tau: Tensor) -> Tensor:
    """a^τ = τ·a + (1 − τ)·ω for actions, noise (b, H, d) and τ (b,) → (b, H, d)."""
    t = tau[:, None, None]
    return t * actions + (1.0 - t) * noise


def target_velocity(actions: Tensor, noise: Tensor) -> Tensor:
    """u = a − ω (b, H, d): the velocity of the straight path from noise to data."""
    return actions - noise


def euler_times(steps: int) -> Tensor:
    """τ at the start of each of the N Euler steps: (N,) = 0, 1/N, …, (N − 1)/N."""
    return torch.arange(steps, dtype=torch.float64) / steps


def euler_integrate(velocity: Callable[[Tensor, Tensor, int], Tensor], noise: Tensor, steps: int) -> Tensor:
    """Integrate da/dτ = velocity(a^τ, τ, i) from a^0 = noise (b, H, d) to τ = 1 in N = `steps` Euler steps.

    τ (b,) is `euler_times(steps)[i]`; the step index i lets callers precompute per-step terms. The loop
    reads nothing back from a tensor (τ is host arithmetic), so on a GPU it never synchronises."""
    x, dt = noise, 1.0 / steps
    for i in range(steps):
        tau = torch.full((noise.shape[0],), i / steps, dtype=noise.dtype, device=noise.device)
        x = x + dt * velocity(x, tau, i)
    return x
