"""The held-out split of demonstrations: the last `heldout_per_task` episodes of every task.

The VLA trainer measures its held-out action error on them and the baselines (`evaluation/baselines.py`)
are fitted without them, so both see the same training episodes.
"""

from __future__ import annotations

from collections.abc import Sequence


def split_episodes(tasks: Sequence[str], heldout_per_task: int) -> tuple[list[int], list[int]]:
    """The task of each episode → (train, held-out) episode indices; the last `heldout_per_task` episodes of
    every task are held out."""
    by_task: dict[str, list[int]] = {}
    for i, task in enumerate(tasks):
        by_task.setdefault(task, []).append(i)
    held = [i for ids in by_task.values() for i in ids[len(ids) - heldout_per_task :]] if heldout_per_task else []
    train = [i for i in range(len(tasks)) if i not in set(held)]
    if not train:
        raise ValueError(f"heldout_per_task: {heldout_per_task} leaves no training episode")
    return train, held
