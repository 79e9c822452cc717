"""Confidence intervals shared by both halves: Wilson for success rates and accuracies, a (clustered,
stratified) percentile bootstrap for means, paired differences and ratios of sums."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from reasonact.checks import check_range


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval for a binomial proportion (Wilson 1927); (0, 1) when n = 0.

    The interval always contains p = successes / n; in floating point its bounds can land an ulp on
    the wrong side of p (10/10 gives an upper bound of 0.9999999999999999), so they are clamped to
    [0, p] and [p, 1]: exactly 1 at k = n and exactly 0 at k = 0.
    """
    check_range(n, "n", low=0)
    check_range(successes, "successes", 0, n)
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return min(max(0.0, centre - half), p), max(min(1.0, centre + half), p)


def bootstrap_interval(
    numerator: ArrayLike,
    denominator: ArrayLike | None = None,
    clusters: ArrayLike | None = None,
    strata: ArrayLike | None = None,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile-bootstrap interval of R = Σ numerator / Σ denominator (the mean when `denominator` is None).

    numerator, denominator (n,) per item; `clusters` (n,) labels items that must be resampled together (the
    frames of one episode, the paired episodes of one scene: resampling correlated items one by one gives an
    interval too narrow), each cluster whole and with replacement (the cluster bootstrap, Davison & Hinkley
    1997 §3.8; default: every item its own cluster); `strata` (n,) resamples clusters within each stratum,
    as many as it has (seeds of a study; a cluster must lie in one stratum). A paired difference is the
    mean of the per-item differences. Resamples whose denominator sums to ≤ 0 are dropped; None when there
    are no items or none is left.
    """
    check_range(resamples, "resamples", low=1)
    if not 0 < level < 1:
        raise ValueError(f"level: expected a coverage in (0, 1), received {level}")
    num = np.asarray(numerator, dtype=np.float64)
    den = np.ones_like(num) if denominator is None else np.asarray(denominator, dtype=np.float64)
    labels = {"clusters": clusters, "strata": strata}
    for name, values in (("denominator", den), *((k, v) for k, v in labels.items() if v is not None)):
        shape = np.shape(values)
        if num.ndim != 1 or shape != num.shape:
            raise ValueError(f"{name}: expected one value per item, shape {num.shape} (1-d), received {shape}")
    if not (np.isfinite(num).all() and np.isfinite(den).all()):
        raise ValueError("numerator: expected finite values (and a finite denominator), received NaN or inf")
    if not len(num):
        return None
    cluster_of = np.unique(np.arange(len(num)) if clusters is None else np.asarray(clusters), return_inverse=True)[1]
    stratum_of = np.unique(np.zeros(len(num)) if strata is None else np.asarray(strata), return_inverse=True)[1]
    n_clusters = cluster_of.max() + 1
    cluster_num = np.bincount(cluster_of, num, n_clusters)  # (C,) per-cluster sums
    cluster_den = np.bincount(cluster_of, den, n_clusters)  # (C,)
    cluster_stratum = np.full(n_clusters, -1)
    cluster_stratum[cluster_of] = stratum_of
    if np.any(cluster_stratum[cluster_of] != stratum_of):
        raise ValueError("clusters: expected each cluster inside one stratum, received a cluster split across strata")
    rng = np.random.default_rng(seed)
    total_num, total_den = np.zeros(resamples), np.zeros(resamples)  # (resamples,) each
    for h in range(stratum_of.max() + 1):
        members = np.flatnonzero(cluster_stratum == h)  # (C_h,) the stratum's clusters
        picks = members[rng.integers(0, len(members), (resamples, len(members)))]  # (resamples, C_h)
        total_num += cluster_num[picks].sum(axis=1)
        total_den += cluster_den[picks].sum(axis=1)
    kept = total_den > 0
    if not kept.any():
        return None
    tail = (1 - level) / 2
    low, high = np.quantile(total_num[kept] / total_den[kept], [tail, 1 - tail])
    return float(low), float(high)
