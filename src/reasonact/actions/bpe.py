"""Byte-pair *encoding* (applying trained merges) compiled with numba, token-for-token identical
to HF `tokenizers`' BPE model, which still trains the merges and stores them (`bpe.json`).

Why: FAST words are H·d symbols long (200 at H=50, d=4) and HF's merge loop costs ~60 µs per
such word, most of a batched encode; this kernel takes ~7–14 µs (vocabulary 300–1024).

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

_EMPTY = -1
_FIBONACCI = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio: multiplicative hashing (Knuth)


@numba.njit(cache=True, nogil=True)
def _slot(keys: np.ndarray, key: int) -> int:
    """Open-addressing slot of `key` in `keys` (power-of-two size, linear probing): where it is or
    the first empty slot of its probe sequence."""
    mask = np.uint64(keys.shape[0] - 1)
    i = (np.uint64(key) * _FIBONACCI >> np.uint64(32)) & mask
    while keys[i] != key and keys[i] != _EMPTY:
        i = (i + np.uint64(1)) & mask
    return i


@numba.njit(cache=True, nogil=True)
def _pair_table(pairs: np.ndarray, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """pairs (n_merges, 2) in rank order → hash table (keys a·V + b, ranks): O(vocab) memory."""
    size = 2
    while size < 2 * pairs.shape[0]:
        size *= 2
    keys = np.full(size, _EMPTY, np.int64)
    ranks = np.zeros(size, np.int32)
    for r in range(pairs.shape[0]):
        key = pairs[r, 0] * vocab + pairs[r, 1]
        i = _slot(keys, key)
        keys[i], ranks[i] = key, r
    return keys, ranks


@numba.njit(cache=True, nogil=True)
def _rank(keys: np.ndarray, ranks: np.ndarray, left: int, right: int, vocab: int) -> int:
    """Merge rank of the pair (left, right), or -1 if it is not a merge."""
    key = np.int64(left) * vocab + right
    slot = _slot(keys, key)
    return ranks[slot] if keys[slot] == key else -1


@numba.njit(cache=True, nogil=True)
def _merge_words(
    symbols: np.ndarray, keys: np.ndarray, ranks: np.ndarray, merged: np.ndarray, vocab: int
) -> tuple[np.ndarray, np.ndarray]:
    """symbols (b, n) int32 token ids of single symbols → (tokens (b, n) int32, lengths (b,)).

    pair[j] caches the rank of (word[j], word[j+1]); after a merge only the pairs that touch a
    new token are looked up again, the rest move with their tokens."""
    b, n = symbols.shape
    out = np.empty((b, n), np.int32)
    lengths = np.empty(b, np.int64)
    word = np.empty(n, np.int32)
    pair = np.empty(n, np.int32)  # (m - 1,) used
    source = np.empty(n, np.int64)  # old index of each kept token, -1 for a new one
    for i in range(b):
        m = n
        word[:] = symbols[i]
        for j in range(m - 1):
            pair[j] = _rank(keys, ranks, word[j], word[j + 1], vocab)
        while True:
            best, at = np.int32(2**31 - 1), -1
            for j in range(m - 1):
                if 0 <= pair[j] < best:
                    best, at = pair[j], j
            if at < 0:
                break
            left, right, new = word[at], word[at + 1], merged[best]
            w, j = at, at
            while j < m:
                if j + 1 < m and word[j] == left and word[j + 1] == right:
                    word[w], source[w] = new, -1
                    j += 2
                else:
                    word[w], source[w] = word[j], j
                    j += 1
                w += 1
            for k in range(max(at - 1, 0), w - 1):  # pairs left of `at - 1` are untouched
                if k >= at and source[k] >= 0 and source[k + 1] == source[k] + 1:
                    pair[k] = pair[source[k]]  # both tokens kept and still adjacent: same pair
                else:
                    pair[k] = _rank(keys, ranks, word[k], word[k + 1], vocab)
            m = w
        out[i, :m] = word[:m]
        lengths[i] = m
    return out, lengths


class BpeMerges:
    """The merge list of a trained HF BPE model as arrays: a hash table (a, b) → rank and
    merged[rank] (the token a+b). Memory grows with the vocabulary, not its square."""

    def __init__(self, pairs: np.ndarray, merged: np.ndarray, vocab: dict[str, int]) -> None:
        self.merged, self.vocab = merged, vocab  # (n_merges,) int32, token → id
        self.keys, self.ranks = _pair_table(pairs, len(vocab))

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer) -> BpeMerges:
        model = json.loads(tokenizer.to_str())["model"]
        if model.get("type") != "BPE":
            raise ValueError(f"tokenizer: expected a BPE model, received {model.get('type')!r}")
        vocab: dict[str, int] = model["vocab"]
        pairs = np.empty((len(model["merges"]), 2), dtype=np.int64)  # (n_merges, 2) in rank order
        merged = np.empty(len(model["merges"]), dtype=np.int32)
        for r, pair in enumerate(model["merges"]):
            left, right = pair.split(" ") if isinstance(pair, str) else pair
            pairs[r] = vocab[left], vocab[right]
            merged[r] = vocab[left + right]
        return cls(pairs, merged, vocab)

    def ids_of(self, symbols: list[str]) -> np.ndarray:
        """Token ids of single-symbol strings (the alphabet) → (len(symbols),) int32."""
        missing = [s for s in symbols if s not in self.vocab]
        if missing:
            raise ValueError(f"symbols: expected every symbol in the BPE vocabulary, missing {missing[:5]!r}")
        return np.array([self.vocab[s] for s in symbols], dtype=np.int32)

    def encode(self, symbols: np.ndarray) -> list[list[int]]:
        """(b, n) token ids of single symbols → b merged token-id lists."""
        symbols = np.ascontiguousarray(symbols, dtype=np.int32)
        tokens, lengths = _merge_words(symbols, self.keys, self.ranks, self.merged, len(self.vocab))
        return [row[:m].tolist() for row, m in zip(tokens, lengths.tolist(), strict=True)]
