"""Every named variant preset builds, computes the losses of its recipe and samples a chunk (tiny dims)."""

from __future__ import annotations

import pytest
import torch

from reasonact.vla.config import TINY, VARIANTS
from reasonact.vla.layers import AdaRMSNorm
from reasonact.vla.model import build_model

# variant → losses without / with VLM text targets (KI paper Sec. 5 recipes; `config.py` table)
EXPECTED = {
    "pi0": ({"flow", "loss"}, {"ce", "flow", "loss"}),
    "pi05": ({"flow", "loss"}, {"ce", "flow", "loss"}),
    "pi0_fast": ({"ce", "loss"}, {"ce", "loss"}),
    "frozen": ({"flow", "loss"}, {"flow", "loss"}),  # a frozen backbone learns no text either
    "ki": ({"ce", "flow", "loss"}, {"ce", "flow", "loss"}),
    "ki_no_stopgrad": ({"ce", "flow", "loss"}, {"ce", "flow", "loss"}),
    "ki_no_fast": ({"flow", "loss"}, {"ce", "flow", "loss"}),  # CE on text only, never on FAST tokens
}


def test_the_table_covers_every_variant() -> None:
    assert set(EXPECTED) == set(VARIANTS)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_losses_train_and_sampling_gives_a_chunk(name, config_of, make_obs, fast, actions) -> None:
    torch.manual_seed(0)
    cfg = config_of(name)
    model = build_model(cfg, fast)
    plain, with_targets = EXPECTED[name]
    assert set(model.compute_loss(make_obs(), actions)) == plain
    losses = model.compute_loss(make_obs(targets=True), actions)
    assert set(losses) == with_targets and torch.isfinite(losses["loss"])
    losses["loss"].backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert any(p.grad is not None and p.grad.any() for p in trainable)
    assert (len(trainable) < len(list(model.parameters()))) == (name == "frozen")
    model.eval()
    chunk = model.sample_actions(make_obs())
    assert chunk.shape == (2, cfg.horizon, cfg.action_dim) and chunk.dtype == torch.float32
    assert torch.isfinite(chunk).all()


def test_ki_no_fast_never_puts_fast_tokens_in_the_sequence(config_of, make_obs, fast, actions) -> None:
    model = build_model(config_of("ki_no_fast"), fast)
    ids, _ = model.ar_sequences(make_obs(targets=True), actions)
    assert not ((ids >= model.config.fast_offset) & (ids <= model.config.eoa)).any()
    ki = build_model(config_of("ki"), fast)
    ki_ids, _ = ki.ar_sequences(make_obs(targets=True), actions)
    assert (ki_ids == ki.config.boa).sum() == 2 and (ki_ids == ki.config.eoa).sum() == 2


def test_pi0_and_pi05_build_the_sequences_their_papers_describe(config_of, make_obs, fast, actions) -> None:
    """π0.5 (and KI): state in the prompt, suffix = H action tokens, τ only through adaptive norms (incl. the
    final one). π0: no state in the prefix, suffix = [state token, H action tokens], τ fused into the action
    tokens by the action-time MLP, plain RMSNorms; the state token sees the prefix and itself only."""
    torch.manual_seed(0)
    obs, other_state = make_obs(), make_obs(seed=1)
    tau_a, tau_b = torch.full((2,), 0.2), torch.full((2,), 0.9)

    pi05 = build_model(config_of("pi05"), fast).eval()
    assert not torch.equal(obs.tokens, other_state.tokens)  # the state is written into the prompt
    assert isinstance(pi05.expert.norm, AdaRMSNorm)
    assert all(isinstance(b.attn_norm, AdaRMSNorm) for b in pi05.expert.blocks)
    cache = pi05.encode_prefix(obs)
    context = pi05.expert.context(cache, TINY.horizon, False)
    suffix = context.masks[0][:, :, cache.length :]  # (b, H, H): H action tokens that see each other
    assert context.state is None and suffix.shape == (2, TINY.horizon, TINY.horizon) and suffix.all()
    x = torch.randn_like(actions)
    with torch.no_grad():  # adaLN-Zero init: every modulation is 0, so τ has no effect yet
        same = [pi05.expert(x, t, pi05.encode_prefix(obs), False) for t in (tau_a, tau_b)]
        torch.testing.assert_close(same[0], same[1])
        torch.nn.init.normal_(pi05.expert.norm.modulation.weight, std=0.1)  # only the final norm's: τ now matters
        moved = [pi05.expert(x, t, pi05.encode_prefix(obs), False) for t in (tau_a, tau_b)]
        assert not torch.allclose(moved[0], moved[1])

    pi0 = build_model(config_of("pi0"), fast).eval()
    tokens_no_state = make_obs(config_of("pi0")).tokens
    assert torch.equal(tokens_no_state, make_obs(config_of("pi0"), seed=1).tokens)  # state not in the prompt
    assert not any(isinstance(m, AdaRMSNorm) for m in pi0.expert.modules())
    obs0, obs1 = make_obs(config_of("pi0")), make_obs(config_of("pi0"), seed=1)
    with torch.no_grad():
        cache = pi0.encode_prefix(obs0)
        context = pi0.expert.context(cache, TINY.horizon, False, obs0.state)
        mask = context.masks[0][0, :, cache.length :]  # suffix queries over suffix keys (1 + H, 1 + H)
        assert mask.shape == (1 + TINY.horizon, 1 + TINY.horizon)
        assert mask[0].tolist() == [True] + [False] * TINY.horizon and mask[1:].all()
        v = [pi0.expert(x, t, cache, False, obs0.state) for t in (tau_a, tau_b)]
        assert not torch.allclose(v[0], v[1])  # τ reaches the output through the action tokens at init
        v_other_state = pi0.expert(x, tau_a, cache, False, obs1.state)  # same prefix, different state token
        assert not torch.allclose(v[0], v_other_state)
    with pytest.raises(ValueError, match="state: the π0 expert needs the state"):
        pi0.expert(x, tau_a, cache, False)
