"""Byte-pair *encoding* (applying trained merges) compiled with numba, token-for-token identical
to HF `tokenizers`' BPE model, which still trains the merges and stores them (`bpe.json`).

Why: FAST words are H·d symbols long (200 at H=50, d=4) and HF's merge loop costs ~60 µs per
such word, most of a batched encode; this kernel takes ~10 µs (benchmarks/fast.py).

Algorithm (Sennrich et al. 2016): repeatedly find the adjacent pair with the lowest merge rank
and merge all its occurrences left to right. This equals HF's heap order (lowest rank first,
leftmost first): a merge only creates pairs that contain the new token, and every merge using
a token was learned after the token itself, so no lower-ranked pair can appear later.
"""

from __future__ import annotations

import json

import numba
import numpy as np
from tokenizers import Tokenizer


@numba.njit(cache=True, nogil=True)
def _merge_words(symbols: np.ndarray, rank: np.ndarray, merged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """symbols (b, n) int32 token ids of single symbols → (tokens (b, n) int32, lengths (b,))."""
    b, n = symbols.shape
    out = np.empty((b, n), np.int32)
    lengths = np.empty(b, np.int64)
    word = np.empty(n, np.int32)
    for i in range(b):
        m = n
        word[:] = symbols[i]
        while True:
            best, at = np.int32(2**31 - 1), -1
            for j in range(m - 1):
                r = rank[word[j], word[j + 1]]
                if 0 <= r < best:
                    best, at = r, j
            if at < 0:
                break
            left, right, new = word[at], word[at + 1], merged[best]
            w, j = at, at
            while j < m:
                if j + 1 < m and word[j] == left and word[j + 1] == right:
                    word[w] = new
                    j += 2
                else:
                    word[w] = word[j]
                    j += 1
                w += 1
            m = w
        out[i, :m] = word[:m]
        lengths[i] = m
    return out, lengths


class BpeMerges:
    """The merge table of a trained HF BPE model as dense arrays: rank[a, b] (-1: no merge) and
    merged[rank] (the token a+b)."""

    def __init__(self, rank: np.ndarray, merged: np.ndarray, vocab: dict[str, int]) -> None:
        self.rank, self.merged, self.vocab = rank, merged, vocab  # (V, V) int32, (n_merges,) int32

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer) -> BpeMerges:
        model = json.loads(tokenizer.to_str())["model"]
        if model.get("type") != "BPE":
            raise ValueError(f"tokenizer: expected a BPE model, received {model.get('type')!r}")
        vocab: dict[str, int] = model["vocab"]
        rank = np.full((len(vocab), len(vocab)), -1, dtype=np.int32)
        merged = np.empty(len(model["merges"]), dtype=np.int32)
        for r, pair in enumerate(model["merges"]):
            left, right = pair.split(" ") if isinstance(pair, str) else pair
            rank[vocab[left], vocab[right]] = r
            merged[r] = vocab[left + right]
        return cls(rank, merged, vocab)

    def ids_of(self, symbols: list[str]) -> np.ndarray:
        """Token ids of single-symbol strings (the alphabet) → (len(symbols),) int32."""
        missing = [s for s in symbols if s not in self.vocab]
        if missing:
            raise ValueError(f"symbols: expected every symbol in the BPE vocabulary, missing {missing[:5]!r}")
        return np.array([self.vocab[s] for s in symbols], dtype=np.int32)

    def encode(self, symbols: np.ndarray) -> list[list[int]]:
        """(b, n) token ids of single symbols → b merged token-id lists."""
        tokens, lengths = _merge_words(np.ascontiguousarray(symbols, dtype=np.int32), self.rank, self.merged)
        return [row[:m].tolist() for row, m in zip(tokens, lengths.tolist(), strict=True)]
