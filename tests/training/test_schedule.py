"""The reasoning trainers' learning-rate schedules: warm-up, then cosine decay to 0 or the peak held."""

from __future__ import annotations

import pytest

from reasonact.training.run_loop import OptimConfig


def test_cosine_decays_to_zero_and_constant_holds_the_peak() -> None:
    cosine = OptimConfig(steps=1000, lr=3e-4, warmup=0.05)
    constant = OptimConfig(steps=1000, lr=3e-4, warmup=0.05, schedule="constant")
    for config in (cosine, constant):  # the same linear ramp over the first 50 steps
        assert config.lr_at(0) == pytest.approx(3e-4 / 50)
        assert config.lr_at(24) == pytest.approx(3e-4 * 25 / 50, rel=1e-2)
    assert cosine.lr_at(500) == pytest.approx(1.5e-4) and cosine.lr_at(999) < 1e-8
    assert [constant.lr_at(s) for s in (49, 500, 999)] == [3e-4, 3e-4, 3e-4]
    # twice the cosine's mean rate over the run at the same peak
    ratio = sum(map(constant.lr_at, range(1000))) / sum(map(cosine.lr_at, range(1000)))
    assert ratio == pytest.approx(2.0, rel=0.05)
