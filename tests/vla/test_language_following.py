"""Language following (same scene, different instruction) on real MetaWorld scenes and scripted experts: a policy
that acts as the instructed task's expert scores 1, a text-blind one exactly 0, text-sensitive noise ~0 while its
sensitivity is high; bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest

from reasonact.vla.language_following import (
    SceneFrames,
    expert_actions,
    following_interval,
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


def test_scene_frames_hold_the_tasks_own_scenes(frames: list[SceneFrames]) -> None:
    reach, drawer = frames
    assert partners("reach-v3") == ["push-v3", "pick-place-v3"] and partners("door-open-v3") == []
    assert reach.images["corner"].shape[1:] == (32, 32, 3) and reach.privileged.shape == (len(reach), 39)
    assert len(reach) >= 4 and len(drawer) >= 4 and reach.state.shape == (len(reach), 4)
    assert not np.array_equal(reach.privileged[0], reach.privileged[-1])  # frames along the episode


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


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match=r"d_model: expected the shape of d_expert \(3, 4\), received \(2, 4\)"):
        scores(np.zeros((2, 4)), np.zeros((3, 4)))
    assert scores(np.ones((2, 4)), np.zeros((2, 4)))["following"] is None  # experts agree: nothing to follow
    assert following_interval([1.0, 2.0], [0.0, 0.0]) is None and following_interval([], []) is None
    with pytest.raises(ValueError, match=r"frame_dot: expected the shape of frame_scale \(2,\), received \(3,\)"):
        following_interval([1.0, 2.0, 3.0], [1.0, 1.0])
    lonely = SceneFrames("door-open-v3", {}, np.zeros((1, 4)), np.zeros((1, 39)))
    with pytest.raises(ValueError, match="door-open-v3 has no same-scene partner"):
        measure(text_blind, [lonely])
    with pytest.raises(ValueError, match="every: expected a frame stride >= 1, received 0"):
        scene_frames("reach-v3", (0,), 0, 10, 32, ())
