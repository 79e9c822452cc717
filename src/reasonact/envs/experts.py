"""Scripted experts acting from privileged state, with noise and perturbation options.

MetaWorld ships a hand-written state-machine policy for each of its 50 v3 tasks
(`metaworld.policies`); PushT and LIBERO ship none, so `reasonact.envs.pusht_expert` and
`reasonact.envs.libero_experts` are ours. All are closed-loop, so the perturbations below are
recovered from: that is what makes noisy demonstrations useful (DART-style noise injection, Laskey et al. 2017).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from reasonact.checks import check_range
from reasonact.envs.rollout import Controller
from reasonact.envs.spec import EnvObservation


@dataclass(frozen=True)
class ExpertNoise:
    """Perturbations applied to the expert's actions (the recorded action is the executed one)."""

    action_std: float = 0.0  # std of Gaussian noise added to every action (action units, range [-1, 1])
    burst_prob: float = 0.0  # per-step probability of starting a burst of random actions
    burst_steps: int = 5  # length of each random-action burst

    def __post_init__(self) -> None:
        check_range(self.action_std, "action_std", 0.0, 1.0)
        check_range(self.burst_prob, "burst_prob", 0.0, 1.0)
        check_range(self.burst_steps, "burst_steps", low=1)


class Expert(Controller, Protocol):
    """A scripted controller returning one action (d,); needs `obs["privileged"]` (an env with `privileged=True`)."""


class NoisyExpert:
    """Wraps an expert's clean actions with `ExpertNoise`, clipped to [low, high]."""

    reads_images = False  # never reads obs["images"]: the rollout renders no frames for it

    def __init__(self, expert: Expert, noise: ExpertNoise, low: np.ndarray, high: np.ndarray, seed: int = 0) -> None:
        self.expert, self.noise, self.low, self.high = expert, noise, low, high
        self.rng = np.random.default_rng(seed)
        self._burst = 0

    def reset(self) -> None:
        self.expert.reset()
        self._burst = 0

    def act(self, obs: EnvObservation) -> np.ndarray:
        action = np.asarray(self.expert.act(obs), dtype=np.float64)
        span = (self.high - self.low) / 2
        if self._burst == 0 and self.rng.random() < self.noise.burst_prob:
            self._burst = self.noise.burst_steps
        if self._burst > 0:
            self._burst -= 1
            action = self.rng.uniform(self.low, self.high)
        elif self.noise.action_std > 0:
            action = action + self.rng.normal(0.0, self.noise.action_std, action.shape) * span
        return np.clip(action, self.low, self.high).astype(np.float32)


class MetaWorldExpert:
    """MetaWorld's scripted policy for one task, reading the 39-dim privileged observation."""

    reads_images = False  # never reads obs["images"]: the rollout renders no frames for it

    def __init__(self, task: str) -> None:
        from metaworld.policies import ENV_POLICY_MAP

        self.policy = ENV_POLICY_MAP[task]()

    def reset(self) -> None:
        """MetaWorld's policies are memoryless."""

    def act(self, obs: EnvObservation) -> np.ndarray:
        if "privileged" not in obs:
            raise ValueError("obs: the MetaWorld expert needs obs['privileged']; build the env with privileged=True")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Constant(s) may be too high": the env clips, as we do
            return np.clip(self.policy.get_action(obs["privileged"]), -1.0, 1.0).astype(np.float32)
