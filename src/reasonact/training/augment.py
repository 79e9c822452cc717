"""Random-shift image augmentation for the acting trainers (BC and VLA): pad by `pad` edge pixels, crop back.

DrQ (Kostrikov et al., 2020) and Diffusion Policy (Chi et al., 2023) train visuomotor policies with such small
random shifts; here the CNN BC uses ±4 px at 64 px and `vla train --shift` offers the same to the VLA.
Offsets are drawn apart from the crop so that a data-parallel process can draw them for the whole global
batch (the same draws on every process) and crop only its own rows.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from reasonact.checks import check_range


def shift_offsets(rng: np.random.Generator, n: int, pad: int) -> np.ndarray:
    """(2, n) crop offsets (dx, dy) in [0, 2·pad]; `pad` = 0 draws nothing from `rng` (zeros)."""
    check_range(pad, "shift", low=0)
    return rng.integers(0, 2 * pad + 1, (2, n)) if pad else np.zeros((2, n), dtype=np.int64)


def shift_images(images: Tensor, pad: int, offsets: np.ndarray) -> Tensor:
    """(b, S, S, 3) uint8 → each image padded by `pad` edge pixels and cropped back at its offsets (2, b):
    image i moves by (pad − dx_i, pad − dy_i) pixels."""
    if pad == 0:
        return images
    b, size = images.shape[0], images.shape[1]
    if offsets.shape != (2, b):
        raise ValueError(f"offsets: expected shape (2, {b}) for {b} images, received {offsets.shape}")
    padded = F.pad(images.permute(0, 3, 1, 2).float(), (pad,) * 4, mode="replicate")  # (b, 3, S+2p, S+2p)
    dx, dy = offsets
    crops = [padded[i, :, dy[i] : dy[i] + size, dx[i] : dx[i] + size] for i in range(b)]
    return torch.stack(crops).permute(0, 2, 3, 1).to(torch.uint8)


__all__ = ["shift_images", "shift_offsets"]
