"""The action-tokenizer contract shared by FAST and naive binning.

Both map action chunks (b, H, d) to variable-length integer sequences and back. `decode`
never raises on a token sequence: a model may emit anything, so invalid sequences decode to a
well-defined, finite chunk and are flagged in `Decoded.valid`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Protocol

import numpy as np

from reasonact.checks import as_float_array


@dataclass(frozen=True)
class Decoded:
    """Result of decoding a batch of token sequences."""

    actions: np.ndarray  # (b, H, d) float64, always finite
    valid: np.ndarray  # (b,) bool: False where the sequence had to be repaired

    @property
    def n_invalid(self) -> int:
        return int((~self.valid).sum())


class ActionTokenizer(Protocol):
    dim: int

    @property
    def vocab_size(self) -> int: ...

    def encode(self, chunks: np.ndarray) -> list[list[int]]: ...

    def decode(self, tokens: Sequence[Sequence[int]], horizon: int, dim: int | None = None) -> Decoded: ...

    def save(self, path: str | Path) -> None: ...


def check_chunks(chunks: object, dim: int | None = None) -> np.ndarray:
    """Validate action chunks: float array (b, H, d), finite, d equal to the fitted dim."""
    arr = np.asarray(chunks) if not isinstance(chunks, np.ndarray) else chunks
    if arr.ndim == 2:
        raise ValueError(
            f"chunks: expected shape (b, H, d), received shape {arr.shape}; wrap a single chunk as chunks[None]"
        )
    return as_float_array(arr, "chunks", ("b", "H", "d"), None if dim is None else {"d": dim})


def check_decode_args(tokens: object, horizon: int, dim: int | None, fitted_dim: int) -> None:
    """Errors for the caller's arguments (not the token contents, which never raise)."""
    if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Sequence | np.ndarray):
        raise ValueError(f"tokens: expected a batch (sequence of token-id sequences), received {type(tokens).__name__}")
    if not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ValueError(f"horizon: expected an integer >= 1, received {horizon!r}")
    if dim is not None and dim != fitted_dim:
        raise ValueError(f"dim: expected {fitted_dim} (the dimension the tokenizer was fitted on), received {dim}")


def flatten_ids(tokens: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ragged batch of token-id sequences → (ids (n,), sequence index (n,), well-formed (b,)).

    Vectorised for the common case (every sequence a flat list of ints); otherwise each
    sequence is coerced alone and one that is not a flat integer sequence becomes empty and
    not well-formed.
    """
    b = len(tokens)
    try:
        lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=b)
        ids = np.asarray(list(chain.from_iterable(tokens)))
        if ids.ndim == 1 and (ids.size == 0 or np.issubdtype(ids.dtype, np.integer)):
            return ids.astype(np.int64), np.repeat(np.arange(b), lengths), np.ones(b, dtype=bool)
    except (TypeError, ValueError):
        pass
    ok = np.ones(b, dtype=bool)
    parts = []
    for i, seq in enumerate(tokens):
        arr = _as_id_array(seq)
        ok[i] = arr is not None
        parts.append(np.zeros(0, dtype=np.int64) if arr is None else arr)
    lengths = np.array([p.size for p in parts], dtype=np.int64)
    return np.concatenate([np.zeros(0, dtype=np.int64), *parts]), np.repeat(np.arange(b), lengths), ok


def _as_id_array(seq: object) -> np.ndarray | None:
    try:
        ids = np.asarray(seq)
    except (TypeError, ValueError):
        return None
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        return None
    return ids.astype(np.int64)


def pack_ragged(values: np.ndarray, seq: np.ndarray, b: int, n: int, fill: int) -> tuple[np.ndarray, np.ndarray]:
    """Scatter ragged `values` (grouped by ascending `seq`) into (b, n), truncating or padding
    with `fill` → (packed (b, n), original length per sequence (b,))."""
    counts = np.bincount(seq, minlength=b)
    pos = np.arange(values.size) - (np.cumsum(counts) - counts)[seq]
    keep = pos < n
    packed = np.full((b, n), fill, dtype=values.dtype if values.size else np.int64)
    packed[seq[keep], pos[keep]] = values[keep]
    return packed, counts
