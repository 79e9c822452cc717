"""Confidence intervals shared by both halves (robot success rates, search accuracies)."""

from __future__ import annotations

import math

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
