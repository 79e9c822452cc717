"""The loss: every autoregressive token is a CE target, CE is averaged per sample, and mixed batches (robot
samples with actions beside VLM samples with text targets only) mask each term per sample."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from reasonact.actions import FastConfig, FastTokenizer
from reasonact.vla.model import build_model


def _with_targets(obs, rows: list[list[int]]):
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    mask = torch.tensor([[True] * len(r) + [False] * (width - len(r)) for r in rows])
    return dataclasses.replace(obs, targets=ids, target_mask=mask)


def _row(obs, i: int):
    """Batch row i alone (its targets cut to its own length)."""
    n = int(obs.target_mask[i].sum())
    return dataclasses.replace(obs, images={k: v[i : i + 1] for k, v in obs.images.items()},
                               state=obs.state[i : i + 1], tokens=obs.tokens[i : i + 1],
                               token_mask=obs.token_mask[i : i + 1], targets=obs.targets[i : i + 1, :n],
                               target_mask=obs.target_mask[i : i + 1, :n])  # fmt: skip


def test_one_token_answer_is_learned_from_the_last_prefix_position(config_of, make_obs) -> None:
    """A one-token VLM answer is a CE target (predicted from the last valid prefix position)."""
    torch.manual_seed(0)
    model = build_model(config_of("ki"))
    obs = _with_targets(make_obs(), [[65], [66]])
    losses = model.compute_loss(obs, None)
    assert set(losses) == {"ce", "loss"}
    h, valid = model.embed_prefix(obs)
    blocks = torch.cat([torch.zeros_like(valid, dtype=torch.int64), torch.ones(2, 1, dtype=torch.int64)], 1)
    hidden, _ = model.lm(torch.cat([h, model.lm.embed_tokens(obs.targets)], 1), blocks,
                         torch.cat([valid.cumsum(1) - 1, valid.sum(1, keepdim=True)], 1),
                         torch.cat([valid, torch.ones(2, 1, dtype=torch.bool)], 1))  # fmt: skip
    last = valid.shape[1] - 1 - valid.flip(1).int().argmax(1)  # last valid prefix token of each row
    logits = model.lm.logits(hidden[torch.arange(2), last])  # (2, vocab)
    torch.testing.assert_close(losses["ce"], F.cross_entropy(logits, obs.targets[:, 0]))


def test_cross_entropy_is_averaged_per_sample_then_over_the_batch(config_of, make_obs) -> None:
    torch.manual_seed(0)
    model = build_model(config_of("pi05"))
    long, short = [10, 11, 12, 13, 14, 15, 16, 17], [20]
    obs = _with_targets(make_obs(), [long, short])
    both = model.compute_loss(obs, None)["ce"]
    alone = [model.compute_loss(_row(obs, i), None)["ce"] for i in range(2)]
    torch.testing.assert_close(both, (alone[0] + alone[1]) / 2, rtol=1e-5, atol=1e-6)  # not token-weighted (8:1)


@pytest.mark.parametrize("name", ["ki", "pi0", "pi05", "pi0_fast"])
def test_mixed_batch_equals_the_sum_of_its_parts(name, config_of, make_obs, fast, actions) -> None:
    """Row 0: a robot sample (actions); row 1: a VLM sample (text target only). The mixed loss is
    (L_robot + L_vlm) / 2, each computed alone, with the same noise and τ."""
    torch.manual_seed(0)
    model = build_model(config_of(name), fast)
    obs = _with_targets(make_obs(), [[], [70, 71, 72]])
    obs = dataclasses.replace(obs, target_mask=obs.target_mask & torch.tensor([[False], [True]]))
    noise, tau = torch.randn_like(actions), torch.tensor([0.3, 0.6])
    mixed = model.compute_loss(obs, actions, action_mask=torch.tensor([True, False]), noise=noise, tau=tau)
    robot = model.compute_loss(_row(obs, 0), actions[:1], noise=noise[:1], tau=tau[:1])
    vlm = model.compute_loss(_row(obs, 1), None)
    torch.testing.assert_close(mixed["loss"], (robot["loss"] + vlm["loss"]) / 2, rtol=1e-5, atol=1e-6)
    if "flow" in robot:
        torch.testing.assert_close(mixed["flow"], robot["flow"], rtol=1e-5, atol=1e-6)
    # the VLM row's garbage "actions" change nothing
    scrambled = actions.clone()
    scrambled[1] = 1e3
    again = model.compute_loss(obs, scrambled, action_mask=torch.tensor([True, False]), noise=noise, tau=tau)
    torch.testing.assert_close(again["loss"], mixed["loss"])


def test_model_rejects_a_tokenizer_that_does_not_fit(config_of, chunks) -> None:
    big = FastTokenizer.fit(chunks, FastConfig(vocab_size=400))
    assert big.vocab_size > 256 and big.horizon == chunks.shape[1]
    with pytest.raises(ValueError, match=r"fast: tokenizer vocabulary .* exceeds fast_vocab=256"):
        build_model(config_of("ki"), big)
    short = FastTokenizer.fit(chunks[:, :5], FastConfig(vocab_size=256))
    with pytest.raises(ValueError, match="fast: tokenizer fitted on horizon 5, the model has horizon=10"):
        build_model(config_of("ki"), short)
    narrow = FastTokenizer.fit(chunks[..., :3], FastConfig(vocab_size=256))
    with pytest.raises(ValueError, match="fast: tokenizer fitted on action dim 3, the model has action_dim=7"):
        build_model(config_of("ki"), narrow)


def test_bad_action_mask_and_noise_are_refused(config_of, make_obs, fast, actions) -> None:
    model = build_model(config_of("ki"), fast)
    with pytest.raises(ValueError, match="action_mask"):
        model.compute_loss(make_obs(), actions, action_mask=torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="noise"):
        model.compute_loss(make_obs(), actions, noise=torch.zeros(2, 3, 7))
