"""VQA evaluation reads the text vocabulary only: teacher-forced caption CE over the decode cache equals a full
forward pass, and two models that differ only outside the text rows of the embedding (another FAST vocabulary,
other FAST/state rows: a pre-stage and a run trained from it) score exactly the same perplexity and answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reasonact.vla.config import TINY
from reasonact.vla.model import build_model
from reasonact.vla.prompt import ByteTokenizer
from reasonact.vla.vqa_eval import (
    VlmRecords,
    answer_nll,
    caption_perplexity,
    evaluate_vqa,
    vlm_observation,
)

GEMMA3_TINY = dataclasses.replace(
    TINY, lm=dataclasses.replace(TINY.lm, qk_norm=True, sandwich_norm=True, sliding_window=20, global_every=2)
)


def records(n: int = 6, seed: int = 0) -> VlmRecords:
    """Random images with captions and short VQA answers of different lengths (padding inside a batch)."""
    rng = np.random.default_rng(seed)
    size = TINY.vision.image_size
    images = torch.from_numpy(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8))
    kinds = ["caption", "color"] * (n // 2)
    answers = [("a red puck left of the goal" if k == "caption" else "red")[: 8 + 3 * i] for i, k in enumerate(kinds)]
    return VlmRecords(images, ["describe the image"] * n, answers, kinds, ["train"] * n)


def full_forward_nll(model, obs) -> torch.Tensor:
    """Reference: one forward over [prefix, targets] (the layout `compute_loss` trains), text-vocabulary CE."""
    h, valid = model.embed_prefix(obs)
    pos = (valid.cumsum(1) - 1).clamp(min=0)
    ids, mask = obs.targets, obs.target_mask
    steps = torch.arange(1, ids.shape[1] + 1)
    x = torch.cat([h, model.lm.embed_tokens(ids)], 1)
    blocks = torch.cat([torch.zeros_like(pos), steps.expand_as(ids)], 1)
    start = valid.sum(1, keepdim=True)
    hidden, _ = model.lm(x, blocks, torch.cat([pos, start + steps - 1], 1), torch.cat([valid, mask], 1))
    last = valid.long().cumsum(1).argmax(1)
    picked = torch.cat([hidden[torch.arange(len(last)), last][:, None], hidden[:, h.shape[1] : -1]], 1)
    logits = model.lm.logits(picked)[..., : model.config.lm.vocab_size]
    ce = F.cross_entropy(logits.flatten(0, 1), ids.flatten(), reduction="none").view(ids.shape)
    return (ce * mask).sum(1) / mask.sum(1)


@pytest.mark.parametrize("cfg", [TINY, GEMMA3_TINY], ids=["gemma1", "gemma3"])
def test_teacher_forced_nll_over_the_decode_cache_equals_a_full_forward(cfg) -> None:
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    part = records()
    obs = vlm_observation(cfg, ByteTokenizer(), part.images, part.questions, part.answers)
    assert not bool(obs.target_mask.all())  # padded rows are part of the check
    with torch.no_grad():
        got, expected = answer_nll(model, obs), full_forward_nll(model, obs)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert got.std() > 0


def test_rows_outside_the_text_vocabulary_change_neither_perplexity_nor_answers() -> None:
    """The frozen-variant case: text weights bit-identical to the pre-stage's, other FAST/state rows."""
    torch.manual_seed(0)
    pre = build_model(TINY).eval()
    other_cfg = dataclasses.replace(TINY, fast_vocab=2 * TINY.fast_vocab, state_bins=16)
    torch.manual_seed(1)
    run = build_model(other_cfg).eval()
    assert run.lm.embed.weight.shape[0] != pre.lm.embed.weight.shape[0]
    state = {k: v for k, v in pre.state_dict().items() if k in run.state_dict() and k != "lm.embed.weight"}
    run.load_state_dict(state, strict=False)
    with torch.no_grad():
        run.lm.embed.weight[: TINY.lm.vocab_size] = pre.lm.embed.weight[: TINY.lm.vocab_size]
        run.lm.embed.weight[TINY.lm.vocab_size :] *= 30.0  # loud rows outside the text vocabulary
    part, text = records(), ByteTokenizer()
    captions = part.where(kind="caption")
    assert caption_perplexity(run, captions, text) == caption_perplexity(pre, captions, text)
    assert evaluate_vqa(run, part, text, splits=("train",)) == evaluate_vqa(pre, part, text, splits=("train",))
    # the softmax over the whole table (compute_loss's CE, what the study used before) tells them apart
    obs = {
        m: vlm_observation(m.config, text, captions.images, captions.questions, captions.answers) for m in (pre, run)
    }
    with torch.no_grad():
        full = [float(m.compute_loss(obs[m], None)["ce"]) for m in (pre, run)]
    assert full[1] > full[0] + 1.0
