"""Flow matching maths (flow.py): τ distribution, interpolation, velocity, Euler integration."""

from __future__ import annotations

import torch

from reasonact.vla.flow import euler_integrate, noisy_actions, sample_time, target_velocity


def test_time_distribution_is_s_times_one_minus_beta() -> None:
    torch.manual_seed(0)
    tau = sample_time(50_000, (1.5, 1.0), 0.999)
    assert tau.min() >= 0 and tau.max() <= 0.999
    # E[τ] = s·(1 − 1.5/2.5) = 0.3996; P(τ < 0.5) = 1 − F_Beta(0.5/0.999... ) ≈ 1 − 0.5005^1.5 ≈ 0.646
    assert abs(float(tau.mean()) - 0.999 * 0.4) < 0.01
    assert abs(float((tau < 0.5).float().mean()) - (1 - (1 - 0.5 / 0.999) ** 1.5)) < 0.01


def test_path_endpoints_and_velocity_is_its_derivative() -> None:
    torch.manual_seed(0)
    a, w = torch.randn(3, 10, 7, dtype=torch.float64), torch.randn(3, 10, 7, dtype=torch.float64)
    zero, one = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    torch.testing.assert_close(noisy_actions(a, w, zero), w)  # τ = 0 is noise
    torch.testing.assert_close(noisy_actions(a, w, one), a)  # τ = 1 is data
    tau, eps = torch.full((3,), 0.3, dtype=torch.float64), 1e-6
    derivative = (noisy_actions(a, w, tau + eps) - noisy_actions(a, w, tau - eps)) / (2 * eps)
    torch.testing.assert_close(derivative, target_velocity(a, w))


def test_integrating_the_exact_conditional_field_from_noise_recovers_the_target() -> None:
    """u(x, τ) = (a − x)/(1 − τ) is the conditional velocity at x = a^τ; Euler from ω must land on a."""
    torch.manual_seed(0)
    a, w = torch.randn(2, 50, 7, dtype=torch.float64), torch.randn(2, 50, 7, dtype=torch.float64)

    seen: list[tuple[float, int]] = []

    def field(x: torch.Tensor, tau: torch.Tensor, i: int) -> torch.Tensor:
        seen.append((float(tau[0]), i))
        return (a - x) / (1 - tau)[:, None, None]

    for steps in (1, 10, 37):
        seen.clear()
        torch.testing.assert_close(euler_integrate(field, w, steps), a)
        assert seen == [(i / steps, i) for i in range(steps)]  # τ_i = i/N at step i
    # a wrong sign convention (integrating the noise-ward field) would not
    assert not torch.allclose(euler_integrate(lambda x, t, i: -field(x, t, i), w, 10), a)
