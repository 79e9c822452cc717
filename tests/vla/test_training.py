"""A tiny KI model fitted on two chunks: both losses fall, FAST decoding and flow sampling recover the chunks."""

from __future__ import annotations

import numpy as np
import torch

from reasonact.vla.model import build_model


def test_ki_overfits_two_chunks_through_both_heads(config_of, make_obs, fast, chunks) -> None:
    torch.manual_seed(0)
    model = build_model(config_of("ki"), fast)
    obs, actions = make_obs(), torch.tensor(chunks[[0, 30]], dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = model.compute_loss(obs, actions)
    untrained_error = (model.sample_actions(obs) - actions).abs().mean()
    for _ in range(150):
        losses = model.compute_loss(obs, actions)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        last = model.compute_loss(obs, actions)
    assert last["ce"] < 0.05 * first["ce"] and last["flow"] < 0.25 * first["flow"]
    decoded = model.sample_fast(obs)
    assert decoded.valid.all() and np.abs(decoded.actions - actions.numpy()).mean() < 0.05
    sampled = model.sample_actions(obs)
    error = (sampled - actions).abs().mean()  # from fresh noise: ~0.1 after 150 steps, ~1 untrained
    assert error < 0.75 * actions.abs().mean() and error < 0.2 * untrained_error
