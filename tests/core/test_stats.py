"""The shared bootstrap: exact on constant data, stratified resampling keeps each stratum's size, clustered
resampling widens the interval of correlated items (and changes nothing when every cluster is one item)."""

from __future__ import annotations

import numpy as np
import pytest

from reasonact.stats import bootstrap_interval


def test_constant_data_and_strata_give_exact_intervals() -> None:
    assert bootstrap_interval([1.0] * 7) == (1.0, 1.0)
    # one stratum all 1, the other all 0, equal sizes: every resample keeps 4 of each, so the mean is exactly 0.5
    assert bootstrap_interval([1, 1, 1, 1, 0, 0, 0, 0], strata=[0, 0, 0, 0, 1, 1, 1, 1]) == (0.5, 0.5)
    low, high = bootstrap_interval([1, 1, 1, 1, 0, 0, 0, 0])  # unstratified: the mix varies
    assert low <= 0.25 and high >= 0.75
    # a ratio of sums: every item has numerator = 2 × denominator
    assert bootstrap_interval([2.0, 4.0, 6.0], [1.0, 2.0, 3.0]) == (2.0, 2.0)


def test_clusters_widen_the_interval_of_correlated_items() -> None:
    rng = np.random.default_rng(0)
    episode = np.repeat(np.arange(10), 20)  # 10 episodes × 20 frames
    values = rng.normal(0, 1, 10)[episode] + rng.normal(0, 0.1, 200)  # frames of one episode nearly equal
    naive, clustered = bootstrap_interval(values), bootstrap_interval(values, clusters=episode)
    assert (clustered[1] - clustered[0]) > 3 * (naive[1] - naive[0])
    singletons = bootstrap_interval(values, clusters=np.arange(200))
    assert singletons == naive  # one item per cluster is the plain bootstrap, draw for draw
    labels = [f"reach@{e}" for e in episode]  # any hashable labels
    assert bootstrap_interval(values, clusters=labels) == clustered


def test_bad_input_is_refused_or_has_no_interval() -> None:
    assert bootstrap_interval([]) is None
    assert bootstrap_interval([1.0, 2.0], [0.0, 0.0]) is None  # nothing to divide by
    with pytest.raises(
        ValueError, match=r"denominator: expected one value per item, shape \(3,\) \(1-d\), received \(2,\)"
    ):
        bootstrap_interval([1.0, 2.0, 3.0], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"clusters: expected one value per item, shape \(2,\)"):
        bootstrap_interval([1.0, 2.0], clusters=[0])
    with pytest.raises(ValueError, match="clusters: expected each cluster inside one stratum"):
        bootstrap_interval([1.0, 2.0], clusters=[0, 0], strata=[0, 1])
    with pytest.raises(ValueError, match="numerator: expected finite values"):
        bootstrap_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="level: expected a coverage in"):
        bootstrap_interval([1.0], level=1.0)
