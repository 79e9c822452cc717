"""Whole solutions sampled step by step through a search backend (GRPO groups, STaR samples, evaluation).

A rollout starts at the question, asks the backend for `n` first steps, then one next step per
unfinished rollout per call until each writes `Answer: …`, fails (empty, cut, prompt too long) or
reaches `max_steps`. It is the same `Backend.generate_steps` the searches use, so the prefix-KV
store and batching serve training too. Every rollout keeps its generated token ids and their
log-probs (π_old in GRPO) and where each step ends (for process rewards).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reasonact.reasoning.backends.base import Backend
from reasonact.reasoning.mdp import State
from reasonact.reasoning.tasks.base import Problem, Task


@dataclass
class Rollout:
    problem: Problem
    steps: list[str] = field(default_factory=list)  # generated steps as written (without the boundary)
    token_ids: list[int] = field(default_factory=list)  # every generated token, boundaries included
    logprobs: list[float] = field(default_factory=list)  # log π_old(token) at temperature 1, per token
    step_ends: list[int] = field(default_factory=list)  # len(token_ids) after each step
    failure: str | None = None  # why it stopped early (empty / length / too_long / max_steps)

    @property
    def state(self) -> State:
        return State(self.problem, tuple(self.steps))

    @property
    def answer(self) -> str | None:
        return self.state.answer if self.steps else None

    @property
    def done(self) -> bool:
        return self.failure is not None or self.answer is not None

    def correct(self, task: Task) -> bool:
        return self.failure is None and self.answer is not None and task.check_answer(self.problem, self.answer)


def sample_rollouts(
    backend: Backend,
    problems: Sequence[Problem],
    n: int,
    max_steps: int = 8,
    max_step_tokens: int = 24,
    temperature: float = 1.0,
    seed: int = 0,
) -> list[list[Rollout]]:
    """`n` solutions per problem → [problem][sample]."""
    rollouts = [[Rollout(p) for _ in range(n)] for p in problems]
    first = backend.generate_steps([State(p) for p in problems], n, max_step_tokens, temperature, seed)
    for group, generations in zip(rollouts, first, strict=True):
        for rollout, g in zip(group, generations, strict=True):
            extend(rollout, g, max_steps)
    depth = 1
    while live := [r for group in rollouts for r in group if not r.done]:
        call_seed = seed * 1_009 + depth  # a fresh stream per depth; rows are indexed within the call
        generations = backend.generate_steps([r.state for r in live], 1, max_step_tokens, temperature, call_seed)
        for rollout, (g,) in zip(live, generations, strict=True):
            extend(rollout, g, max_steps)
        depth += 1
    return rollouts


def extend(rollout: Rollout, generation, max_steps: int) -> None:
    """Append one generated step (or record why the rollout ends)."""
    rollout.token_ids += generation.token_ids
    rollout.logprobs += generation.logprobs
    rollout.step_ends.append(len(rollout.token_ids))
    rollout.steps.append(generation.text)  # unstripped: the next prompt must hold exactly these tokens
    if generation.failure is not None:
        rollout.failure = generation.failure
    elif rollout.answer is None and len(rollout.steps) >= max_steps:
        rollout.failure = "max_steps"


def accuracy(
    backend: Backend, task: Task, problems: Sequence[Problem], max_steps: int = 8, max_step_tokens: int = 24
) -> tuple[float, list[Rollout]]:
    """Greedy (T = 0) held-out accuracy → (fraction correct, the rollouts)."""
    rollouts = [group[0] for group in sample_rollouts(backend, problems, 1, max_steps, max_step_tokens, 0.0)]
    return sum(r.correct(task) for r in rollouts) / len(rollouts), rollouts
