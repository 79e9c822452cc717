"""The KI-VLA attention mask (SPEC §2.3), the attention op, and the key/value cache.

Every token carries a block id:

* ``0``  — prefix (images, prompt, text/special/continuous state): bidirectional among themselves;
* ``k > 0`` — the k-th autoregressive token (text targets, then FAST action tokens): sees the prefix and
  the autoregressive tokens ``1..k``;
* ``-1`` — action-expert token: sees the prefix and every suffix token, never an autoregressive token;
* ``-2`` — π0's continuous state token, first in the expert's suffix: sees the prefix and itself (the action
  tokens see it, it does not see them; openpi's `pi0.py` mask).

Nobody but suffix tokens sees suffix tokens, so information flows prefix → FAST and prefix → expert only.
Because the backbone (prefix + FAST) never reads the expert, the backbone can run first and the expert
afterwards over the backbone's per-layer keys/values — the same computation as one shared attention over
the concatenated sequence in every layer, and exactly what inference caches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from reasonact.kv_cache import KVBuffer

PREFIX, EXPERT, SUFFIX_STATE = 0, -1, -2


def attention_mask(q_blocks: Tensor, k_blocks: Tensor, k_valid: Tensor) -> Tensor:
    """Block ids of queries (b, sq) and keys (b, sk), key validity (b, sk) → may-attend mask (b, sq, sk).

    Worked examples (one sequence; rows are queries, columns keys; 1 = may attend)::

        prefix p p, FAST f1 f2, expert e e        blocks = [0, 0, 1, 2, -1, -1]
                p p f1 f2 e e
            p   1 1 0  0  0 0      prefix: bidirectional, never FAST or expert
            p   1 1 0  0  0 0
            f1  1 1 1  0  0 0      FAST: prefix + causal FAST
            f2  1 1 1  1  0 0
            e   1 1 0  0  1 1      expert: prefix + all expert, never FAST
            e   1 1 0  0  1 1

        π0.5 (no FAST):                       blocks = [0, 0, -1, -1]  → [[1,1,0,0]]*2 + [[1,1,1,1]]*2
        π0, state token s before the actions: blocks = [0, 0, -2, -1, -1]
            → p: [1,1,0,0,0]; s: [1,1,1,0,0]; e: [1,1,1,1,1]
        π0-FAST decoding, one new token f3 over a cache [p p f1 f2]: q_blocks = [3],
        k_blocks = [0, 0, 1, 2, 3] → [[1, 1, 1, 1, 1]]
        padding: k_valid = [1, 0, 1] removes column 1 from every row.
    """
    q = q_blocks[:, :, None]  # (b, sq, 1)
    k = k_blocks[:, None, :]  # (b, 1, sk)
    sees_prefix = k == PREFIX
    causal_ar = (q > 0) & (k > 0) & (k <= q)
    within_suffix = (q < 0) & (k < 0) & (k <= q)  # actions see state + actions; the state sees itself
    return (sees_prefix | causal_ar | within_suffix) & k_valid[:, None, :].bool()


def sliding_window_mask(mask: Tensor, q_positions: Tensor, k_positions: Tensor, window: int) -> Tensor:
    """Restrict a (b, sq, sk) mask to keys whose RoPE position is within `window` of the query (Gemma 3 local)."""
    distance = (q_positions[:, :, None] - k_positions[:, None, :]).abs()
    return mask & (distance < window)


def attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float) -> Tensor:
    """q (b, h, sq, hd), k/v (b, kv_h, sk, hd), mask (b, sq, sk) or None (all pairs) → (b, h, sq, hd).

    kv heads are shared (MQA/GQA): the g = h / kv_h query heads of one kv head are folded into its query
    rows, (b, kv_h, g·sq, hd), so the shared keys/values are never copied and each kv head is one larger matmul.
    """
    b, h, sq, hd = q.shape
    kv_h, sk = k.shape[1], k.shape[2]
    g = h // kv_h
    folded = q.reshape(b, kv_h, g * sq, hd)
    rows = None if mask is None else mask[:, None].expand(b, g, sq, sk).reshape(b, 1, g * sq, sk)
    out = F.scaled_dot_product_attention(folded, k, v, attn_mask=rows, scale=scale)  # (b, kv_h, g·sq, hd)
    return out.reshape(b, h, sq, hd)


@dataclass
class KVCache:
    """Per-layer keys/values of a token sequence, with what the mask needs to attend to it later."""

    keys: list[Tensor]  # per layer (b, kv_heads, s, hd), RoPE applied
    values: list[Tensor]  # per layer (b, kv_heads, s, hd)
    blocks: Tensor  # (b, s) block ids
    positions: Tensor  # (b, s) RoPE positions
    valid: Tensor  # (b, s) bool: False for padding

    def detached(self) -> KVCache:
        """Stop-gradient copy (knowledge insulation): values identical, no gradient flows back through it."""
        return KVCache(
            [k.detach() for k in self.keys], [v.detach() for v in self.values], self.blocks, self.positions, self.valid
        )

    def select(self, rows: Tensor) -> KVCache:
        """The cache of the batch rows `rows` (n,) only."""
        return KVCache(
            [k[rows] for k in self.keys], [v[rows] for v in self.values], self.blocks[rows], self.positions[rows],
            self.valid[rows],
        )  # fmt: skip

    @property
    def length(self) -> int:
        return self.blocks.shape[1]


@dataclass
class StaticKVCache:
    """A preallocated cache (`reasonact.kv_cache.KVBuffer`) of C columns, with the block ids, positions and
    validity of every column, including those not written yet: AR decoding knows them in advance (column
    P + j holds the j-th generated token, block j + 1), so a step's mask hides the unwritten columns."""

    buffer: KVBuffer  # per layer (b, kv_heads, C, hd)
    blocks: Tensor  # (b, C) block ids
    positions: Tensor  # (b, C) RoPE positions
    valid: Tensor  # (b, C) bool: False for padding
