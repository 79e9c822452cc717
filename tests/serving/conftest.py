"""Fixtures: observations matching the echo / tiny-VLA spec, and a raw websocket for hand-made messages."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from reasonact.serving.policy import ECHO_SPEC

torch.set_num_threads(1)  # tiny models; a second OpenMP thread only waits on a shared 2-core machine


@pytest.fixture
def make_obs() -> Callable[..., dict]:
    """One observation (b=None) or a batch of b, in the request format, with state[..., 0] = `tag`."""

    def make(tag: float = 0.0, b: int | None = None, seed: int = 0) -> dict:
        rng = np.random.default_rng(seed)
        lead = () if b is None else (b,)
        size = ECHO_SPEC.image_size
        state = rng.uniform(-1, 1, (*lead, ECHO_SPEC.state_dim)).astype(np.float32)
        state[..., 0] = tag
        return {
            "images": {"base": rng.integers(0, 256, (*lead, size, size, 3), dtype=np.uint8)},
            "state": state,
            "instruction": "pick up the red cube" if b is None else ["pick up the red cube"] * b,
        }

    return make
