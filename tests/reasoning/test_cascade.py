"""Shared-prefix ("cascade") attention (`backends/cascade.py`): the merged prefix + suffix attention is plain
attention over [prefix; suffix], and the HF backend samples the same tokens through it as through the
per-sibling copy of the prompt's KV (`cascade=False`) and as per-path `generate`."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache, Gemma3ForCausalLM, Gemma3TextConfig

from reasonact.reasoning.backends.cascade import (
    ATTENTION,
    SharedPrefixCache,
    enable,
    merge_states,
    shared_prefix_attention,
)
from reasonact.reasoning.backends.hf import HFBackend
from reasonact.reasoning.mdp import State
from reasonact.reasoning.step_lm import build_step_lm, char_tokenizer
from reasonact.reasoning.tasks import ArithmeticTask


def plain_attention(query, prefix, suffix, allowed, scaling, softcap=None) -> torch.Tensor:
    """Reference: every row gets its own copy of its prompt's prefix, concatenated with its suffix; kv heads
    repeated for GQA; one float64 softmax. query (R, H, q, d) → (R, q, H, d)"""
    rows, heads = query.shape[:2]
    groups, rep = rows // prefix[0].shape[0], heads // prefix[0].shape[1]
    keys, values = (
        torch.cat([p.repeat_interleave(groups, 0), s], 2).repeat_interleave(rep, 1).double()
        for p, s in zip(prefix, suffix, strict=True)
    )  # (R, H, Lp + Ls, d)
    scores = query.double() @ keys.transpose(-1, -2) * scaling  # (R, H, q, L)
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
    return (weights @ values).transpose(1, 2)


def window_mask(pads: list[int], groups: int, q: int, prefix: int, suffix: int, window: int) -> torch.Tensor:
    """transformers' decode mask for left-padded prompts (`pads` columns each), causal, inside a sliding
    window over the last q of prefix + suffix columns → (P·G, 1, q, Lp + Ls) bool"""
    total = prefix + suffix
    column = torch.arange(total)
    query_column = torch.arange(total - q, total)[:, None]  # (q, 1)
    allowed = (column <= query_column) & (column > query_column - window)  # (q, L)
    padded = torch.stack([column >= p for p in pads]).repeat_interleave(groups, 0)  # (R, L)
    return allowed[None, None] & padded[:, None, None]


CASES = {  # name: (prompts, siblings G, query tokens q, prefix Lp, suffix Ls, window)
    "window cuts into the prefix": (3, 4, 1, 9, 3, 6),
    "window past the whole prefix for some rows": (2, 3, 2, 5, 6, 6),
    "no suffix yet": (2, 4, 1, 7, 0, 64),
    "one suffix column": (3, 2, 1, 7, 1, 64),
    "one sibling per prompt (G = 1)": (3, 1, 1, 8, 4, 5),
    "several query tokens": (2, 3, 3, 6, 4, 64),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("softcap", [None, 5.0], ids=["fused CPU kernel", "float32 matmuls (soft-capped)"])
def test_cascade_equals_plain_attention_over_the_concatenated_kv(case, softcap) -> None:
    prompts, groups, q, prefix_len, suffix_len, window = CASES[case]
    rows, kv_heads, rep, d = prompts * groups, 2, 3, 16  # GQA: 6 query heads on 2 kv heads
    g = torch.Generator().manual_seed(len(case))
    query = torch.randn(rows, kv_heads * rep, q, d, generator=g)
    prefix = tuple(torch.randn(prompts, kv_heads, prefix_len, d, generator=g) for _ in range(2))
    suffix = tuple(torch.randn(rows, kv_heads, suffix_len, d, generator=g) for _ in range(2))
    pads = [i % 3 for i in range(prompts)]  # left padding inside the prefix
    allowed = window_mask(pads, groups, q, prefix_len, suffix_len, window)
    assert allowed.any(-1).all()  # every query sees some key (its own column, or the prefix when Ls = 0)
    ours = shared_prefix_attention(query, prefix, suffix, allowed, 0.3, softcap)
    reference = plain_attention(query, prefix, suffix, allowed, 0.3, softcap)
    assert ours.shape == (rows, q, kv_heads * rep, d) and ours.dtype == torch.float32
    torch.testing.assert_close(ours.double(), reference, rtol=1e-5, atol=1e-5)
    if case == "window past the whole prefix for some rows":
        assert not allowed[:, :, -1, :prefix_len].any()  # that query's prefix part is empty: lse −inf, weight 0


def test_merge_state_identity_and_an_empty_side() -> None:
    g = torch.Generator().manual_seed(0)
    scores, values = (
        torch.randn(5, 12, generator=g, dtype=torch.float64),
        torch.randn(12, 4, generator=g, dtype=torch.float64),
    )
    halves = [(scores[:, s].softmax(-1) @ values[s], scores[:, s].logsumexp(-1)) for s in (slice(0, 7), slice(7, 12))]
    out, lse = merge_states(*halves[0], *halves[1])
    torch.testing.assert_close(out, scores.softmax(-1) @ values)
    torch.testing.assert_close(lse, scores.logsumexp(-1))
    empty = (torch.zeros(5, 4, dtype=torch.float64), torch.full((5,), float("-inf"), dtype=torch.float64))
    out, lse = merge_states(*empty, *halves[1])
    torch.testing.assert_close(out, halves[1][0])
    out, lse = merge_states(*empty, *empty)
    assert (out == 0).all() and (lse == float("-inf")).all()  # nothing to attend to: zeros, never NaN


def tiny_gemma(tokenizer, window: int) -> Gemma3ForCausalLM:
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=1, head_dim=8, sliding_window=window,
        layer_types=["sliding_attention", "full_attention"] * 2,
        max_position_embeddings=256, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    return Gemma3ForCausalLM(config).eval()


def test_the_cache_keeps_one_prefix_copy_per_prompt() -> None:
    tokenizer = char_tokenizer()
    model = tiny_gemma(tokenizer, window=8)
    prefill = DynamicCache()
    model(input_ids=torch.randint(3, 50, (2, 5)), cache=prefill)
    cache = SharedPrefixCache(prefill, groups=3, new_tokens=4)
    keys, values = cache.prefix(1)
    assert keys.data_ptr() == prefill.layers[1].keys.data_ptr() and keys.shape == (2, 1, 5, 8)  # the prefill's own
    assert values.data_ptr() == prefill.layers[1].values.data_ptr()
    assert cache.layers[1].buffer.keys[1].shape == (6, 1, 4, 8)  # suffix columns only, one per row and new token
    assert cache.get_seq_length() == 5 and cache.row(4)[1][0].shape == (1, 1, 5, 8)


def test_without_cascade_the_switched_model_is_sdpa_exactly() -> None:
    tokenizer = char_tokenizer()
    model = tiny_gemma(tokenizer, window=4)
    ids, mask = torch.randint(3, 50, (3, 9)), torch.ones(3, 9, dtype=torch.long)
    mask[0, :3] = 0
    before = model(input_ids=ids, attention_mask=mask).logits
    assert enable(model) and model.config._attn_implementation == ATTENTION
    assert torch.equal(model(input_ids=ids, attention_mask=mask).logits, before)  # bit for bit
    model.set_attn_implementation("eager")
    assert not enable(model)  # another implementation is left alone; the backend copies the prefix instead
    assert not HFBackend(model, tokenizer, threads=1).cascade


def tokens(generations) -> list:
    return [[g.token_ids for g in row] for row in generations]


def assert_same_samples(ours, reference) -> None:
    """Tokens identical. Log-probs within 1e-5: the merged attention sums in another order than SDPA (fp32)."""
    assert tokens(ours) == tokens(reference)
    for row, ref_row in zip(ours, reference, strict=True):
        for g, r in zip(row, ref_row, strict=True):
            assert g.logprobs == pytest.approx(r.logprobs, abs=1e-5) and g.finish == r.finish


@pytest.mark.parametrize("model_kind", ["gemma3, window 6", "step LM (llama)"])
def test_backend_samples_the_same_tokens_with_and_without_cascade(model_kind) -> None:
    tokenizer = char_tokenizer()
    if model_kind.startswith("gemma3"):
        model = tiny_gemma(tokenizer, window=6)  # every prompt is longer: the window cuts into the prefix
    else:
        torch.manual_seed(0)
        model = build_step_lm(hidden=64, layers=2, heads=2, vocab_size=len(tokenizer))
    header = "Question: Calculate 1 + 1.\n2\nAnswer: 2\n\n"
    cascade = HFBackend(model, tokenizer, header, threads=1)
    copied = HFBackend(model, tokenizer, header, threads=1, cascade=False)
    assert cascade.cascade and not copied.cascade
    problems = ArithmeticTask().generate("val", 3, seed=4)
    states = [State(p) for p in problems] + [State(problems[0], (problems[0].steps[0],))]
    fixed = cascade.generate_steps(states, 4, max_new_tokens=16, seed=9, stop=None)
    assert_same_samples(fixed, copied.generate_steps(states, 4, max_new_tokens=16, seed=9, stop=None))
    assert len({g.token_ids for g in fixed[0]}) > 1  # siblings differ
    single = cascade.generate_steps(states[:2], 1, max_new_tokens=8, seed=2, stop=None)  # G = 1
    assert_same_samples(single, copied.generate_steps(states[:2], 1, max_new_tokens=8, seed=2, stop=None))
    prompts = [s.prompt(header) for s in states[:2]]
    assert_same_samples(
        cascade.generate_texts(prompts, 3, 10, seed=5, stop=None),
        cascade.generate_texts_per_path(prompts, 3, 10, seed=5, stop=None),
    )
    steps = cascade.generate_steps(states, 3, max_new_tokens=12, seed=1)  # stops at the boundary; store saves rows
    assert_same_samples(steps, copied.generate_steps(states, 3, max_new_tokens=12, seed=1))
    if model_kind.startswith("step LM"):  # inside the window: the children's prompts come from saved cascade rows
        child = State(states[0].problem, (steps[0][0].text,))
        child_ids, parent = cascade.encode(child.prompt(header)), cascade.encode(states[0].prompt(header))
        assert cascade.store.longest_prefix(child_ids, len(child_ids) - 1)[0] > len(parent)  # parent + its step
        reused = cascade.generate_steps([child], 2, max_new_tokens=8, seed=6)
        assert_same_samples(reused, cascade.generate_texts_per_path([child.prompt(header)], 2, 8, seed=6))
