"""The backbone reads its images (issue 17): on scenes that barely change, where the answer is in the image
only, a tiny VLA trained a few dozen steps scores a clearly lower loss with its own images than with shuffled
ones. Before the per-pixel dataset normalisation (`backbone.PixelNorm`) the two losses were equal (0.1738 /
0.1738 after 50 steps, 0.1704 / 0.1704 after 200): the image-dependent part of the image tokens collapsed in
the first steps. Also: the diagnostics of `vla.image_use`, and the statistics travel with the weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reasonact.training.vla_config import TINY_VLM
from reasonact.training.vlm_pretrain import backbone_tensors
from reasonact.vla.image_use import image_dependence, losses_with_images, shuffled
from reasonact.vla.model import build_model
from reasonact.vla.prompt import ByteTokenizer
from reasonact.vla.vqa_eval import vlm_observation

QUESTION = "Which colour is the square?"


def faint_squares(rng: np.random.Generator, n: int, size: int = 32, alpha: float = 0.15):
    """A fixed textured scene with an 8 px square blended in at 15% red or blue at a random place: the answer
    is in the image only, and images differ by a few grey levels, as frames of a fixed robot camera do."""
    scene = np.random.default_rng(123).integers(40, 200, (size, size, 3)).astype(float)  # (S, S, 3)
    colours = np.array([[255.0, 0, 0], [0, 0, 255.0]])
    images, answers = np.repeat(scene[None], n, 0), []
    for i in range(n):
        c, (x, y) = rng.integers(2), rng.integers(0, size - 8, 2)
        images[i, y : y + 8, x : x + 8] = (1 - alpha) * images[i, y : y + 8, x : x + 8] + alpha * colours[c]
        answers.append(("red", "blue")[c])
    return torch.from_numpy(images.round().astype(np.uint8)), [QUESTION] * n, answers


def test_a_tiny_backbone_learns_to_read_faint_image_differences() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model, text = build_model(TINY_VLM), ByteTokenizer()
    rng = np.random.default_rng(0)
    images, questions, answers = faint_squares(rng, 256)
    model.fit_pixel_statistics({"base": images.split(64)})
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=1e-10)
    for _ in range(50):
        rows = rng.choice(256, 16)
        obs = vlm_observation(TINY_VLM, text, images[rows], questions[:16], [answers[i] for i in rows])
        loss = model.compute_loss(obs, None)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    held_out = vlm_observation(TINY_VLM, text, *faint_squares(np.random.default_rng(1), 64))
    losses = losses_with_images(model, held_out)
    assert losses["ce_real"] < 0.25 * losses["ce_shuffled"], losses  # measured 0.009 vs 1.18


def test_pixel_statistics_are_fitted_per_camera_and_exported_with_the_backbone() -> None:
    model = build_model(TINY_VLM)
    images = torch.full((4, 32, 32, 3), 127, dtype=torch.uint8)
    images[1::2] += 10  # half the images 10 grey levels brighter: std 5 levels = 5 / 127.5
    model.fit_pixel_statistics({"base": [images[:3], images[3:]]})
    pixels = model.vision.pixels
    torch.testing.assert_close(pixels.spread, torch.tensor([5 / 127.5]))
    torch.testing.assert_close(pixels.mean[0], torch.full((32, 32, 3), 132 / 127.5 - 1))
    exported = backbone_tensors(model)
    assert torch.equal(exported["vision.pixels.spread"], pixels.spread)  # `vla train --init-backbone` gets them
    with pytest.raises(ValueError, match=r"images: cameras \['wrist'\] are not model cameras \['base'\]"):
        model.fit_pixel_statistics({"wrist": [images]})
    with pytest.raises(ValueError, match="at least 2 images, received 1"):
        model.fit_pixel_statistics({"base": [images[:1]]})


def test_image_dependence_reports_every_measurement() -> None:
    torch.manual_seed(0)
    model = build_model(TINY_VLM)
    obs = vlm_observation(TINY_VLM, ByteTokenizer(), *faint_squares(np.random.default_rng(0), 4))
    moved = shuffled(obs)
    assert not any(torch.equal(obs.images["base"][i], moved.images["base"][i]) for i in range(4))  # a derangement
    report = image_dependence(model, obs)
    assert {"loss_real", "loss_shuffled", "loss_black", "grad_norm_vision", "image_share"} <= set(report)
    assert len(report["attention_to_images"]) == TINY_VLM.lm.depth
    assert 0 < report["image_share"] < 1 and report["grad_norm_vision"] > 0 and report["grad_norm_expert"] == 0
    assert report["pixel_spread"] > 0 and report["image_token_rms"] > 0
