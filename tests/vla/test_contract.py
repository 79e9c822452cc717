"""Bad input fails at the model boundary with a ValueError naming the field, expected and received."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from reasonact.vla.config import TINY, VLAConfig
from reasonact.vla.model import build_model
from reasonact.vla.prompt import ByteTokenizer, PromptTokenizer


@pytest.fixture(scope="module")
def model(fast):
    return build_model(TINY, fast)


def _replace(obs, **changes):
    return dataclasses.replace(obs, **changes)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: {"images": {"base": o.images["base"][:, :16]}}, r"images\['base'\].*expected size 32"),
        (lambda o: {"images": {"base": o.images["base"].double()}}, r"images\['base'\].*dtype uint8 or float32"),
        (lambda o: {"images": {"base": o.images["base"].float()}}, r"images\['base'\].*\[-1, 1\]"),
        (lambda o: {"images": {}}, r"images: missing camera.*\['base'\]"),
        (lambda o: {"images": {**o.images, "wrist": o.images["base"]}}, r"images: unknown camera"),
        (lambda o: {"state": o.state[:, :5]}, r"state: expected size 8 on axis 1.*received shape \(2, 5\)"),
        (lambda o: {"state": o.state.masked_fill(torch.eye(2, 8, dtype=torch.bool), float("nan"))}, r"state:.*NaN"),
        (lambda o: {"tokens": torch.zeros(2, 60, dtype=torch.int64)}, r"tokens: prompt too long.*48.*60"),
        (lambda o: {"tokens": o.tokens + 10_000}, r"tokens: expected ids in \[0, "),
        (lambda o: {"token_mask": o.token_mask[:1]}, r"tokens_mask"),
    ],
)
def test_bad_observation_is_refused_with_field_and_expectation(model, make_obs, actions, change, message) -> None:
    obs = make_obs()
    bad = _replace(obs, **change(obs))
    with pytest.raises(ValueError, match=message):
        model.compute_loss(bad, actions)
    with pytest.raises(ValueError, match=message):
        model.sample_actions(bad)


def test_bad_actions_are_refused(model, make_obs, actions) -> None:
    obs = make_obs()
    with pytest.raises(ValueError, match=r"actions: expected size 10 on axis 1"):
        model.compute_loss(obs, actions[:, :5])
    nan = actions.clone()
    nan[1, 3, 2] = float("nan")
    first_nan = r"actions: expected finite values, received 1 NaN/inf \(first at index \(1, 3, 2\)\)"
    with pytest.raises(ValueError, match=first_nan):
        model.compute_loss(obs, nan)


def test_prompt_too_long_is_refused_by_the_tokenizer() -> None:
    with pytest.raises(ValueError, match=r"prompts\[1\]: prompt too long: expected at most max_prompt_tokens=48"):
        PromptTokenizer(TINY)(["ok", "x" * 100], np.zeros((2, 8)))


def test_state_representations() -> None:
    state = np.array([[-1.0, -0.99, 0.0, 0.5, 0.99, 1.0, 2.0, -3.0]])
    text_cfg = dataclasses.replace(TINY, state_mode="text", state_bins=10)
    tokens, mask = PromptTokenizer(text_cfg)(["go"], state)
    assert ByteTokenizer().decode(tokens[0][mask[0]].tolist()) == "go\nState: 0 0 5 7 9 9 9 0;\n"
    special_cfg = dataclasses.replace(TINY, state_mode="special", state_bins=10)
    tokens, mask = PromptTokenizer(special_cfg)(["go"], state)
    expected = [ord("g"), ord("o")] + [256 + d * 10 + b for d, b in enumerate([0, 0, 5, 7, 9, 9, 9, 0])]
    assert tokens[0][mask[0]].tolist() == expected
    continuous_cfg = dataclasses.replace(TINY, state_mode="continuous")
    tokens, mask = PromptTokenizer(continuous_cfg)(["go"], state)
    assert tokens[0][mask[0]].tolist() == [ord("g"), ord("o")]
    model = build_model(continuous_cfg.with_variant("pi05"))
    assert model.state_proj is not None and continuous_cfg.prefix_len == TINY.prefix_len + 1
    # π0 keeps the state out of the prefix whatever state_mode says: it is the first token of the suffix
    pi0 = special_cfg.with_variant("pi0")
    tokens, mask = PromptTokenizer(pi0)(["go"], state)
    assert tokens[0][mask[0]].tolist() == [ord("g"), ord("o")] and pi0.prefix_len == TINY.prefix_len
    assert build_model(pi0).state_proj is None and pi0.fast_offset == pi0.lm.vocab_size
    # a sample without a state (a VLM record) gets no state tokens
    tokens, mask = PromptTokenizer(special_cfg)(["go", "go"], np.zeros((2, 8)), has_state=[True, False])
    assert mask.sum(1).tolist() == [10, 2]


def test_config_rejects_unknown_variant_and_bad_dims() -> None:
    with pytest.raises(ValueError, match="variant: expected one of"):
        VLAConfig(variant="pi1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kv_heads: expected a divisor of heads=4"):
        VLAConfig(lm=dataclasses.replace(TINY.lm, kv_heads=3))
