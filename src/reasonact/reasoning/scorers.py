"""Step scorers: `score(states) -> per-step scores`, the verifier slot of every search method.

`OracleScorer` labels each step with the task's step checker (1 = still on a path to the gold
answer, 0 = not): the ground truth a learned PRM approximates (Lightman et al. 2023, "Let's
Verify Step by Step"; Math-Shepherd's hard labels). `OutcomeScorer` judges only the final answer
(an outcome reward model with perfect accuracy). Learned PRMs implement the same interface.
Per-step scores are reduced to one number per path by `aggregate` (last / min / prod, as in
Snell et al. 2024 and search-and-learn).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

from reasonact.reasoning.mdp import State
from reasonact.reasoning.tasks.base import Task

Aggregation = Literal["last", "min", "prod"]


class StepScorer(ABC):
    @abstractmethod
    def score(self, states: Sequence[State]) -> list[list[float]]:
        """One score in [0, 1] per step of each state → [state][step]."""


class OracleScorer(StepScorer):
    """Exact step labels from the task's step checker."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def score(self, states: Sequence[State]) -> list[list[float]]:
        return [[float(c.correct) for c in self.task.check_steps(s.problem, s.steps)] for s in states]


class OutcomeScorer(StepScorer):
    """1/0 on the final answer step; unfinished steps score 1 (not judged)."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def score(self, states: Sequence[State]) -> list[list[float]]:
        out = []
        for s in states:
            scores = [1.0] * len(s.steps)
            if s.answer is not None:
                scores[-1] = float(self.task.check_answer(s.problem, s.answer))
            out.append(scores)
        return out


def aggregate(scores: Sequence[float], how: Aggregation) -> float:
    """One path score from per-step scores; an empty path scores 0."""
    if not scores:
        return 0.0
    if how == "last":
        return float(scores[-1])
    if how == "min":
        return float(min(scores))
    if how == "prod":
        return float(math.prod(scores))
    raise ValueError(f"how: expected 'last', 'min' or 'prod', received {how!r}")
