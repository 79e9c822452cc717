"""Normalisation statistics in LeRobot's layout: per episode, then aggregated into meta/stats.json.

Per feature: min, max, mean, std, count and the quantiles q01, q10, q50, q90, q99, per
dimension for vectors and per channel ((3, 1, 1), pixels scaled to [0, 1]) for images, as
LeRobot's `compute_stats.py` stores them. Aggregation is exact for min/max/mean/std/count
(pooled variance) and a count-weighted mean for quantiles, the approximation LeRobot also makes.
"""

from __future__ import annotations

import numpy as np

QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
IMAGE_SAMPLE_FRAMES = 20  # image stats use at most this many evenly spaced frames per episode


def feature_stats(values: np.ndarray, is_image: bool) -> dict[str, np.ndarray]:
    """values: (T, d) numeric or (T, h, w, 3) uint8 images → {stat: array}."""
    if is_image:
        step = max(1, len(values) // IMAGE_SAMPLE_FRAMES)
        pixels = values[::step].reshape(-1, values.shape[-1]).astype(np.float64) / 255.0  # (n, 3)
        stats = _columns(pixels)
        stats = {k: v.reshape(-1, 1, 1) for k, v in stats.items()}  # (3, 1, 1) as LeRobot stores channels
        stats["count"] = np.array([len(values)])
        return stats
    flat = np.asarray(values, dtype=np.float64).reshape(len(values), -1)  # (T, d)
    stats = _columns(flat)
    stats["count"] = np.array([len(values)])
    return stats


def _columns(x: np.ndarray) -> dict[str, np.ndarray]:
    """Column statistics of x (n, d)."""
    out = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0)}
    out.update({name: np.quantile(x, q, axis=0) for name, q in QUANTILES.items()})
    return out


def aggregate(stats: list[dict[str, dict[str, np.ndarray]]]) -> dict[str, dict[str, np.ndarray]]:
    """Combine per-episode stats ({feature: {stat: array}}) into dataset stats."""
    if not stats:
        raise ValueError("stats: expected at least one episode's statistics, received none")
    out = {}
    for feature in stats[0]:
        parts = [s[feature] for s in stats]
        counts = np.array([float(p["count"][0]) for p in parts])
        w = (counts / counts.sum()).reshape(-1, *([1] * np.ndim(parts[0]["mean"])))  # (n, 1...)
        means = np.stack([p["mean"] for p in parts])
        mean = (w * means).sum(0)
        var = (w * (np.stack([p["std"] for p in parts]) ** 2 + (means - mean) ** 2)).sum(0)
        agg = {
            "min": np.min([p["min"] for p in parts], axis=0),
            "max": np.max([p["max"] for p in parts], axis=0),
            "mean": mean,
            "std": np.sqrt(var),
            "count": np.array([int(counts.sum())]),
        }
        agg.update({q: (w * np.stack([p[q] for p in parts])).sum(0) for q in QUANTILES})
        out[feature] = agg
    return out


def to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    return {f: {k: np.asarray(v).tolist() for k, v in s.items()} for f, s in stats.items()}


def from_json(data: dict) -> dict[str, dict[str, np.ndarray]]:
    return {f: {k: np.asarray(v) for k, v in s.items()} for f, s in data.items()}
