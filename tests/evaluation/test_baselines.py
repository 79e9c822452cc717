"""Baselines fitted on demonstrations: the chunks they are built from, what each returns, and one closed-loop run
of each in MetaWorld through the evaluation harness."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from reasonact.data.lerobot import LeRobotWriter
from reasonact.envs import EnvConfig
from reasonact.evaluation import EvalConfig, evaluate
from reasonact.evaluation.baselines import (
    Demonstrations,
    MeanChunkController,
    NearestStateController,
    baseline_factory,
)

FEATURES = {
    "observation.images.corner": {"dtype": "image", "shape": [16, 16, 3], "names": ["height", "width", "channels"]},
    "observation.state": {"dtype": "float32", "shape": [4], "names": ["hand_x", "hand_y", "hand_z", "gripper_opening"]},
    "action": {"dtype": "float32", "shape": [4], "names": ["dx", "dy", "dz", "gripper"]},
}


def write_dataset(root: Path) -> Path:
    """reach-v3: 3 episodes of 5 frames whose action at frame t of episode e is (e, t, 0, 0); state (e, t, 0, 0)."""
    writer = LeRobotWriter(root, fps=80, features=FEATURES, robot_type="metaworld")
    for e in range(3):
        rows = np.array([[e, t, 0, 0] for t in range(5)], dtype=np.float32)  # (5, 4)
        frames = {"observation.images.corner": np.zeros((5, 16, 16, 3), np.uint8), "observation.state": rows,
                  "action": rows}  # fmt: skip
        writer.add_episode("reach the goal", frames, extra={"env_task": "reach-v3"})
    writer.flush()
    return root


def test_demonstrations_are_chunks_of_the_training_episodes(tmp_path: Path) -> None:
    demos = Demonstrations.load((write_dataset(tmp_path / "ds"),), horizon=3, heldout_per_task=1)
    states, chunks = demos.task("reach-v3")
    assert states.shape == (10, 4) and chunks.shape == (10, 3, 4)  # episodes 0 and 1; episode 2 is held out
    assert chunks[:, :, 0].max() == 1  # no frame of the held-out episode
    np.testing.assert_array_equal(chunks[3, :, 1], [3, 4, 4])  # frame 3 of episode 0: the last action repeats
    with pytest.raises(ValueError, match=r"task: no demonstrations of 'push-v3' .* \['reach-v3'\]"):
        demos.task("push-v3")


def test_mean_chunk_and_nearest_state() -> None:
    states = np.array([[0.0, 0.0], [1.0, 10.0], [0.0, 200.0], [1.0, 210.0]])  # dim 1 spreads 200× wider than dim 0
    chunks = np.arange(4 * 2 * 1, dtype=float).reshape(4, 2, 1)  # (n, H, d)
    np.testing.assert_allclose(MeanChunkController(chunks).act({}), [[3.0], [4.0]])
    nearest = NearestStateController(states, chunks)
    # raw distance picks frame 1 ((0, 9) is 1.4 from (1, 10), 9 from (0, 0)); per-dimension z-scores pick frame 0
    np.testing.assert_array_equal(nearest.act({"state": np.array([0.0, 9.0])}), chunks[0])
    np.testing.assert_array_equal(nearest.act({"state": np.array([1.0, 205.0])}), chunks[3])
    with pytest.raises(ValueError, match=r"baselines: expected names from \['mean-chunk', 'nearest-state', 'random'\]"):
        baseline_factory("median", None)


@pytest.mark.slow
def test_baselines_run_closed_loop_in_metaworld(tmp_path: Path) -> None:
    demos = Demonstrations.load((write_dataset(tmp_path / "ds"),), horizon=4)
    config = EvalConfig(tasks=("reach-v3",), episodes=2, env=EnvConfig(image_size=16, max_steps=12), num_envs=2,
                        asynchronous=False, videos_per_task=0, execute_steps=2)  # fmt: skip
    for name in ("mean-chunk", "nearest-state", "random"):
        results = evaluate(dataclasses.replace(config, out=tmp_path / name), baseline_factory(name, demos), False)
        task = results["tasks"]["reach-v3"]
        assert task["episodes"] == 2 and task["crashed"] == 0 and task["mean_length"] == 12  # none reaches the goal
