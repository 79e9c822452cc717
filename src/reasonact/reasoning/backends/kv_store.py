"""A store of per-sequence KV caches keyed by token ids, for prefix reuse across calls.

Tree search expands a node many times and its children extend its prompt by one step; keeping
the KV of every prompt and every generated step means the next expansion only runs the model on
the tokens that are new (the few-shot header is computed once per process, a child's prompt once
its parent step was generated). Entries are batch-1 `[(keys, values)]` per layer, (1, h, s, d);
least-recently-used entries go when the token budget is exceeded.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

LayerKV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values (1, h, s, d)


def common_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Length of the longest common prefix of two token sequences."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


class KVStore:
    def __init__(self, max_tokens: int) -> None:
        if max_tokens < 0:
            raise ValueError(f"max_tokens: expected >= 0 cached tokens, received {max_tokens}")
        self.max_tokens = max_tokens  # total cached sequence length kept
        self.entries: OrderedDict[tuple[int, ...], LayerKV] = OrderedDict()
        self.tokens = 0
        self.hits = 0  # tokens served from the store
        self.misses = 0  # prompt tokens that had to be computed

    def longest_prefix(self, ids: tuple[int, ...], limit: int) -> tuple[int, LayerKV | None]:
        """Longest common prefix (≤ `limit` tokens) of `ids` with any stored sequence → (length, kv).

        KV at position j depends only on tokens ≤ j (causal attention), so the first `length`
        columns of that entry's KV are exactly the KV of `ids[:length]`."""
        best, best_key = 0, None
        for key in self.entries:
            length = common_prefix(key, ids[:limit])
            if length > best:
                best, best_key = length, key
        if best_key is None:
            return 0, None
        self.entries.move_to_end(best_key)
        return best, self.entries[best_key]

    def put(self, ids: tuple[int, ...], kv: LayerKV) -> None:
        if not ids or len(ids) > self.max_tokens or ids in self.entries:
            return
        self.entries[ids] = kv
        self.tokens += len(ids)
        while self.tokens > self.max_tokens:
            old, _ = self.entries.popitem(last=False)
            self.tokens -= len(old)

    def clear(self) -> None:
        self.entries.clear()
        self.tokens = 0
