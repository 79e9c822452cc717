"""A preallocated key/value buffer written in place: the static KV cache of decoding (issue 15).

A growing cache (`torch.cat` of every layer's keys and values at each generated token) copies the whole
cache per token — O(s) bytes per step, 17% of a search round on this CPU — and changes its shape at every
step, so the step can neither be captured as one CUDA graph nor compiled once. `KVBuffer` allocates every
layer's keys and values once, at their final length (`capacity` columns), and each step writes its new
columns in place (`index_copy_` at column indices given as a tensor, so the same captured graph serves every
step). Columns not written yet hold zeros (finite, so a masked-out column contributes exactly 0 to attention)
and the caller's attention mask hides them.

Both halves use it: the KI-VLA's π0-FAST decode attends over the full buffer with a block mask
(`vla/model.py`), the reasoning backends' transformers cache returns the filled columns as views
(`reasoning/backends/buffer_cache.py`).
"""

from __future__ import annotations

import torch
from torch import Tensor


class KVBuffer:
    """Per-layer keys and values (b, heads, capacity, head_dim), allocated once and written in place."""

    def __init__(
        self, layers: int, batch: int, heads: int, capacity: int, head_dim: int, dtype: torch.dtype, device
    ) -> None:
        shape = (batch, heads, capacity, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]  # (b, h, C, hd) each
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        for buffer in (*self.keys, *self.values):
            # fixed data pointers: torch.compile's CUDA graphs may then mutate them in place instead of skipping
            torch._dynamo.mark_static_address(buffer)

    @property
    def spec(self) -> tuple:
        """What a buffer must match to be reused: (layers, batch, heads, capacity, head_dim, dtype, device)."""
        k = self.keys[0]
        return (len(self.keys), *k.shape, k.dtype, k.device)

    @property
    def capacity(self) -> int:
        return self.keys[0].shape[2]

    def write(self, layer: int, columns: Tensor, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Write keys/values (b, h, s, hd) of `layer` at `columns` (s,) int64 in place → the whole buffers
        (b, h, C, hd). The indices are a tensor, never a Python int, so a compiled step is position-agnostic."""
        self.keys[layer].index_copy_(2, columns, keys.to(self.keys[layer].dtype))
        self.values[layer].index_copy_(2, columns, values.to(self.values[layer].dtype))
        return self.keys[layer], self.values[layer]

    def fill(self, layer: int, keys: Tensor, values: Tensor, rows: int = 1) -> None:
        """Copy a prefix's keys/values (b', h, s, hd) into columns [0, s), each of its b' rows repeated `rows`
        times along the batch (b = b'·rows: sampled siblings share their prompt's prefix) — one copy, no
        intermediate repeated tensor. Later columns are left as they are (`write` fills them)."""
        s = keys.shape[2]
        for buffer, x in ((self.keys[layer], keys), (self.values[layer], values)):
            b, h, c, hd = buffer.shape
            buffer.view(b // rows, rows, h, c, hd)[:, :, :, :s].copy_(x[:, None])


def reuse_or_allocate(
    previous: KVBuffer | None,
    layers: int,
    batch: int,
    heads: int,
    capacity: int,
    head_dim: int,
    dtype: torch.dtype,
    device,
) -> KVBuffer:
    """`previous` if it has exactly this shape, dtype and device, else a new buffer: one allocation per shape,
    so repeated calls write into the same memory (what a captured graph replays on)."""
    spec = (layers, batch, heads, capacity, head_dim, dtype, torch.device(device))
    if previous is not None and previous.spec == spec:
        return previous
    return KVBuffer(layers, batch, heads, capacity, head_dim, dtype, device)
