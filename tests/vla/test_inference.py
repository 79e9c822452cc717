"""Inference: the cached prefix gives the same chunk as recomputation; π0-FAST KV-cached greedy decoding."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from reasonact.vla.config import TINY
from reasonact.vla.model import build_model

# Gemma-3-style tiny LM: q/k norms, sandwich norms, sliding-window layers narrower than the prefix
GEMMA3_TINY = dataclasses.replace(
    TINY,
    lm=dataclasses.replace(TINY.lm, qk_norm=True, sandwich_norm=True, sliding_window=20, global_every=2,
                           rope_theta=1e6, query_scale=8.0),
)  # fmt: skip


def _open_gates(model) -> None:
    for name, p in model.expert.named_parameters():
        if "modulation" in name:
            torch.nn.init.normal_(p, std=0.05)


@pytest.mark.parametrize("cfg", [TINY, GEMMA3_TINY], ids=["gemma1", "gemma3"])
def test_cached_and_recomputed_prefix_sample_the_same_chunk(cfg, make_obs, fast) -> None:
    torch.manual_seed(0)
    model = build_model(cfg, fast).eval()
    _open_gates(model)
    obs = make_obs(cfg)
    noise = torch.randn(2, cfg.horizon, cfg.action_dim)
    cached = model.sample_actions(obs, noise=noise)
    recomputed = model.sample_actions(obs, noise=noise, cache_prefix=False)
    torch.testing.assert_close(cached, recomputed, rtol=1e-5, atol=1e-5)
    assert cached.shape == (2, cfg.horizon, cfg.action_dim) and torch.isfinite(cached).all()
    assert not torch.allclose(cached, noise)  # the expert did move the sample
    # each batch item only depends on its own observation
    alone = model.sample_actions(dataclasses.replace(
        obs, images={k: v[:1] for k, v in obs.images.items()}, state=obs.state[:1], tokens=obs.tokens[:1],
        token_mask=obs.token_mask[:1]), noise=noise[:1])  # fmt: skip
    torch.testing.assert_close(alone, cached[:1], rtol=1e-4, atol=1e-5)


def test_precomputed_step_conditions_equal_a_plain_euler_loop_over_expert_forward(make_obs, fast) -> None:
    """sample_actions batches the τ-modulations of all steps; a plain loop calls the expert afresh each step."""
    torch.manual_seed(0)
    model = build_model(TINY, fast).eval()
    _open_gates(model)
    obs, noise = make_obs(), torch.randn(2, TINY.horizon, TINY.action_dim)
    with torch.no_grad():
        cache, x = model.encode_prefix(obs), noise
        for i in range(4):
            x = x + 0.25 * model.expert(x, torch.full((2,), i / 4), cache, stop_gradient=False)
    torch.testing.assert_close(model.sample_actions(obs, steps=4, noise=noise), x, rtol=1e-5, atol=1e-5)


def test_bfloat16_weights_sample_close_to_float32(make_obs, fast) -> None:
    torch.manual_seed(0)
    model = build_model(GEMMA3_TINY, fast).eval()
    _open_gates(model)
    obs, noise = make_obs(GEMMA3_TINY), torch.randn(2, TINY.horizon, TINY.action_dim)
    full = model.sample_actions(obs, noise=noise)
    half = model.to(torch.bfloat16).sample_actions(obs, noise=noise)
    assert half.dtype == torch.float32 and model.projector.weight.dtype == torch.bfloat16
    assert (half - full).abs().max() < 0.05 * full.abs().max() and not torch.equal(half, full)


def _greedy_without_cache(model, obs, n: int) -> list[list[int]]:
    """Reference decoder: re-run the whole sequence for every new token."""
    cfg = model.config
    h, valid = model.embed_prefix(obs)
    pos = valid.cumsum(1) - 1
    start = valid.sum(1, keepdim=True)
    ids = torch.full((obs.batch_size, 1), cfg.boa)
    for _ in range(n):
        steps = torch.arange(1, ids.shape[1] + 1)
        x = torch.cat([h, model.lm.embed_tokens(ids)], 1)
        blocks = torch.cat([torch.zeros_like(pos), steps.expand_as(ids)], 1)
        hidden, _ = model.lm(x, blocks, torch.cat([pos, start + steps - 1], 1),
                             torch.cat([valid, torch.ones_like(ids, dtype=torch.bool)], 1))  # fmt: skip
        logits = model.lm.logits(hidden[:, -1])[:, cfg.fast_offset : cfg.boa]
        logits = torch.cat([logits, model.lm.logits(hidden[:, -1])[:, cfg.eoa : cfg.eoa + 1]], 1)
        nxt = logits.argmax(-1)
        nxt = torch.where(nxt == cfg.fast_vocab, torch.tensor(cfg.eoa), nxt + cfg.fast_offset)
        ids = torch.cat([ids, nxt[:, None]], 1)
    return ids[:, 1:].tolist()


def _spread_lm_weights(model) -> None:
    """Random LM weights with O(1) activations, so greedy decoding does not repeat one token forever."""
    with torch.no_grad():
        for p in model.lm.parameters():
            p.normal_(std=0.5 if p.ndim == 1 else p.shape[-1] ** -0.5)


@pytest.mark.parametrize("cfg", [TINY, GEMMA3_TINY], ids=["gemma1", "gemma3"])
def test_fast_decoding_with_kv_cache_matches_recomputation(make_obs, fast, monkeypatch, cfg) -> None:
    torch.manual_seed(0)
    cfg = dataclasses.replace(cfg, variant="pi0_fast")
    model = build_model(cfg, fast).eval()
    _spread_lm_weights(model)
    obs = make_obs(cfg, b=3)
    generated = []
    real_strip = model._strip
    monkeypatch.setattr(model, "_strip", lambda ids: generated.append(ids.tolist()) or real_strip(ids))
    decoded = model.sample_fast(obs, max_tokens=12)
    with torch.no_grad():
        expected = _greedy_without_cache(model, obs, 12)
    assert generated[0] == expected and len({t for row in expected for t in row}) > 1
    assert decoded.actions.shape == (3, cfg.horizon, cfg.action_dim)
    buffer = model._fast_buffer.keys[0]  # (b, kv_heads, P + 12, hd)
    assert buffer.shape[2] == model.encode_prefix(obs).length + 12
    model.sample_fast(obs, max_tokens=12)  # same shapes: the preallocated cache is reused, not reallocated
    assert model._fast_buffer.keys[0] is buffer and generated[1] == expected
    model.sample_fast(obs, max_tokens=5)
    assert model._fast_buffer.keys[0] is not buffer and generated[2] == [row[:5] for row in expected]


@pytest.mark.slow
def test_compiled_expert_samples_the_same_chunk(make_obs, fast) -> None:
    torch.manual_seed(0)
    model = build_model(TINY, fast).eval()
    _open_gates(model)
    obs, noise = make_obs(), torch.randn(2, TINY.horizon, TINY.action_dim)
    eager = model.sample_actions(obs, noise=noise)
    model.compile_expert()
    torch.testing.assert_close(model.sample_actions(obs, noise=noise), eager, rtol=1e-4, atol=1e-4)
    assert "compiled_velocity" not in dict(model.named_modules())  # no duplicate weights in checkpoints


@pytest.mark.slow
def test_compiled_fast_decode_step_gives_the_same_tokens(make_obs, fast) -> None:
    torch.manual_seed(0)
    cfg = dataclasses.replace(GEMMA3_TINY, variant="pi0_fast")
    model = build_model(cfg, fast).eval()
    _spread_lm_weights(model)
    obs = make_obs(cfg)
    with torch.no_grad():
        eager = model._decode_fast(obs, 10, None)
        model.compile_fast_decode(mode="reduce-overhead")
        compiled = [model._decode_fast(obs, 10, None) for _ in range(2)]  # compile, then replay
    assert all(torch.equal(ids, eager) for ids in compiled)


def _greedy_text_without_cache(model, obs, stop_id: int, n: int) -> list[list[int]]:
    """Reference for VQA answers: the first token from the last valid prefix position, then the whole
    sequence re-run for every next token (token j in block j + 1 at position start + j)."""
    cfg = model.config
    h, valid = model.embed_prefix(obs)
    pos = (valid.cumsum(1) - 1).clamp(min=0)
    hidden, _ = model.lm(h, torch.zeros_like(pos), pos, valid)
    last = valid.long().cumsum(1).argmax(1)
    ids = model.lm.logits(hidden[torch.arange(len(last)), last])[:, : cfg.lm.vocab_size].argmax(-1)[:, None]
    start = valid.sum(1, keepdim=True)
    for _ in range(n - 1):
        steps = torch.arange(1, ids.shape[1] + 1)
        x = torch.cat([h, model.lm.embed_tokens(ids)], 1)
        blocks = torch.cat([torch.zeros_like(pos), steps.expand_as(ids)], 1)
        hidden, _ = model.lm(x, blocks, torch.cat([pos, start + steps - 1], 1),
                             torch.cat([valid, torch.ones_like(ids, dtype=torch.bool)], 1))  # fmt: skip
        ids = torch.cat([ids, model.lm.logits(hidden[:, -1])[:, : cfg.lm.vocab_size].argmax(-1)[:, None]], 1)
    return [row[: row.index(stop_id)] if stop_id in row else row for row in ids.tolist()]


@pytest.mark.parametrize("cfg", [TINY, GEMMA3_TINY], ids=["gemma1", "gemma3"])
def test_vqa_greedy_answers_over_the_decode_cache_match_recomputation(make_obs, cfg) -> None:
    """`greedy_answers` (VQA evaluation) decodes over `KIVLA.decode_cache`; a decode that passed the cache where
    the LM expected another argument once made every pre-stage answer empty (VQA 0.0)."""
    from reasonact.vla.vqa_eval import greedy_answers

    torch.manual_seed(0)
    model = build_model(cfg).eval()
    _spread_lm_weights(model)
    obs = make_obs(cfg, b=3)
    with torch.no_grad():
        expected = _greedy_text_without_cache(model, obs, stop_id=-1, n=10)  # -1: never stops, all 10 compared
    got = greedy_answers(model, obs, stop_id=-1, max_tokens=10)
    assert got == expected and len({t for row in expected for t in row}) > 1
