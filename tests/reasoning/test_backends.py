"""HF backend: batched + prefix-reusing generation gives the same tokens as per-path `generate`."""

from __future__ import annotations

import pytest
import torch

from reasonact.reasoning.backends import base
from reasonact.reasoning.backends.base import SAMPLING_BLOCK, SAMPLING_CHUNK, pick_tokens, sample_tokens, token_logprobs
from reasonact.reasoning.mdp import State
from reasonact.reasoning.tasks import ArithmeticTask


@pytest.fixture(scope="module")
def states():
    problems = ArithmeticTask().generate("val", 3)
    return [State(p) for p in problems] + [State(problems[0], (problems[0].steps[0],))]


def tokens(generations):
    return [[g.token_ids for g in row] for row in generations]


def test_batched_matches_per_path_generate(random_backend, states) -> None:
    random_backend.store.clear()
    batched = random_backend.generate_steps(states, 3, max_new_tokens=10, temperature=1.0, seed=7)
    prompts = [s.prompt(random_backend.header) for s in states]
    reference = random_backend.generate_texts_per_path(prompts, 3, 10, temperature=1.0, seed=7)
    assert tokens(batched) == tokens(reference)
    for row, ref_row in zip(batched, reference, strict=True):
        for g, r in zip(row, ref_row, strict=True):
            assert g.logprobs == pytest.approx(r.logprobs, abs=1e-4) and g.finish == r.finish and g.text == r.text
    assert len({g.token_ids for g in batched[0]}) > 1  # siblings differ


def test_prefix_store_reuses_kv_without_changing_outputs(random_backend, states) -> None:
    random_backend.store.clear()
    first = random_backend.generate_steps(states, 2, max_new_tokens=8, seed=3)
    hits = random_backend.store.hits
    again = random_backend.generate_steps(states, 2, max_new_tokens=8, seed=3)
    assert random_backend.store.hits > hits  # every prompt came from the store
    assert tokens(first) == tokens(again)
    child = State(states[0].problem, (first[0][0].text,))  # a child: its parent's prompt + step is stored
    reused = random_backend.generate_steps([child], 2, max_new_tokens=8, seed=5)
    fresh = random_backend.generate_texts_per_path([child.prompt(random_backend.header)], 2, 8, seed=5)
    assert tokens(reused) == tokens(fresh)


def test_step_boundary_and_fixed_length_modes(random_backend, states) -> None:
    fixed = random_backend.generate_steps(states[:2], 2, max_new_tokens=6, stop=None)
    assert all(len(g.token_ids) == 6 and g.finish == "length" for row in fixed for g in row)
    prompts = [s.prompt(random_backend.header) for s in states[:2]]
    long = random_backend.generate_texts(prompts, 4, 40, stop=None)
    assert any(random_backend.eos_id in g.token_ids for row in long for g in row)  # eos sampled, not an end
    assert tokens(long) == tokens(random_backend.generate_texts_per_path(prompts, 4, 40, stop=None))
    greedy = random_backend.generate_steps(states[:1], 3, max_new_tokens=6, temperature=0.0)
    assert len({g.token_ids for g in greedy[0]}) == 1
    for g in [g for row in random_backend.generate_steps(states, 4, max_new_tokens=12) for g in row]:
        assert "\n" not in g.text and len(g.logprobs) == len(g.token_ids)
        assert (g.finish == "stop") == ("\n" in random_backend.tokenizer.decode(list(g.token_ids)))


def test_bad_requests_fail_clearly_and_long_prompts_become_records(random_backend, states) -> None:
    with pytest.raises(ValueError, match="n:"):
        random_backend.generate_steps(states, 0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        random_backend.generate_steps(states, 1, max_new_tokens=0)
    with pytest.raises(ValueError, match="prompts"):
        random_backend.generate_texts("a prompt", 1, 4)
    long = State(states[0].problem, ("1 + 1",) * 200)  # > 512 positions
    out = random_backend.generate_steps([long, states[0]], 2, max_new_tokens=4)
    assert [g.finish for g in out[0]] == ["too_long", "too_long"] and out[0][0].failure == "too_long"
    assert all(g.finish != "too_long" for g in out[1])


def test_two_level_sampler_is_the_flat_inverse_cdf() -> None:
    """Blocked inverse-CDF sampling picks the token a flat float64 CDF picks, with vocabularies
    that do and do not fill the last block; NaN logits are refused, not sampled."""
    generator = torch.Generator().manual_seed(0)
    for vocab in (100, 3 * SAMPLING_BLOCK):
        logits = torch.randn(256, vocab, generator=generator) * 3  # (r, V)
        uniforms = torch.rand(256, generator=generator, dtype=torch.float64)  # (r,)
        cdf = torch.softmax(logits.double() / 0.7, -1).cumsum(-1)  # (r, V)
        flat = torch.searchsorted(cdf, (uniforms * cdf[:, -1])[:, None]).squeeze(-1)  # (r,)
        assert torch.equal(pick_tokens(logits, uniforms, 0.7), flat)
    expected = torch.log_softmax(logits, -1).gather(1, flat[:, None])[:, 0]
    assert torch.allclose(token_logprobs(logits, flat), expected, atol=1e-5)
    logits[3, 5] = float("nan")
    with pytest.raises(ValueError, match="logits"):
        token_logprobs(logits, flat)


def test_fused_sampler_gives_the_tokens_and_logprobs_of_the_two_calls() -> None:
    """`sample_tokens` = (`pick_tokens`, `token_logprobs`): the same tokens, log-probs to float
    rounding, at T = 1 (the one-pass path) and T = 0.7, in float32 and bfloat16; NaN refused."""
    generator = torch.Generator().manual_seed(1)
    for dtype in (torch.float32, torch.bfloat16):
        for vocab in (100, 3 * SAMPLING_BLOCK):
            logits = (torch.randn(64, vocab, generator=generator) * 4).to(dtype)  # (r, V)
            logits[0, : vocab // 2] = float("-inf")  # masked entries carry no weight
            uniforms = torch.rand(64, generator=generator, dtype=torch.float64)  # (r,)
            for temperature in (1.0, 0.7):
                tokens, logprobs = sample_tokens(logits, uniforms, temperature)
                assert torch.equal(tokens, pick_tokens(logits, uniforms, temperature))
                assert torch.allclose(logprobs, token_logprobs(logits, tokens), atol=1e-5, rtol=0)
            assert tokens[0] >= vocab // 2
    logits[5, 7] = float("nan")
    with pytest.raises(ValueError, match="logits"):
        sample_tokens(logits, uniforms, 1.0)


def test_chunked_exponentiation_changes_no_draw(monkeypatch) -> None:
    """Exponentiating the vocabulary `SAMPLING_CHUNK` entries at a time gives the tokens and log-probs of one
    pass over all of it, bit for bit: several chunks, a partial last block, T = 1 and 0.7, float32 and bfloat16."""
    generator = torch.Generator().manual_seed(2)
    vocab = 2 * SAMPLING_CHUNK + 5
    for dtype in (torch.float32, torch.bfloat16):
        logits = (torch.randn(64, vocab, generator=generator) * 4).to(dtype)  # (r, V)
        uniforms = torch.rand(64, generator=generator, dtype=torch.float64)  # (r,)
        for temperature in (1.0, 0.7):
            chunked = sample_tokens(logits, uniforms, temperature)
            with monkeypatch.context() as one_pass:
                one_pass.setattr(base, "SAMPLING_CHUNK", 4 * vocab)
                whole = sample_tokens(logits, uniforms, temperature)
            assert torch.equal(chunked[0], whole[0]) and torch.equal(chunked[1], whole[1])
