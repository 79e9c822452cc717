"""The text-environment contract the agents act on: roles, observations and actions as text.

An environment has one role per agent (one for single-agent tasks). `reset(seed)` starts an
episode and returns each role's first observation; `step(role, action)` applies one extrinsic
action, given as text the environment parsed with `parse_action` (None: not an action here, an
error observation for the agent). `success` is the outcome the study counts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    observation: str  # what the acting role sees next
    done: bool  # the episode ended (success or not)
    success: bool = False  # the goal was reached


class TextEnv(ABC):
    name: str
    roles: tuple[str, ...] = ("agent",)
    tools: tuple[str, ...] = ()  # tools that help here (calculator, python)
    max_steps: int = 10  # extrinsic steps per role before the episode is cut
    action_forms: str = ""  # the actions in a few words, repeated in error observations

    @abstractmethod
    def reset(self, seed: int) -> dict[str, str]:
        """Start the episode of `seed`; the first observation of every role."""

    @abstractmethod
    def task(self, role: str) -> str:
        """The goal as `role` is told it."""

    @abstractmethod
    def instructions(self, role: str) -> str:
        """Rules and the action forms `role` may write."""

    @abstractmethod
    def parse_action(self, text: str) -> str | None:
        """The canonical action in `text`, or None if it is not one."""

    @abstractmethod
    def step(self, role: str, action: str) -> Step:
        """Apply a parsed action of `role`."""
