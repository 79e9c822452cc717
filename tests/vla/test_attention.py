"""The attention mask of SPEC §2.3, and that backbone-then-expert equals one shared attention per layer."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from reasonact.vla.attention import attend, attention_mask
from reasonact.vla.backbone import layer_masks
from reasonact.vla.config import TINY
from reasonact.vla.expert import sinusoidal_embedding
from reasonact.vla.model import build_model


def _reference(blocks: list[int], valid: list[bool]) -> torch.Tensor:
    """The rules spelled out token pair by token pair."""
    n = len(blocks)
    out = torch.zeros(n, n, dtype=torch.bool)
    for i, q in enumerate(blocks):
        for j, k in enumerate(blocks):
            if not valid[j]:
                continue
            if k == 0:  # everyone sees the prefix
                out[i, j] = True
            elif q > 0 and k > 0:  # FAST/text: causal among autoregressive tokens
                out[i, j] = k <= q
            elif (q == -1 and k in (-1, -2)) or (q == -2 and k == -2):  # expert: all suffix; π0 state: itself
                out[i, j] = True
    return out


def test_worked_example_of_the_docstring() -> None:
    blocks = torch.tensor([[0, 0, 1, 2, -1, -1]])
    expected = torch.tensor(
        [
            [1, 1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 0, 0, 1, 1],
            [1, 1, 0, 0, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(attention_mask(blocks, blocks, torch.ones_like(blocks, dtype=torch.bool))[0], expected)


def test_pi0_state_token_example_of_the_docstring() -> None:
    blocks = torch.tensor([[0, 0, -2, -1, -1]])
    got = attention_mask(blocks, blocks, torch.ones_like(blocks, dtype=torch.bool))[0].int().tolist()
    assert got == [[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]]


def test_random_sequences_follow_the_rules_and_padding() -> None:
    g = torch.Generator().manual_seed(0)
    for trial in range(50):
        n_p, n_f, n_e = (int(x) for x in torch.randint(1, 6, (3,), generator=g))
        blocks = [0] * n_p + list(range(1, n_f + 1)) + [-2] * (trial % 2) + [-1] * n_e
        valid = (torch.rand(len(blocks), generator=g) > 0.2).tolist()
        got = attention_mask(torch.tensor([blocks]), torch.tensor([blocks]), torch.tensor([valid]))[0]
        assert torch.equal(got, _reference(blocks, valid))
        fast, expert, prefix = slice(n_p, n_p + n_f), slice(n_p + n_f + trial % 2, None), slice(0, n_p)
        assert not got[expert, fast].any()  # expert never sees FAST
        assert not got[prefix, n_p:].any() and not got[fast, expert].any()  # nothing flows back


def test_cached_decoding_mask_sees_prefix_and_earlier_tokens() -> None:
    k_blocks = torch.tensor([[0, 0, 1, 2, 3]])
    got = attention_mask(torch.tensor([[3]]), k_blocks, torch.tensor([[True, False, True, True, True]]))
    assert got.tolist() == [[[True, False, True, True, True]]]


@pytest.mark.parametrize("name", ["ki_no_stopgrad", "pi0"])
def test_backbone_then_expert_equals_one_joint_attention_per_layer(name, config_of, make_obs, fast, actions) -> None:
    """Reference: both streams layer by layer, ONE attention over the concatenated sequence with the full mask:
    π0.5 style [prefix (state in the prompt)] [H action tokens, adaRMS(τ)] and π0 style
    [prefix] [state token, H action tokens with τ fused in by the action-time MLP]."""
    torch.manual_seed(0)
    model = build_model(config_of(name), fast).eval()
    expert, pi0 = model.expert, name == "pi0"
    for p in expert.parameters():  # open the zero-initialised adaptive-norm gates
        torch.nn.init.normal_(p, std=0.05)
    obs = make_obs()
    x_t, tau = actions, torch.tensor([0.3, 0.8])
    cache = model.encode_prefix(obs)
    fast_model = expert(x_t, tau, cache, stop_gradient=False, state=obs.state)

    h_b, valid = model.embed_prefix(obs)
    pos_b = valid.cumsum(1) - 1
    horizon = x_t.shape[1]
    h_e = expert.action_in(x_t)
    suffix_blocks = [-1] * horizon
    if pi0:
        phi = sinusoidal_embedding(tau, h_e.shape[-1])[:, None].expand_as(h_e)
        h_e = expert.action_time_out(F.silu(expert.action_time_in(torch.cat([h_e, phi], -1))))
        h_e = torch.cat([expert.state_in(obs.state)[:, None], h_e], 1)
        suffix_blocks = [-2, *suffix_blocks]
    pos_e = valid.sum(1, keepdim=True) + torch.arange(len(suffix_blocks))
    blocks = torch.cat([torch.zeros_like(pos_b), torch.tensor(suffix_blocks).expand(2, -1)], dim=1)
    mask = attention_mask(blocks, blocks, torch.cat([valid, torch.ones_like(pos_e, dtype=torch.bool)], 1))
    from reasonact.vla.layers import rope_table

    rope_b, rope_e = rope_table(pos_b, 16, 10_000.0), rope_table(pos_e, 16, 10_000.0)
    cond = None if pi0 else expert.time(tau)
    n = h_b.shape[1]
    for lb, le in zip(model.lm.blocks, expert.blocks, strict=True):
        qb, kb, vb, _ = lb.project(h_b, rope_b)
        attn_mod, mlp_mod = (None, None) if pi0 else le.modulations(cond)
        qe, ke, ve, gate = le.project(h_e, rope_e, attn_mod)
        out = attend(torch.cat([qb, qe], 2), torch.cat([kb, ke], 2), torch.cat([vb, ve], 2), mask, model.lm.scale)
        h_b, h_e = lb.finish(h_b, out[:, :, :n], None), le.finish(h_e, out[:, :, n:], gate, mlp_mod)
    final = expert.norm(h_e) if pi0 else expert.norm(h_e, expert.norm.modulation(cond))[0]
    reference = expert.action_out(final[:, -horizon:])
    torch.testing.assert_close(fast_model, reference, rtol=1e-5, atol=1e-5)


def test_a_mask_that_allows_everything_is_skipped_with_identical_output() -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 5, 8), torch.randn(2, 1, 7, 8), torch.randn(2, 1, 7, 8)
    full = torch.ones(2, 5, 7, dtype=torch.bool)
    torch.testing.assert_close(attend(q, k, v, None, 0.3), attend(q, k, v, full, 0.3))
    lm = dataclasses.replace(TINY.lm, depth=4, sliding_window=3, global_every=2)
    positions = torch.arange(7)[None].expand(2, 7)
    masks = layer_masks(lm, torch.ones(2, 7, 7, dtype=torch.bool), positions, positions)
    assert masks[1].all() and masks[3].all()  # global layers: every pair allowed (never inspected on the host)
    assert masks[0] is not None and not masks[0][0, 0, 3] and masks[0][0, 0, 2]  # local: window of 3
    padded = full.clone()
    padded[:, :, 0] = False
    assert not torch.allclose(attend(q, k, v, padded, 0.3), attend(q, k, v, None, 0.3))
