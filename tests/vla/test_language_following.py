"""Language following (same scene, different instruction) on real MetaWorld scenes and scripted experts, open and
closed loop: a policy that acts as the instructed task's expert scores 1, a text-blind one exactly 0, text-sensitive
noise ~0 while its sensitivity is high; intervals resample whole scenes; bad input is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reasonact.envs import EnvConfig, EnvObservation, make_env, make_expert
from reasonact.evaluation import EvalConfig
from reasonact.stats import bootstrap_interval
from reasonact.vla.language_following import (
    FollowConfig,
    SceneFrames,
    closed_loop,
    closed_loop_scores,
    expert_actions,
    follow,
    instruction,
    measure,
    partners,
    scene_frames,
    scores,
)

TASK_OF = {instruction(t): t for t in ("reach-v3", "push-v3", "pick-place-v3", "drawer-open-v3", "drawer-close-v3")}


@pytest.fixture(scope="module")
def frames() -> list[SceneFrames]:
    """Reach scenes (partners push, pick-place) and drawer-close scenes (partner drawer-open), 2 seeds each."""
    return [scene_frames(t, (10_000, 10_001), 8, 60, 32, ()) for t in ("reach-v3", "drawer-close-v3")]


def oracle(scene: SceneFrames, text: str) -> np.ndarray:
    """Acts as the expert of the instructed task, in this scene: (n, 1, d_a)."""
    return expert_actions(TASK_OF[text], scene)[:, None]


def text_blind(scene: SceneFrames, text: str) -> np.ndarray:
    """Acts as the scene's own expert whatever it is told."""
    return expert_actions(scene.task, scene)[:, None]


def text_noise(scene: SceneFrames, text: str) -> np.ndarray:
    """The own expert plus an offset drawn from the text: sensitive to language, blind to its meaning."""
    offset = np.random.default_rng(sum(text.encode())).normal(0, 1, (len(scene), 4))
    return (expert_actions(scene.task, scene) + offset)[:, None]


class Told:
    """Closed loop: acts as the expert of the task it is told (`instructed=True`) or of its env's own task."""

    privileged = True  # the scripted experts read the simulator state

    def __init__(self, task: str, instructed: bool) -> None:
        self.task, self.instructed, self.expert = task, instructed, None

    def reset(self) -> None:
        self.expert = None  # the instruction arrives with the episode's first observation

    def act(self, obs: EnvObservation) -> np.ndarray:
        if self.expert is None:
            self.expert = make_expert(TASK_OF[obs["instruction"]] if self.instructed else self.task)
        return self.expert.act(obs)


def test_scene_frames_hold_the_tasks_own_scenes(frames: list[SceneFrames]) -> None:
    reach, drawer = frames
    assert partners("reach-v3") == ["push-v3", "pick-place-v3"] and partners("door-open-v3") == []
    assert reach.images["corner"].shape[1:] == (32, 32, 3) and reach.privileged.shape == (len(reach), 39)
    assert len(reach) >= 4 and len(drawer) >= 4 and reach.state.shape == (len(reach), 4)
    assert not np.array_equal(reach.privileged[0], reach.privileged[-1])  # frames along the episode
    assert set(reach.seeds) == {10_000, 10_001} and reach.seeds.shape == (len(reach),)


def test_following_is_one_for_the_instructed_expert_and_zero_when_text_is_ignored(frames) -> None:
    followed, ignored, noisy = (measure(f, frames) for f in (oracle, text_blind, text_noise))
    assert followed["following"] == pytest.approx(1.0, abs=1e-12) and followed["sensitivity"] == pytest.approx(1.0)
    assert followed["following_ci"] == pytest.approx([1.0, 1.0]) and ignored["following_ci"] == [0.0, 0.0]
    assert set(followed["pairs"]) == {"reach-v3→push-v3", "reach-v3→pick-place-v3", "drawer-close-v3→drawer-open-v3"}
    assert all(p["following"] == pytest.approx(1.0, abs=1e-12) for p in followed["pairs"].values())
    assert ignored["following"] == 0.0 and ignored["sensitivity"] == 0.0
    assert noisy["sensitivity"] > 1.0 and abs(noisy["following"]) < 0.5  # moving is not following
    low, high = noisy["following_ci"]
    assert low < 0 < high  # indistinguishable from ignoring the text
    assert len(followed["frame_dot"]) == followed["frames"] == len(followed["frame_scale"])
    assert followed["frames"] == sum(len(f) * len(partners(f.task)) for f in frames)
    assert set(followed["frame_episode"]) == {
        f"{t}@{s}" for t in ("reach-v3", "drawer-close-v3") for s in (10_000, 10_001)
    }
    # the interval resamples the 4 scenes whole (`stats` tests that this widens correlated intervals)
    assert noisy["following_ci"] == list(
        bootstrap_interval(noisy["frame_dot"], noisy["frame_scale"], clusters=noisy["frame_episode"])
    )


def test_closed_loop_following_on_drawer_open_and_close(tmp_path: Path) -> None:
    base = EvalConfig(env=EnvConfig(image_size=0, max_steps=200), num_envs=1, asynchronous=False, out=tmp_path)
    tasks = ("drawer-open-v3", "drawer-close-v3")
    followed = closed_loop(lambda task: Told(task, instructed=True), tasks, 2, base)
    ignored = closed_loop(lambda task: Told(task, instructed=False), tasks, 2, base)
    assert set(followed["pairs"]) == {"drawer-open-v3→drawer-close-v3", "drawer-close-v3→drawer-open-v3"}
    # told its own task the expert succeeds; told the partner's it does that task, and its own does not happen
    assert followed["success_told_own"] == 1.0 and followed["success_told_other"] == 0.0
    assert followed["following"] == 1.0 and followed["following_ci"] == [1.0, 1.0]
    assert ignored["following"] == 0.0 and ignored["following_ci"] == [0.0, 0.0]  # exactly: same seeds, same acts
    assert ignored["success_told_own"] == ignored["success_told_other"] == 1.0
    assert followed["paired_episodes"] == 4 and len(followed["paired"]) == 4 and followed["episodes"] == 2
    told = [p.name for p in tmp_path.iterdir()]  # one harness run per (task, instruction), results kept
    assert sorted(told) == sorted(f"{t}__told__{o}" for t in tasks for o in tasks)
    half = [
        dict(p, told_other=p["told_own"]) if p["scene"].startswith("drawer-open") else p for p in followed["paired"]
    ]
    assert closed_loop_scores(half)["following"] == 0.5


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match=r"d_model: expected the shape of d_expert \(3, 4\), received \(2, 4\)"):
        scores(np.zeros((2, 4)), np.zeros((3, 4)))
    assert scores(np.ones((2, 4)), np.zeros((2, 4)))["following"] is None  # experts agree: nothing to follow
    lonely = SceneFrames("door-open-v3", {}, np.zeros((1, 4)), np.zeros((1, 39)), np.zeros(1, dtype=int))
    with pytest.raises(ValueError, match="door-open-v3 has no same-scene partner"):
        measure(text_blind, [lonely])
    with pytest.raises(ValueError, match="tasks: door-open-v3 has no same-scene partner"):
        closed_loop(lambda task: Told(task, False), ["door-open-v3"], 1, EvalConfig())
    with pytest.raises(ValueError, match="paired: expected closed-loop episode pairs, received none"):
        closed_loop_scores([])
    with pytest.raises(ValueError, match=r"closed_loop_episodes: expected a value in \[1, inf\], received 0"):
        follow(FollowConfig(closed_loop_episodes=0))  # refused before any checkpoint is read
    with pytest.raises(ValueError, match="instruction_task: expected a MetaWorld task, received 'drawer'"):
        make_env(EnvConfig(task="drawer-open-v3", image_size=0, instruction_task="drawer"))
    with pytest.raises(ValueError, match="instruction_task: PushT envs say their own task's instruction only"):
        make_env(EnvConfig(task="pusht", image_size=0, instruction_task="reach-v3"))
    with pytest.raises(ValueError, match="every: expected a frame stride >= 1, received 0"):
        scene_frames("reach-v3", (0,), 0, 10, 32, ())
