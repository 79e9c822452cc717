"""Quantile normalisation of action dimensions to [-1, 1] (FAST, arXiv 2501.09747 §V-B).

The 1st and 99th percentiles of each dimension map to -1 and 1 and values beyond them are
clipped, so rare outliers do not stretch the range the DCT quantisation step is sized for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reasonact.checks import as_float_array, check_range

_MIN_SPAN = 1e-6  # a constant dimension gets this span instead of a division by zero


@dataclass(frozen=True)
class QuantileNormalizer:
    """Per-dimension affine map [q_low, q_high] → [-1, 1], with clipping."""

    low: tuple[float, ...]  # (d,) the `quantile` percentile per dimension
    high: tuple[float, ...]  # (d,) the `1 - quantile` percentile per dimension

    @classmethod
    def fit(cls, chunks: np.ndarray, quantile: float = 0.01) -> QuantileNormalizer:
        """Fit on actions of shape (b, H, d) or (n, d)."""
        check_range(quantile, "quantile", 0.0, 0.5)
        arr = np.asarray(chunks, dtype=np.float64)
        flat = as_float_array(arr.reshape(-1, arr.shape[-1]) if arr.ndim >= 2 else arr, "chunks", ("n", "d"))
        if flat.shape[0] == 0:
            raise ValueError("chunks: expected at least one action to fit normalisation on, received none")
        low, high = np.quantile(flat, [quantile, 1.0 - quantile], axis=0)
        high = np.maximum(high, low + _MIN_SPAN)
        return cls(tuple(low.tolist()), tuple(high.tolist()))

    @property
    def dim(self) -> int:
        return len(self.low)

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.low), np.asarray(self.high)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """(..., d) raw actions → (..., d) in [-1, 1]."""
        low, high = self._bounds()
        return np.clip(2.0 * (x - low) / (high - low) - 1.0, -1.0, 1.0)

    def unnormalize(self, y: np.ndarray) -> np.ndarray:
        """(..., d) in [-1, 1] → (..., d) raw actions."""
        low, high = self._bounds()
        return (y + 1.0) * 0.5 * (high - low) + low

    def to_json(self) -> dict[str, list[float]]:
        return {"low": list(self.low), "high": list(self.high)}

    @classmethod
    def from_json(cls, data: dict[str, list[float]]) -> QuantileNormalizer:
        return cls(tuple(data["low"]), tuple(data["high"]))
