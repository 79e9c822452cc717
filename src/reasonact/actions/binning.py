"""Naive per-dimension, per-timestep binning: the RT-2/OpenVLA action tokenizer.

Every normalised action value in [-1, 1] becomes one of `n_bins` uniform bins, so a chunk
costs exactly H·d tokens (time-major: all d dims of step 0, then step 1, …). FAST's baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reasonact.actions.normalize import QuantileNormalizer
from reasonact.actions.tokenizer import Decoded, check_chunks, check_decode_args, flatten_ids, pack_ragged
from reasonact.atomic import atomic_write_json, read_json
from reasonact.checks import check_range

_FORMAT = "reasonact.binning/1"


class BinningTokenizer:
    def __init__(self, normalizer: QuantileNormalizer, n_bins: int = 256) -> None:
        check_range(n_bins, "n_bins", low=2)
        self.normalizer = normalizer
        self.n_bins = int(n_bins)

    @property
    def dim(self) -> int:
        return self.normalizer.dim

    @property
    def vocab_size(self) -> int:
        return self.n_bins

    @classmethod
    def fit(cls, chunks: np.ndarray, n_bins: int = 256, quantile: float = 0.01) -> BinningTokenizer:
        return cls(QuantileNormalizer.fit(check_chunks(chunks), quantile), n_bins)

    def encode(self, chunks: np.ndarray) -> list[list[int]]:
        """(b, H, d) → b lists of H·d bin ids."""
        x = self.normalizer.normalize(check_chunks(chunks, self.dim))  # (b, H, d) in [-1, 1]
        bins = np.clip(np.floor((x + 1.0) * 0.5 * self.n_bins), 0, self.n_bins - 1).astype(np.int64)
        return bins.reshape(bins.shape[0], -1).tolist()

    def decode(self, tokens: Sequence[Sequence[int]], horizon: int, dim: int | None = None) -> Decoded:
        """Bin centres; wrong lengths are padded with the middle bin or truncated, bad ids clipped."""
        check_decode_args(tokens, horizon, dim, self.dim)
        ids, seq, valid = flatten_ids(tokens)
        valid[seq[(ids < 0) | (ids >= self.n_bins)]] = False
        bins, lengths = pack_ragged(
            np.clip(ids, 0, self.n_bins - 1), seq, len(tokens), horizon * self.dim, self.n_bins // 2
        )
        x = (bins + 0.5) / self.n_bins * 2.0 - 1.0  # (b, H·d) bin centres
        return Decoded(
            self.normalizer.unnormalize(x.reshape(-1, horizon, self.dim)), valid & (lengths == horizon * self.dim)
        )

    def save(self, path: str | Path) -> None:
        meta = {"format": _FORMAT, "n_bins": self.n_bins, "normalizer": self.normalizer.to_json()}
        atomic_write_json(Path(path) / "binning.json", meta)

    @classmethod
    def load(cls, path: str | Path) -> BinningTokenizer:
        meta_path = Path(path) / "binning.json"
        meta = read_json(meta_path)
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{meta_path}: expected format {_FORMAT!r}, received {meta.get('format')!r}")
        return cls(QuantileNormalizer.from_json(meta["normalizer"]), meta["n_bins"])
