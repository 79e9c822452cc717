"""Evaluation harness: Wilson intervals, trivial and expert policies, chunk execution, outputs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from reasonact.envs import Controller, EnvConfig
from reasonact.evaluation import ConstantController, EvalConfig, ExpertController, evaluate, wilson_interval


def test_wilson_interval_matches_known_values():
    low, high = wilson_interval(8, 10)  # textbook: 0.490 – 0.943
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)


class CountingController(ConstantController):
    """Returns a zero chunk of length 4 and counts the calls."""

    def __init__(self) -> None:
        super().__init__(np.zeros((4, 4)))
        self.calls, self.resets = 0, 0

    def reset(self) -> None:
        self.resets += 1

    def act(self, obs):
        self.calls += 1
        assert obs["images"]["corner"].shape == (16, 16, 3) and obs["state"].shape == (4,) and obs["instruction"]
        return super().act(obs)


def test_trivial_controller_fails_and_chunks_are_executed(tmp_path):
    controller = CountingController()
    assert isinstance(controller, Controller)
    config = EvalConfig(
        tasks=("reach-v3",),
        episodes=2,
        env=EnvConfig(image_size=16, max_steps=12),
        num_envs=1,
        asynchronous=False,
        out=tmp_path,
        videos_per_task=1,
    )
    results = evaluate(config, controller, show_progress=False)
    task = results["tasks"]["reach-v3"]
    assert task["successes"] == 0 and task["mean_length"] == 12 and task["ci95"][0] == 0.0
    assert controller.calls == 2 * 12 // 4 and controller.resets == 2  # a call per 4-step chunk, a reset per episode
    assert (tmp_path / "summary.png").stat().st_size > 1000 and (tmp_path / "videos/reach-v3_ep0.gif").exists()
    assert json.loads((tmp_path / "results.json").read_text())["overall"]["episodes"] == 2


def test_bad_action_shapes_are_refused(tmp_path):
    config = EvalConfig(
        tasks=("reach-v3",),
        episodes=1,
        env=EnvConfig(image_size=0, max_steps=5),
        num_envs=1,
        asynchronous=False,
        out=tmp_path,
    )
    with pytest.raises(ValueError, match=r"chunk \(H, 4\)"):
        evaluate(config, ConstantController(np.zeros(7)), show_progress=False)


@pytest.mark.slow
@pytest.mark.smoke
def test_expert_policy_succeeds_with_fixed_seeds(tmp_path):
    config = EvalConfig(
        tasks=("reach-v3",),
        episodes=3,
        env=EnvConfig(image_size=0, max_steps=100),
        num_envs=2,
        asynchronous=False,
        out=tmp_path,
    )
    first = evaluate(config, show_progress=False)
    assert first["tasks"]["reach-v3"]["success_rate"] == 1.0
    again = evaluate(dataclasses.replace(config, num_envs=1), ExpertController, show_progress=False)
    assert again["tasks"]["reach-v3"]["mean_length"] == first["tasks"]["reach-v3"]["mean_length"]  # same seeds


@pytest.mark.slow
def test_asynchronous_envs_give_the_same_results(tmp_path):
    base = EvalConfig(tasks=("drawer-close-v3",), episodes=3, env=EnvConfig(image_size=0), num_envs=2, out=tmp_path)
    sync = evaluate(dataclasses.replace(base, asynchronous=False), show_progress=False)["tasks"]["drawer-close-v3"]
    proc = evaluate(base, show_progress=False)["tasks"]["drawer-close-v3"]
    assert sync["successes"] == proc["successes"] == 3 and sync["mean_length"] == proc["mean_length"]
