"""Knowledge insulation (SPEC §2.4): L_flow reaches only the expert, CE only the backbone; π0 lets L_flow through."""

from __future__ import annotations

import pytest
import torch

from reasonact.vla.model import KIVLA, build_model


def _trained_looking(model: KIVLA) -> KIVLA:
    """Open the zero-initialised adaptive-norm gates, as after some training, so every path carries gradient."""
    torch.manual_seed(1)
    for name, p in model.expert.named_parameters():
        if "modulation" in name:
            torch.nn.init.normal_(p, std=0.05)
    return model


def _grads(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> list[torch.Tensor | None]:
    return list(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))


def _all_zero(grads: list[torch.Tensor | None]) -> bool:
    return all(g is None or not g.any() for g in grads)


def test_ki_flow_loss_never_reaches_backbone_and_ce_never_reaches_expert(config_of, make_obs, fast, actions) -> None:
    torch.manual_seed(0)
    model = _trained_looking(build_model(config_of("ki"), fast))
    losses = model.compute_loss(make_obs(targets=True), actions)
    backbone, expert = list(model.backbone_parameters()), list(model.expert.parameters())
    assert _all_zero(_grads(losses["flow"], backbone))
    assert _all_zero(_grads(losses["ce"], expert))
    # …while each loss does train its own side (otherwise the zeros above would prove nothing)
    assert all(g is not None and g.any() for g in _grads(losses["flow"], expert))
    ce_backbone = _grads(losses["ce"], backbone)
    assert sum(g is not None and bool(g.any()) for g in ce_backbone) == len(backbone)


@pytest.mark.parametrize("name", ["pi0", "ki_no_stopgrad"])
def test_without_stop_gradient_flow_loss_trains_the_backbone(name, config_of, make_obs, fast, actions) -> None:
    torch.manual_seed(0)
    model = _trained_looking(build_model(config_of(name), fast))
    losses = model.compute_loss(make_obs(), actions)
    named = dict(model.named_parameters())
    grads = dict(zip(named, _grads(losses["flow"], list(named.values())), strict=True))
    for part in ("vision.patch.weight", "projector.weight", "lm.blocks.0.qkv.weight", "lm.blocks.1.qkv.weight"):
        assert grads[part] is not None and grads[part].abs().sum() > 0, part
    assert ("ce" in losses) == (name == "ki_no_stopgrad")


def test_frozen_backbone_gets_no_update(config_of, make_obs, fast, actions) -> None:
    model = _trained_looking(build_model(config_of("frozen"), fast))
    model.compute_loss(make_obs(targets=True), actions)["loss"].backward()
    assert all(p.grad is None and not p.requires_grad for p in model.backbone_parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.expert.parameters())


def test_loss_is_ce_plus_alpha_flow(config_of, make_obs, fast, actions) -> None:
    torch.manual_seed(0)
    losses = build_model(config_of("ki", flow_weight=0.25), fast).compute_loss(make_obs(), actions)
    torch.testing.assert_close(losses["loss"], losses["ce"] + 0.25 * losses["flow"])


def test_pi0_fast_has_no_expert_and_learns_by_cross_entropy(config_of, make_obs, fast, actions) -> None:
    model = build_model(config_of("pi0_fast"), fast)
    assert model.expert is None
    losses = model.compute_loss(make_obs(), actions)
    assert set(losses) == {"ce", "loss"} and losses["ce"] > 0
