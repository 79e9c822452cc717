"""Evaluation harness: Wilson intervals, trivial and expert policies, chunk execution, outputs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from reasonact.data.video import decode
from reasonact.envs import Controller, EnvConfig, simulator_of
from reasonact.evaluation import ConstantController, EvalConfig, ExpertController, evaluate, harness, wilson_interval
from reasonact.evaluation.harness import plot_summary, task_labels


def test_wilson_interval_matches_known_values():
    low, high = wilson_interval(8, 10)  # textbook: 0.490 – 0.943
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)


class CountingController(ConstantController):
    """Returns a zero chunk of length 4 and counts the calls."""

    reads_images = True  # it checks the images it is given, so the rollout renders them for it

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
    frames, times = decode(tmp_path / "videos/reach-v3_ep0.mp4")  # every observation, the final one included
    assert frames.shape == (12 + 1, 16, 16, 3)
    np.testing.assert_allclose(times, np.arange(13) / simulator_of("reach-v3").fps)  # at the control rate


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


def test_wilson_interval_contains_p_for_every_k_of_n_up_to_100(tmp_path):
    """10/10 used to give an upper bound of 0.9999999999999999 < p, and the summary plot then refused
    the negative error bar; the same at k/k for 26 values of n <= 100 and at 0/69, 0/75."""
    for n in range(1, 101):
        for k in range(n + 1):
            low, high = wilson_interval(k, n)
            assert 0.0 <= low <= k / n <= high <= 1.0, (k, n, low, high)
        assert wilson_interval(n, n)[1] == 1.0 and wilson_interval(0, n)[0] == 0.0
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(11, 10)
    tasks = {f"t{n}": {"success_rate": 1.0, "ci95": list(wilson_interval(n, n))} for n in (4, 10, 50)}
    tasks["t0"] = {"success_rate": 0.0, "ci95": list(wilson_interval(0, 69))}
    plot_summary({"tasks": tasks, "config": {"policy": "expert", "episodes": 10}}, tmp_path / "summary.png")
    assert (tmp_path / "summary.png").stat().st_size > 1000


def test_results_do_not_depend_on_the_number_of_envs(tmp_path):
    """One controller per sub-env: the PushT expert keeps memory, and one instance shared by all
    sub-envs (reset whenever any of them started an episode) gave episode 1 length 73 with two
    envs instead of 42 with one."""
    runs = []
    for num_envs in (1, 2, 4):
        config = EvalConfig(
            tasks=("pusht",),
            episodes=4,
            env=EnvConfig(image_size=0, max_steps=120),
            num_envs=num_envs,
            asynchronous=False,
            videos_per_task=0,
            out=tmp_path / str(num_envs),
        )
        runs.append(evaluate(config, show_progress=False)["episodes"])
    assert runs[0] == runs[1] == runs[2]
    assert [(r["seed"], r["success"], r["length"]) for r in runs[0]][:2] == [(10_000, False, 120), (10_001, True, 42)]
    assert set(runs[0][0]) == {"task", "seed", "success", "length", "crashed"}


def test_long_task_names_get_distinct_labels():
    """The plot used to label tasks by their first 32 characters without the suite: most LIBERO
    Spatial tasks and every task of a perturbed copy of a suite looked the same."""
    names = [
        "pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_plate",
        "pick_up_the_black_bowl_next_to_the_ramekin_and_place_it_on_the_plate",
        "pick_up_the_black_bowl_on_the_stove_and_place_it_on_the_plate",
    ]
    tasks = [f"{suite}/{name}" for suite in ("libero_spatial", "libero_spatial_swap") for name in names]
    labels = task_labels([*tasks, "reach-v3"])
    assert len(set(labels.values())) == 7 and labels["reach-v3"] == "reach"
    assert labels[tasks[2]] == "libero_spatial/on_the_stove" and all(len(v) <= 44 for v in labels.values())


def test_an_unwritable_out_is_reported_before_any_rollout(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "rollout", lambda *args, **kwargs: pytest.fail("rolled out"))
    (tmp_path / "file").write_text("")
    config = EvalConfig(tasks=("reach-v3",), episodes=1, env=EnvConfig(image_size=0), out=tmp_path / "file")
    with pytest.raises(ValueError, match="out: cannot write to"):
        evaluate(config, show_progress=False)
