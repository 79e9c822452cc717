"""Fixtures: a tiny KI-VLA config, a FAST tokenizer fitted on smooth chunks, and observation batches."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
import torch

from reasonact.actions import FastConfig, FastTokenizer
from reasonact.data.trajectories import chunk_trajectories, smooth_trajectories
from reasonact.vla.config import TINY, VLAConfig
from reasonact.vla.contract import Observation
from reasonact.vla.prompt import PromptTokenizer

# Tiny models gain nothing from a second thread, and on a shared 2-core machine a descheduled OpenMP peer
# thread makes every op wait (10× slower under load).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def chunks() -> np.ndarray:
    return chunk_trajectories(smooth_trajectories(40, 60, TINY.action_dim, 0), TINY.horizon, 5)


@pytest.fixture(scope="session")
def fast(chunks: np.ndarray) -> FastTokenizer:
    return FastTokenizer.fit(chunks, FastConfig(vocab_size=TINY.fast_vocab))


@pytest.fixture
def make_obs() -> Callable[..., Observation]:
    def make(cfg: VLAConfig = TINY, b: int = 2, seed: int = 0, targets: bool = False) -> Observation:
        rng = np.random.default_rng(seed)
        state = rng.uniform(-1, 1, (b, cfg.state_dim))
        prompts = ["pick up the red cube", "open drawer"][:b] + ["push"] * max(0, b - 2)
        tokens, mask = PromptTokenizer(cfg)(prompts, state)
        size = cfg.vision.image_size
        images = {c: torch.from_numpy(rng.integers(0, 256, (b, size, size, 3), dtype=np.uint8)) for c in cfg.cameras}
        extra = {}
        if targets:
            ids = torch.from_numpy(rng.integers(0, 256, (b, 6)))
            extra = {"targets": ids, "target_mask": torch.tensor([[True] * 6, [True] * 4 + [False] * 2][:b])}
        return Observation(images, torch.tensor(state, dtype=torch.float32), tokens, mask, **extra)

    return make


@pytest.fixture
def actions(chunks: np.ndarray) -> torch.Tensor:
    return torch.tensor(chunks[:2], dtype=torch.float32)


def variant(name: str, **changes: object) -> VLAConfig:
    return dataclasses.replace(TINY, variant=name, **changes)


@pytest.fixture
def config_of() -> Callable[..., VLAConfig]:
    return variant
