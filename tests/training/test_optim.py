"""`training.optim.adamw`: torch's AdamW with the given hyperparameters, fused where the device has the kernel,
and `implementation` names the kernel a step runs (what the training bench records for each side)."""

from __future__ import annotations

import pytest
import torch

from reasonact.training.optim import adamw, implementation


def _params(device: str = "cpu") -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(shape, generator=g).to(device)) for shape in ((5, 3), (3,), (2, 2, 2))]


def _train(make, steps: int = 5) -> list[torch.Tensor]:
    """`steps` AdamW steps on a fixed quadratic from fixed parameters → the parameters."""
    params = _params()
    optimizer = make(params)
    for _ in range(steps):
        loss = sum((p**2).sum() + p.sum() for p in params)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return [p.detach() for p in params]


def test_the_fused_step_is_torchs_adamw_with_the_given_hyperparameters() -> None:
    hyper = {"lr": 3e-2, "betas": (0.8, 0.9), "weight_decay": 0.3}
    fused = _train(lambda ps: adamw(ps, **hyper))
    default = _train(lambda ps: torch.optim.AdamW(ps, **hyper))
    other = _train(lambda ps: torch.optim.AdamW(ps, **{**hyper, "betas": (0.9, 0.999)}))
    for f, d, o in zip(fused, default, other, strict=True):
        torch.testing.assert_close(f, d, rtol=1e-6, atol=1e-6)  # the same update, rounded by another kernel
        assert (f - o).abs().max() > 100 * 1e-6  # and the betas reached it: another pair lands elsewhere


def test_the_kernel_each_optimizer_runs_is_named() -> None:
    assert implementation(adamw(_params(), 1e-3)) == "fused"
    assert implementation(torch.optim.AdamW(_params(), 1e-3)) == "for-loop"  # torch's default on the CPU
    assert implementation(torch.optim.AdamW(_params(), 1e-3, foreach=True)) == "foreach"
    meta = adamw(_params("meta"), 1e-3)  # no fused kernel there: torch's default
    assert meta.defaults["fused"] is None and implementation(meta) == "for-loop"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_cuda_ours_is_fused_and_torchs_default_is_foreach() -> None:
    assert implementation(adamw(_params("cuda"), 1e-3)) == "fused"
    assert implementation(torch.optim.AdamW(_params("cuda"), 1e-3)) == "foreach"
