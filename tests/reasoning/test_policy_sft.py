"""Policy SFT: an interrupted run resumes from its checkpoint and ends with the same weights as an
uninterrupted one; problems longer than the context are refused."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from reasonact.reasoning.step_lm import PolicySFTConfig, policy_key
from reasonact.training.policy_sft import train_policy

TINY = PolicySFTConfig(
    difficulty="easy", problems=40, hidden=32, layers=1, heads=2, steps=6, batch=4, checkpoint_every=2
)


def test_interrupted_training_resumes_exactly(tmp_path) -> None:
    whole = train_policy(TINY, tmp_path / "whole")
    train_policy(TINY, tmp_path / "split", stop_after=3)  # "interrupted" after 3 of 6 steps
    assert not (tmp_path / "split").exists() and (tmp_path / "split.run" / "checkpoints" / "latest").exists()
    split = train_policy(TINY, tmp_path / "split")
    a, b = load_file(whole / "model.safetensors"), load_file(split / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    split_metrics = (tmp_path / "split.run" / "metrics.jsonl").read_text()  # rolled back to the checkpoint
    assert split_metrics == (tmp_path / "whole.run" / "metrics.jsonl").read_text()  # on resume: one line a step


def test_too_long_problems_and_bad_configs_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="context"):
        train_policy(PolicySFTConfig(family="gsm", problems=4, context=64, steps=1), tmp_path / "p")
    with pytest.raises(ValueError, match="steps"):
        PolicySFTConfig(steps=0)
    assert policy_key(TINY) == policy_key(PolicySFTConfig(**{**TINY.__dict__, "checkpoint_every": 5}))
