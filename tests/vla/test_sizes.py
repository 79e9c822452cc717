"""Sizes: the paper model builds on the meta device with Gemma 2B's parameter count and runs shape-wise."""

from __future__ import annotations

import dataclasses

import torch

from reasonact.cli import main
from reasonact.vla.attention import KVCache
from reasonact.vla.commands import parameter_counts
from reasonact.vla.config import GEMMA270M, PAPER, SIZES, TINY
from reasonact.vla.model import build_model


def test_paper_backbone_has_gemma_2b_parameter_count() -> None:
    """Gemma 2B (vocab 256,000) has 2,506,172,416 parameters; ours without any extra vocabulary rows."""
    lm_only = dataclasses.replace(PAPER, lm=dataclasses.replace(PAPER.lm, vocab_size=256_000 - 2 - PAPER.fast_vocab))
    counts = parameter_counts(lm_only)
    assert counts["lm_embedding"] + counts["lm_layers"] == 2_506_172_416
    assert 400e6 < counts["vision"] < 430e6  # SigLIP So400m/14 vision tower without its pooling head


def test_paper_expert_is_the_300m_gemma_with_adaptive_norms() -> None:
    w, mlp, heads, hd, depth, d = 1024, 4096, 8, 256, 18, 32
    attention = w * heads * hd * 2 + w * hd * 2  # q, o; one k/v head
    adaptive = 2 * (w * 3 * w + 3 * w)  # two adaptive RMSNorms (scale, shift, gate)
    per_layer = attention + 3 * w * mlp + adaptive
    time_mlp, io, final_norm = 2 * (w * w + w), (d * w + w) + (w * d + d), w * 3 * w + 3 * w  # final norm adaptive
    assert parameter_counts(PAPER)["expert"] == depth * per_layer + time_mlp + io + final_norm
    # the Gemma-300M part alone (openpi gemma_300m without embedding) is ~311 M
    assert abs(depth * (attention + 3 * w * mlp + 2 * w) - 311e6) < 1e6


def test_paper_runs_shape_wise_on_meta() -> None:
    model = build_model(PAPER, device="meta")
    assert all(p.is_meta for p in model.parameters())
    with torch.device("meta"):
        images = torch.zeros(1, 224, 224, 3)
        tokens = model.projector(model.vision(images))
        assert tokens.shape == (1, 256, 2048)
        n = 456
        positions = torch.arange(n)[None]
        _, cache = model.lm(torch.zeros(1, n, 2048), torch.zeros(1, n, dtype=torch.int64), positions,
                            torch.ones(1, n, dtype=torch.bool))  # fmt: skip
        assert isinstance(cache, KVCache) and cache.keys[0].shape == (1, 1, n, 256) and len(cache.keys) == 18
        v_t = model.expert(torch.zeros(1, 50, 32), torch.zeros(1), cache, stop_gradient=True)
        assert v_t.shape == (1, 50, 32)


def test_every_size_builds_on_meta_and_sizes_grow() -> None:
    totals = {name: parameter_counts(cfg)["total"] for name, (_, cfg) in SIZES.items()}
    assert totals["tiny"] < totals["small"] < totals["gemma270m"] < totals["paper"]
    assert 268e6 < parameter_counts(GEMMA270M)["lm_embedding"] + parameter_counts(GEMMA270M)["lm_layers"] < 270e6
    assert parameter_counts(TINY.with_variant("pi0_fast"))["expert"] == 0


def test_cli_prints_backbone_and_expert_counts(capsys) -> None:
    main(["vla", "params", "paper"])
    out = capsys.readouterr().out
    assert "backbone" in out and "2,927,533,808" in out and "expert" in out and "430,098,464" in out
