"""Random-shift augmentation (`training.augment`): exact crops, replicated edges, shared by BC and VLA batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reasonact.training.augment import shift_images, shift_offsets


def test_shift_moves_each_image_by_its_offsets_with_replicated_edges() -> None:
    images = torch.arange(2 * 4 * 4 * 3, dtype=torch.uint8).view(2, 4, 4, 3)  # (b, S, S, 3)
    offsets = np.array([[1, 0], [1, 2]])  # image 0 unmoved; image 1 moved right by 1 and up by 1
    moved = shift_images(images, 1, offsets)
    assert moved.dtype == torch.uint8 and torch.equal(moved[0], images[0])
    torch.testing.assert_close(moved[1, :3, 1:], images[1, 1:, :3], rtol=0, atol=0)  # content moved by (+1, −1)
    torch.testing.assert_close(moved[1, :3, 0], images[1, 1:, 0], rtol=0, atol=0)  # left edge column replicated
    torch.testing.assert_close(moved[1, 3, 1:], images[1, 3, :3], rtol=0, atol=0)  # bottom edge row replicated
    assert torch.equal(shift_images(images, 0, shift_offsets(np.random.default_rng(0), 2, 0)), images)


def test_offsets_are_in_range_and_zero_shift_draws_nothing() -> None:
    rng = np.random.default_rng(0)
    offsets = shift_offsets(rng, 1000, 4)
    assert offsets.shape == (2, 1000) and offsets.min() == 0 and offsets.max() == 8
    a, b = np.random.default_rng(1), np.random.default_rng(1)
    shift_offsets(a, 5, 0)
    assert a.integers(1 << 30) == b.integers(1 << 30)  # batches without augmentation keep their old draws
    with pytest.raises(ValueError, match="shift"):
        shift_offsets(rng, 2, -1)
    with pytest.raises(ValueError, match=r"offsets: expected shape \(2, 2\)"):
        shift_images(torch.zeros(2, 4, 4, 3, dtype=torch.uint8), 1, np.zeros((2, 3), dtype=int))
