"""Every named variant preset builds, computes the losses of its recipe and samples a chunk (tiny dims)."""

from __future__ import annotations

import pytest
import torch

from reasonact.vla.config import VARIANTS
from reasonact.vla.model import build_model

# variant → losses without / with VLM text targets (KI paper Sec. 5 recipes; `config.py` table)
EXPECTED = {
    "pi0": ({"flow", "loss"}, {"ce", "flow", "loss"}),
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
