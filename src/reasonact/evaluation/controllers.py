"""What the evaluation harness runs: controllers (`reasonact.envs.Controller`) and three reference ones.

A controller maps one `reasonact.envs.EnvObservation` (numpy images, state, instruction) to one
action (d,) or an action chunk (H, d), and is reset when an episode starts; it is not the VLA's
`reasonact.vla.contract.BasePolicy` (batched tensors), which a controller may wrap. The harness
gives every sub-env its own controller, so per-episode memory (the PushT expert's, a learned
policy's action queue or history) never mixes between episodes running side by side.

A controller that needs privileged simulator state (scripted experts) sets `privileged = True`;
the harness then builds its envs with `EnvConfig.privileged` and the observation carries it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np

from reasonact.envs import Controller, EnvObservation, make_expert, simulator_of

ControllerFactory = Callable[[str], Controller]  # task name → a fresh controller for that task


class ExpertController:
    """The task's scripted expert (an upper bound for learned policies)."""

    reads_images = False  # never reads obs["images"]: the rollout renders no frames for it

    privileged = True

    def __init__(self, task: str) -> None:
        self.expert = make_expert(task)

    def reset(self) -> None:
        self.expert.reset()

    def act(self, obs: EnvObservation) -> np.ndarray:
        return self.expert.act(obs)


class RandomController:
    """Uniform random actions in [low, high] (a lower bound)."""

    reads_images = False  # never reads obs["images"]: the rollout renders no frames for it

    def __init__(self, low: np.ndarray, high: np.ndarray, seed: int = 0) -> None:
        self.low, self.high, self.rng = np.asarray(low), np.asarray(high), np.random.default_rng(seed)

    def reset(self) -> None:
        """Memoryless."""

    def act(self, obs: EnvObservation) -> np.ndarray:
        return self.rng.uniform(self.low, self.high).astype(np.float32)


class ConstantController:
    """Always the same action chunk (tests chunk execution)."""

    reads_images = False  # never reads obs["images"]: the rollout renders no frames for it

    def __init__(self, chunk: np.ndarray) -> None:
        self.chunk = np.asarray(chunk, dtype=np.float32)

    def reset(self) -> None:
        """Memoryless."""

    def act(self, obs: EnvObservation) -> np.ndarray:
        return self.chunk


def resolve_controller(spec: str, seed: int = 0) -> ControllerFactory:
    """ "expert", "random", or "package.module:factory" (a callable task → Controller) → factory."""
    if spec == "expert":
        return ExpertController
    if spec == "random":

        def random_factory(task: str) -> Controller:
            sim = simulator_of(task)
            return RandomController(np.asarray(sim.action_low), np.asarray(sim.action_high), seed)

        return random_factory
    if ":" not in spec:
        raise ValueError(f"policy: expected 'expert', 'random' or 'module:factory', received {spec!r}")
    module, name = spec.split(":", 1)
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"policy: cannot import {spec!r} ({err})") from err
    return factory
