"""A small CNN behaviour-cloning policy: cameras + proprio state + task → action chunk (issue 18's baseline).

    image of camera i (b, S, S, 3) ─(x − per-pixel mean_i) / spread_i─ conv stack ─┬─ spatial softmax → (b, 2C)
        (one trunk shared by the N cameras)                                          └─ global average  → (b, C)
    [camera 1's 3C features, …, camera N's, state (b, d_s) normalised, task embedding (b, e)] ─ MLP ─ chunk (b, H, d_a)

The spatial soft-argmax keypoints (Levine et al. 2016, "End-to-End Training of Deep Visuomotor Policies",
Sec. 4.1) say where each feature map fires; the task is an embedding of the instruction's index among the
training instructions. The loss is the mean squared error of the normalised chunk (plain regression: the
policy predicts the conditional mean). The image normalisation is the VLA's (`vla.backbone.PixelNorm`):
scenes of a fixed camera barely change, so each camera's mean image is subtracted.

Several cameras share one conv trunk and their features are concatenated in camera order (the MLP knows a
feature's camera by its position): the VLA it is compared with also encodes all its cameras with one vision
tower, the trunk's parameters stay those of the one-camera policy (so a second camera adds input, not
capacity, and one-camera checkpoints load unchanged), and both views see the same objects, whose low-level
features (edges, coloured blobs) a shared trunk learns from twice the images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reasonact.checks import check_range, check_shape
from reasonact.vla.backbone import PixelNorm


@dataclass(frozen=True)
class BCConfig:
    """Dimensions of one CNN BC policy (state/action dims and instructions are set from the data)."""

    image_size: int = 64  # S: square camera input (pixels)
    channels: tuple[int, ...] = (32, 64, 128, 128)  # conv widths; the first three halve the resolution
    hidden: int = 512  # MLP width
    task_dim: int = 32  # task embedding size
    horizon: int = 8  # H: actions per chunk
    state_dim: int = 4  # d_s: proprio state size
    action_dim: int = 4  # d_a: action size
    instructions: tuple[str, ...] = ()  # the training instructions; a task is its index here
    num_cameras: int = 1  # N: camera images per observation (set from the data), all through the shared trunk


class SpatialSoftmax(nn.Module):
    """Feature maps (b, C, h, w) → expected (x, y) in [−1, 1] of each map's softmax over positions (b, 2C)."""

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        probs = x.flatten(2).softmax(dim=-1).view(b, c, h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
        return torch.cat([(probs.sum(2) * xs).sum(-1), (probs.sum(3) * ys).sum(-1)], dim=1)


class CNNPolicy(nn.Module):
    """The network of the module docstring."""

    def __init__(self, cfg: BCConfig) -> None:
        super().__init__()
        if not cfg.instructions:
            raise ValueError("instructions: a BC policy needs the training instructions (its tasks), received ()")
        check_range(cfg.num_cameras, "num_cameras", low=1)
        self.config = cfg
        self.pixels = PixelNorm(cfg.num_cameras, cfg.image_size)
        layers: list[nn.Module] = []
        width = 3
        for i, out in enumerate(cfg.channels):
            stride = 2 if i < 3 else 1
            layers += [nn.Conv2d(width, out, 3 if i else 5, stride, 1 if i else 2), nn.GroupNorm(8, out), nn.ReLU()]
            width = out
        self.conv = nn.Sequential(*layers)
        self.keypoints = SpatialSoftmax()
        self.task = nn.Embedding(len(cfg.instructions), cfg.task_dim)
        features = cfg.num_cameras * 3 * width + cfg.state_dim + cfg.task_dim
        self.head = nn.Sequential(
            nn.Linear(features, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.horizon * cfg.action_dim),
        )  # fmt: skip

    def task_ids(self, instructions: list[str]) -> Tensor:
        """Instructions → their indices (b,) among the training instructions; an unknown one raises."""
        known = self.config.instructions
        unknown = sorted({t for t in instructions if t not in known})
        if unknown:
            raise ValueError(f"instruction: {unknown} not among the policy's training instructions {list(known)}")
        return torch.tensor([known.index(t) for t in instructions], dtype=torch.int64)

    def encode(self, images: Tensor) -> Tensor:
        """images (b, N, S, S, 3) uint8 → camera features (b, N·3C): keypoints and average of each camera's maps."""
        b, n = images.shape[:2]
        x = torch.stack([self.pixels(images[:, i].float() / 127.5 - 1.0, i) for i in range(n)], dim=1)
        maps = self.conv(x.flatten(0, 1).permute(0, 3, 1, 2))  # (b·N, C, h, w): row b_i·N + i is camera i
        return torch.cat([self.keypoints(maps), maps.mean(dim=(2, 3))], dim=1).view(b, -1)

    def forward(self, images: Tensor, state: Tensor, tasks: Tensor) -> Tensor:
        """images (b, N, S, S, 3) uint8, state (b, d_s) normalised, task ids (b,) → chunks (b, H, d_a) normalised."""
        cfg = self.config
        check_shape(images, "images", ("b", cfg.num_cameras, cfg.image_size, cfg.image_size, 3))
        check_shape(state, "state", (images.shape[0], cfg.state_dim))
        features = torch.cat([self.encode(images), state.float(), self.task(tasks)], dim=1)
        return self.head(features).view(-1, cfg.horizon, cfg.action_dim)

    def loss(self, images: Tensor, state: Tensor, tasks: Tensor, chunks: Tensor) -> Tensor:
        """Mean squared error of the predicted normalised chunks (b, H, d_a) from images (b, N, S, S, 3)."""
        return F.mse_loss(self(images, state, tasks), chunks)


__all__ = ["BCConfig", "CNNPolicy", "SpatialSoftmax"]
