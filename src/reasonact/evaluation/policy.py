"""The policy contract the evaluation harness runs, and three reference policies.

A policy maps one observation (`reasonact.envs.Observation`: images, state, instruction) to
either one action (d,) or an action chunk (H, d). The harness owns the chunk queue: it executes
`EvalConfig.execute_steps` actions of a chunk (all of it when 0) before asking again, so a
chunked policy (π0, FAST) and a per-step policy plug in the same way. `reset()` is called when
an episode starts; a policy instance may serve several vectorised sub-envs, so per-episode
memory beyond the chunk queue is not supported.

A policy that needs privileged simulator state (scripted experts) sets `privileged = True`; the
harness then builds its envs with `EnvConfig.privileged` and the observation carries it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from reasonact.envs import Observation, make_expert


@runtime_checkable
class Policy(Protocol):
    def reset(self) -> None: ...
    def act(self, obs: Observation) -> np.ndarray: ...  # (d,) one action or (H, d) an action chunk


PolicyFactory = Callable[[str], Policy]  # task name → policy for that task


class ExpertPolicy:
    """The task's scripted expert (an upper bound for learned policies)."""

    privileged = True

    def __init__(self, task: str) -> None:
        self.expert = make_expert(task)

    def reset(self) -> None:
        self.expert.reset()

    def act(self, obs: Observation) -> np.ndarray:
        return self.expert.act(obs)


class RandomPolicy:
    """Uniform random actions in [low, high] (a lower bound)."""

    def __init__(self, low: np.ndarray, high: np.ndarray, seed: int = 0) -> None:
        self.low, self.high, self.rng = np.asarray(low), np.asarray(high), np.random.default_rng(seed)

    def reset(self) -> None:
        """Memoryless."""

    def act(self, obs: Observation) -> np.ndarray:
        return self.rng.uniform(self.low, self.high).astype(np.float32)


class ConstantPolicy:
    """Always the same action chunk (tests chunk execution)."""

    def __init__(self, chunk: np.ndarray) -> None:
        self.chunk = np.asarray(chunk, dtype=np.float32)

    def reset(self) -> None:
        """Memoryless."""

    def act(self, obs: Observation) -> np.ndarray:
        return self.chunk


def resolve_policy(spec: str, seed: int = 0) -> PolicyFactory:
    """ "expert", "random", or "package.module:factory" (a callable task → Policy) → factory."""
    if spec == "expert":
        return ExpertPolicy
    if spec == "random":
        from reasonact.envs import make_env

        def random_factory(task: str) -> Policy:
            env = make_env(task, image_size=0)
            space = env.action_space
            env.close()
            return RandomPolicy(space.low, space.high, seed)

        return random_factory
    if ":" not in spec:
        raise ValueError(f"policy: expected 'expert', 'random' or 'module:factory', received {spec!r}")
    module, name = spec.split(":", 1)
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"policy: cannot import {spec!r} ({err})") from err
    return factory
