"""Normalisation statistics in LeRobot's layout: per episode, then aggregated into meta/stats.json.

Per feature: min, max, mean, std, count and the quantiles q01, q10, q50, q90, q99, per
dimension for vectors and per channel ((3, 1, 1), pixels scaled to [0, 1]) for images, as
LeRobot's `compute_stats.py` stores them. Aggregation is exact for min/max/mean/std/count
(pooled variance). Dataset quantiles cannot be recovered exactly from per-episode ones; LeRobot averages
them (count-weighted), which is badly off when episodes differ: across MT10 tasks the gripper action's
averaged q01–q99 came out [0.24, 0.61] for actions spanning [−1, 1] (std 0.73), so quantile normalisation
put −1 at −7.8. Here each episode's distribution is taken as the piecewise-linear CDF through its
(min, q01, …, q99, max) and the dataset quantile is the quantile of the count-weighted mixture of those CDFs
(exact when episodes share a distribution, and bracketed by the true per-episode knots otherwise).
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
        agg.update(mixture_quantiles(parts, counts))
        out[feature] = agg
    return out


MAX_KNOTS = 4096  # the mixture CDF is evaluated on at most this many points per dimension


def mixture_quantiles(parts: list[dict[str, np.ndarray]], counts: np.ndarray) -> dict[str, np.ndarray]:
    """Quantiles of the count-weighted mixture of per-episode piecewise-linear CDFs (module docstring)."""
    levels = np.array([0.0, *QUANTILES.values(), 1.0])  # (k,)
    names = ["min", *QUANTILES, "max"]
    knots = np.stack([np.stack([np.asarray(p[n], dtype=np.float64) for n in names]) for p in parts])  # (E, k, ...)
    shape = knots.shape[2:]
    knots = np.maximum.accumulate(knots.reshape(len(parts), len(names), -1), axis=1)  # (E, k, D) non-decreasing
    weights = counts / counts.sum()  # (E,)
    out = np.empty((len(QUANTILES), knots.shape[2]))
    for d in range(knots.shape[2]):
        grid = np.unique(knots[:, :, d])
        if grid.size > MAX_KNOTS:
            grid = np.quantile(grid, np.linspace(0, 1, MAX_KNOTS))
        # each episode's CDF on the grid (a constant episode jumps from 0 to 1 at its value)
        cdf = np.stack([np.interp(grid, k, levels, left=0.0, right=1.0) if k[-1] > k[0] else (grid >= k[0]) * 1.0
                        for k in knots[:, :, d]])  # fmt: skip
        mixture = np.maximum.accumulate(weights @ cdf)  # (G,)
        out[:, d] = np.interp(list(QUANTILES.values()), mixture, grid)
    return {name: out[i].reshape(shape) for i, name in enumerate(QUANTILES)}


def to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    return {f: {k: np.asarray(v).tolist() for k, v in s.items()} for f, s in stats.items()}


def from_json(data: dict) -> dict[str, dict[str, np.ndarray]]:
    return {f: {k: np.asarray(v) for k, v in s.items()} for f, s in data.items()}
