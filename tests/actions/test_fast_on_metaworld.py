"""FAST on real robot actions: MetaWorld's scripted experts (simulator from PyPI)."""

from __future__ import annotations

import numpy as np
import pytest

from reasonact.actions import BinningTokenizer, FastConfig, FastTokenizer
from reasonact.data.trajectories import chunk_trajectories, metaworld_expert_trajectories


@pytest.mark.slow
@pytest.mark.smoke
def test_fast_compresses_metaworld_expert_chunks() -> None:
    trajectories = metaworld_expert_trajectories(("reach-v3", "pick-place-v3"), episodes_per_task=3, steps=100)
    assert all(t.shape == (100, 4) and np.abs(t).max() <= 1.0 for t in trajectories)
    chunks = chunk_trajectories(trajectories, horizon=50, stride=5)
    fast = FastTokenizer.fit(chunks, FastConfig(scale=20.0))
    naive = BinningTokenizer.fit(chunks)
    ids = fast.encode(chunks)
    decoded = fast.decode(ids, 50)
    rmse = np.sqrt(np.mean((fast.normalizer.normalize(decoded.actions) - fast.normalizer.normalize(chunks)) ** 2))
    assert decoded.valid.all() and rmse <= 0.01
    assert np.mean([len(t) for t in naive.encode(chunks)]) / np.mean([len(t) for t in ids]) > 3.0


def test_unknown_task_suggests_the_closest_name() -> None:
    with pytest.raises(ValueError, match="pick-place-v3"):
        metaworld_expert_trajectories(("pick-plac-v3",), episodes_per_task=1, steps=5)
