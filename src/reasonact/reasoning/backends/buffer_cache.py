"""A transformers `Cache` over a preallocated `reasonact.kv_cache.KVBuffer`, for the HF backend's decode loop.

`DynamicCache` concatenates every layer's whole KV with the new token at each decode step (`torch.cat`:
17% of a search round on this CPU with long prompts, docs/reasoning.md). Here the buffer is allocated once
per call at its final length (prompt + `max_new_tokens` columns), the prefill's KV is copied in once (each
prompt's rows repeated for its n sampled siblings in the same copy), and each step writes its column in
place; the model gets views of the filled columns, so it computes exactly what it computed on the
concatenated cache (the same shapes and values; `tests/reasoning/test_backends.py`). Sliding-window layers
keep every column too: transformers' mask still applies their window.
"""

from __future__ import annotations

import torch
from transformers import Cache, DynamicCache
from transformers.cache_utils import DynamicLayer

from reasonact.kv_cache import KVBuffer


class BufferLayer(DynamicLayer):
    """One layer of a `KVBuffer` behind transformers' cache-layer interface; `keys`/`values` are views
    (b, h, length, d) of the filled columns."""

    def __init__(self, buffer: KVBuffer, layer: int, length: int) -> None:
        super().__init__()
        self.buffer, self.layer, self.length = buffer, layer, length  # length: columns written
        self.device = buffer.keys[layer].device
        self.is_initialized = True
        self._expose()

    def _expose(self) -> None:
        self.keys = self.buffer.keys[self.layer][:, :, : self.length]
        self.values = self.buffer.values[self.layer][:, :, : self.length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        """Write the new keys/values (b, h, s, d) after the filled columns → views (b, h, length + s, d)."""
        s = key_states.shape[-2]
        if self.length + s > self.buffer.capacity:
            raise ValueError(f"cache: {self.length + s} columns exceed the buffer's capacity {self.buffer.capacity}")
        columns = torch.arange(self.length, self.length + s, device=self.device)
        self.buffer.write(self.layer, columns, key_states, value_states)
        self.length += s
        self._expose()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length


def buffer_cache(prefill: DynamicCache, rows: int, new_tokens: int) -> Cache:
    """The prefilled cache (b', h, L, d per layer) moved into a buffer of b'·rows rows and L + new_tokens
    columns (each row repeated `rows` times: the sampled siblings of one prompt) → a cache to decode with."""
    first = prefill.layers[0].keys  # (b', h, L, d)
    b, heads, length, head_dim = first.shape
    buffer = KVBuffer(len(prefill.layers), b * rows, heads, length + new_tokens, head_dim, first.dtype, first.device)
    for i, layer in enumerate(prefill.layers):
        buffer.fill(i, layer.keys, layer.values, rows)
    return Cache(layers=[BufferLayer(buffer, i, length) for i in range(len(prefill.layers))])
