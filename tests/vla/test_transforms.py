"""Transforms shared by training and inference: normalisation from LeRobot stats, images, prompts, actions back."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from reasonact.data import stats as stats_lib
from reasonact.vla.config import TINY
from reasonact.vla.contract import check_observation
from reasonact.vla.transforms import Normalizer, VLATransforms, resize_images

CFG = dataclasses.replace(TINY, state_dim=4, action_dim=3)


def _stats(rng: np.random.Generator) -> dict:
    """Dataset stats as `reasonact data collect` writes them: per-episode stats aggregated."""
    episodes = []
    for gripper in (-1.0, 0.0):  # the last action dim is constant within each episode
        action = np.concatenate([rng.normal(0.5, 2.0, (200, 1)), np.full((200, 1), gripper)], 1)
        state = rng.uniform(-3, 5, (200, 2))
        episodes.append({"action": stats_lib.feature_stats(action, False),
                         "observation.state": stats_lib.feature_stats(state, False)})  # fmt: skip
    return stats_lib.aggregate(episodes)


def _transforms(config=CFG) -> VLATransforms:
    stats = _stats(np.random.default_rng(0))
    return VLATransforms(
        config,
        Normalizer.from_stats(stats, "observation.state"),
        Normalizer.from_stats(stats, "action"),
        (("base", "corner"),),
    )


def test_quantile_normalisation_maps_q01_q99_to_the_unit_interval() -> None:
    stats = _stats(np.random.default_rng(0))
    norm = Normalizer.from_stats(stats, "action")
    q01, q99 = stats["action"]["q01"], stats["action"]["q99"]
    np.testing.assert_allclose(norm.normalize(q01)[0], -1.0)
    np.testing.assert_allclose(norm.normalize(q99)[0], 1.0)
    # the gripper's q01 = q99 (count-weighted per-episode quantiles) → falls back to min/max, no division by ~0
    np.testing.assert_allclose(norm.normalize(np.array([0.0, -1.0])), [norm.normalize(np.zeros(2))[0], -1.0])
    np.testing.assert_allclose(norm.normalize(np.array([0.0, 0.0]))[1], 1.0)
    z = Normalizer.from_stats(stats, "action", "mean_std")
    np.testing.assert_allclose(z.normalize(stats["action"]["mean"]), 0.0, atol=1e-12)
    x = np.random.default_rng(1).normal(size=(5, 2))
    np.testing.assert_allclose(norm.unnormalize(norm.normalize(x)), x)


def test_stats_that_do_not_fit_are_refused() -> None:
    stats = _stats(np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"meta/stats.json: stats: no statistics for feature 'observation.joint'"):
        Normalizer.from_stats(stats, "observation.joint", source="meta/stats.json")
    bad = {"action": {**stats["action"], "q99": np.array([np.nan, 1.0])}}
    with pytest.raises(ValueError, match=r"stats\['action'\]: expected finite"):
        Normalizer.from_stats(bad, "action")
    with pytest.raises(ValueError, match=r"stats\['action'\]: missing \['mean'\]"):
        Normalizer.from_stats({"action": {"std": np.ones(2)}}, "action", "mean_std")
    with pytest.raises(ValueError, match="action: the data has 2 action dims, the model action_dim=1"):
        _transforms(config=dataclasses.replace(CFG, action_dim=1))


def test_env_observation_becomes_a_valid_model_observation_single_or_batched() -> None:
    tf = _transforms()
    rng = np.random.default_rng(2)
    obs = {"images": {"corner": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)},
           "state": rng.uniform(-3, 5, 2).astype(np.float32), "instruction": "open the drawer"}  # fmt: skip
    single = tf.env_observation(obs)
    check_observation(single, CFG)
    assert single.images["base"].shape == (1, 32, 32, 3) and single.images["base"].dtype == torch.float32
    assert single.state.shape == (1, 4) and not single.state[0, 2:].any()  # zero-padded to state_dim
    two = {"images": {"corner": np.stack([obs["images"]["corner"]] * 2)}, "state": np.stack([obs["state"]] * 2)}
    batched = tf.env_observation({**two, "instruction": [obs["instruction"]] * 2})
    torch.testing.assert_close(batched.images["base"][1:], single.images["base"])
    assert torch.equal(batched.tokens[1:], single.tokens)
    with pytest.raises(ValueError, match=r"images: missing camera 'corner' \(model camera 'base'\)"):
        tf.env_observation({**obs, "images": {"wrist": obs["images"]["corner"]}})


def test_actions_round_trip_through_the_model_space_and_targets_tokenise() -> None:
    tf = _transforms()
    chunks = np.random.default_rng(3).normal(0.5, 2.0, (2, 10, 2))
    chunks[..., 1] = -1.0
    model_space = tf.actions_to_model(chunks)
    assert model_space.shape == (2, 10, 3) and not model_space[..., 2].any()
    np.testing.assert_allclose(tf.actions_to_robot(model_space), chunks, rtol=1e-5, atol=1e-5)
    ids, mask = tf.target_ids(["open", None])
    assert ids[0, :4].tolist() == list(b"open") and mask.sum(1).tolist() == [4, 0]
    again = VLATransforms.from_json(CFG, tf.to_json())
    assert again.state == tf.state and again.action == tf.action and again.cameras == tf.cameras


def test_resize_is_antialiased_and_a_no_op_at_the_model_size() -> None:
    checker = np.indices((64, 64)).sum(0) % 2 * 255  # 1-px checkerboard: antialiasing averages it to grey
    images = np.repeat(checker[None, ..., None], 3, -1).astype(np.uint8)
    small = resize_images(images, 32)
    assert small.shape == (1, 32, 32, 3) and abs(float(small.float().mean()) - 127.5) < 1 and small.float().std() < 2
    same = torch.from_numpy(images)
    assert resize_images(same, 64) is same
    with pytest.raises(ValueError, match=r"images: expected uint8 images \(b, h, w, 3\)"):
        resize_images(np.zeros((1, 8, 8, 3), dtype=np.float32), 4)
