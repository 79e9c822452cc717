"""Shared fixtures: a randomly initialised tiny Llama with the real character tokenizer (fast tests)
and the SFT-trained tiny policy (slow tests; trained once and cached under ~/.cache/reasonact)."""

from __future__ import annotations

import pytest
import torch

from reasonact.reasoning.backends.hf import HFBackend
from reasonact.reasoning.step_lm import build_step_lm, char_tokenizer


@pytest.fixture(scope="session")
def random_backend() -> HFBackend:
    torch.manual_seed(0)
    tokenizer = char_tokenizer()
    model = build_step_lm(hidden=64, layers=2, heads=2, vocab_size=len(tokenizer))
    return HFBackend(model, tokenizer, header="Question: Calculate 1 + 1.\n2\nAnswer: 2\n\n", threads=1)


@pytest.fixture(scope="session")
def trained_backend() -> HFBackend:
    from reasonact.reasoning.step_lm import POLICY_PRESETS
    from reasonact.training.policy_sft import cached_policy

    return HFBackend.from_pretrained(cached_policy(POLICY_PRESETS["tiny"]), threads=1)
