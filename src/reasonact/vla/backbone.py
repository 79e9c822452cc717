"""The VLM backbone: a SigLIP-style ViT (patches → tokens), a linear projector, and a Gemma decoder.

As in PaliGemma / π0, image tokens are projected into the LM width unscaled, text tokens are embedded and
multiplied by √width (Gemma), and the LM attends over [images, prompt, state] bidirectionally (prefix-LM).
The LM exposes its per-layer keys/values (`KVCache`) so the action expert and AR decoding can attend to
them without recomputing the prefix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reasonact.vla.attention import KVCache, StaticKVCache, attend, attention_mask, sliding_window_mask
from reasonact.vla.config import LMConfig, VisionConfig
from reasonact.vla.layers import Block, RMSNorm, attention_scale, rope_table


def rope_tables(cfg: LMConfig, positions: Tensor) -> dict[float, tuple[Tensor, Tensor]]:
    """positions (b, s) → {RoPE base: (cos, sin)} for the global and local bases."""
    return {theta: rope_table(positions, cfg.head_dim, theta) for theta in {cfg.rope_theta, cfg.local_rope_theta}}


def layer_theta(cfg: LMConfig, layer: int) -> float:
    return cfg.local_rope_theta if cfg.is_local(layer) else cfg.rope_theta


def layer_masks(cfg: LMConfig, mask: Tensor, q_positions: Tensor, k_positions: Tensor) -> list[Tensor]:
    """The (b, sq, sk) mask of every layer: local (sliding-window) layers also get the window.

    Computed once per forward, never inspected on the host: whether a mask allows every pair depends on
    the data (padding), and asking would synchronise with the device (issue 15), so every layer is masked."""
    local = mask
    if cfg.sliding_window is not None:
        local = sliding_window_mask(mask, q_positions, k_positions, cfg.sliding_window)
    return [local if cfg.is_local(i) else mask for i in range(cfg.depth)]


class VisionBlock(nn.Module):
    """Pre-LayerNorm ViT layer with biases and a GELU-tanh MLP (SigLIP)."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.norm1, self.norm2 = nn.LayerNorm(cfg.width, eps=1e-6), nn.LayerNorm(cfg.width, eps=1e-6)
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width)
        self.out = nn.Linear(cfg.width, cfg.width)
        self.fc1, self.fc2 = nn.Linear(cfg.width, cfg.mlp_dim), nn.Linear(cfg.mlp_dim, cfg.width)

    def forward(self, x: Tensor) -> Tensor:  # (b, n, w) → (b, n, w)
        b, n, w = x.shape
        qkv = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (b, heads, n, w/heads)
        x = x + self.out(y.transpose(1, 2).reshape(b, n, w))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x)), approximate="tanh"))


class PixelNorm(nn.Module):
    """The training images' per-pixel statistics of every camera: x ↦ (x − mean_c) / spread_c.

    Why: the scenes of a fixed robot camera barely change from frame to frame. On MetaWorld at 64 px the
    std across frames of a pixel is 0.064 on SigLIP's [−1, 1] scale (docs/vla.md), so in a from-scratch ViT
    the image-dependent part of a token is ~14% at init and the first optimizer steps shrink it to ~1%: the
    backbone learns to ignore its images (loss identical with real, shuffled and black images). Subtracting
    the mean image and dividing by the mean per-pixel std leaves only what changes between frames, at unit
    scale. Identity until `fit` (mean 0, spread 1); the statistics are buffers, so checkpoints and the
    pre-stage's exported backbone carry them."""

    def __init__(self, cameras: int, size: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(cameras, size, size, 3))  # (n_cameras, S, S, 3)
        self.register_buffer("spread", torch.ones(cameras))  # (n_cameras,)

    def forward(self, images: Tensor, camera: int) -> Tensor:  # (b, S, S, 3) float → (b, S, S, 3)
        return (images - self.mean[camera].to(images.dtype)) / self.spread[camera].to(images.dtype)

    @torch.no_grad()
    def fit(self, camera: int, batches: Iterable[Tensor]) -> None:
        """Set camera `camera`'s statistics from float images (n, S, S, 3) on the model's [−1, 1] scale."""
        total, squares, n = torch.zeros_like(self.mean[0], dtype=torch.float64), None, 0
        for x in batches:
            x = x.to(total.device, torch.float64)
            total += x.sum(0)
            squares = x.pow(2).sum(0) + (0 if squares is None else squares)
            n += x.shape[0]
        if n < 2 or squares is None:
            raise ValueError(f"images: fitting pixel statistics needs at least 2 images, received {n}")
        mean = total / n
        std = (squares / n - mean.pow(2)).clamp(min=0).sqrt()  # (S, S, 3)
        self.mean[camera] = mean.to(self.mean.dtype)
        self.spread[camera] = std.mean().clamp(min=MIN_PIXEL_SPREAD).to(self.spread.dtype)


MIN_PIXEL_SPREAD = 1e-3  # a camera whose images never change is divided by this, not by ~0


class VisionEncoder(nn.Module):
    """Images (b, S, S, 3) in [-1, 1] of camera `camera` → tokens (b, (S/p)², width).

    With `cfg.dataset_norm` the images first pass `PixelNorm` (the statistics the trainers fit)."""

    def __init__(self, cfg: VisionConfig, cameras: int = 1) -> None:
        super().__init__()
        self.pixels = PixelNorm(cameras, cfg.image_size) if cfg.dataset_norm else None
        self.patch = nn.Conv2d(3, cfg.width, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.position = nn.Parameter(torch.randn(1, cfg.tokens, cfg.width) * cfg.width**-0.5)
        self.blocks = nn.ModuleList(VisionBlock(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width, eps=1e-6)

    def forward(self, images: Tensor, camera: int = 0) -> Tensor:
        if self.pixels is not None:
            images = self.pixels(images, camera)
        x = self.patch(images.permute(0, 3, 1, 2)).flatten(2).transpose(1, 2)  # (b, n, w)
        x = x + self.position
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class GemmaLM(nn.Module):
    """Gemma decoder stack over embeddings; tied input/output embedding of `vocab` rows."""

    def __init__(self, cfg: LMConfig, vocab: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(vocab, cfg.width)
        nn.init.normal_(self.embed.weight, std=cfg.width**-0.5)
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.mlp_dim, cfg) for _ in range(cfg.depth))
        self.norm = RMSNorm(cfg.width, cfg.norm_eps)
        self.scale = attention_scale(cfg)

    def embed_tokens(self, ids: Tensor) -> Tensor:  # (b, s) → (b, s, w)
        return self.embed(ids) * math.sqrt(self.cfg.width)

    def logits(self, h: Tensor) -> Tensor:  # (b, s, w) final hidden → (b, s, vocab)
        return h @ self.embed.weight.T

    def forward(
        self, h: Tensor, blocks: Tensor, positions: Tensor, valid: Tensor, kv_only: bool = False
    ) -> tuple[Tensor, KVCache]:
        """Embeddings h (b, s, w) with block ids, positions and validity (b, s) → final-normed hidden (b, s, w)
        and the cache of these tokens.

        `kv_only`: the caller needs only the cache (the action expert's prefix), so the last layer's
        attention output and MLP, which no key/value depends on, are skipped and the hidden returned is
        that layer's input, not the final hidden."""
        cache = KVCache([], [], blocks, positions, valid)
        masks = layer_masks(self.cfg, attention_mask(blocks, blocks, valid), positions, positions)
        ropes = rope_tables(self.cfg, positions)
        for i, block in enumerate(self.blocks):
            q, k, v, _ = block.project(h, ropes[layer_theta(self.cfg, i)])
            cache.keys.append(k)
            cache.values.append(v)
            if kv_only and i == len(self.blocks) - 1:
                return h, cache
            h = block.finish(h, attend(q, k, v, masks[i], self.scale), None)
        return self.norm(h), cache

    def decode(self, h: Tensor, blocks: Tensor, positions: Tensor, cache: StaticKVCache, columns: Tensor) -> Tensor:
        """New tokens h (b, s, w) with block ids and positions (b, s), written into the preallocated cache at
        `columns` (s,) → final-normed hidden (b, s, w). They attend over every column of the cache; the mask
        (from the cache's block ids, which give unwritten columns later blocks) hides what is not written yet."""
        masks = layer_masks(self.cfg, attention_mask(blocks, cache.blocks, cache.valid), positions, cache.positions)
        ropes = rope_tables(self.cfg, positions)
        for i, block in enumerate(self.blocks):
            q, k, v, _ = block.project(h, ropes[layer_theta(self.cfg, i)])
            k, v = cache.buffer.write(i, columns, k, v)  # (b, kv_heads, C, hd)
            h = block.finish(h, attend(q, k, v, masks[i], self.scale), None)
        return self.norm(h)
