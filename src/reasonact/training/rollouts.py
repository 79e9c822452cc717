"""Whole solutions sampled through a search backend (GRPO groups, STaR samples, evaluation).

`sample_rollouts`: a rollout starts at the question, asks the backend for `n` first steps, then one
next step per unfinished rollout per call until each writes `Answer: …`, fails (empty, cut, prompt
too long) or reaches `max_steps`. It is the same `Backend.generate_steps` the searches use, so the
prefix-KV store and batching serve training too.

`sample_solutions`: the same rollouts decoded in one call per batch of rows (`HFBackend.generate_until`
with `SolutionEnd`, the rules above applied token by token), as TRL generates completions: one
prefill, one KV cache per row, no re-encoding of the text between steps. At T = 0 both give the
same rollouts (tested); at T > 0 they draw different uniforms, so different samples.

Every rollout keeps its generated token ids and their log-probs (π_old in GRPO) and where each step
ends (for process rewards).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from reasonact.reasoning.backends.base import Backend, Generation, cut_at_stop
from reasonact.reasoning.backends.hf import HFBackend
from reasonact.reasoning.mdp import STEP_BOUNDARY, State, render
from reasonact.reasoning.tasks.base import Problem, Task, answer_of


@dataclass
class Rollout:
    problem: Problem
    steps: list[str] = field(default_factory=list)  # generated steps as written (without the boundary)
    token_ids: list[int] = field(default_factory=list)  # every generated token, boundaries included
    logprobs: list[float] = field(default_factory=list)  # log π_old(token) at temperature 1, per token
    step_ends: list[int] = field(default_factory=list)  # len(token_ids) after each step
    failure: str | None = None  # why it stopped early (empty / length / too_long / max_steps / eos)

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


class SolutionEnd:
    """Where a whole solution decoded in one call stops, the rules of `sample_rollouts`: at the end of
    sequence, at the boundary closing an empty step, an `Answer: …` line or the `max_steps`-th step,
    or when a step reaches `max_step_tokens` tokens without a boundary. Called once per decoded token
    of every row."""

    def __init__(self, backend: HFBackend, rows: int, max_steps: int, max_step_tokens: int) -> None:
        self.backend, self.max_steps, self.max_step_tokens = backend, max_steps, max_step_tokens
        self.line = [[] for _ in range(rows)]  # token ids of each row's current step
        self.steps = [0] * rows  # steps each row has closed

    def __call__(self, token: torch.Tensor) -> torch.Tensor:  # (R,) → (R,) bool
        boundary = self.backend.ends_step(token, STEP_BOUNDARY).tolist()
        eos = (token == self.backend.eos_id).tolist()
        ended = [False] * len(boundary)
        for r, t in enumerate(token.tolist()):
            self.line[r].append(t)
            if eos[r]:
                ended[r] = True
            elif boundary[r]:
                decoded = self.backend.tokenizer.decode(self.line[r], skip_special_tokens=True)
                text, _ = cut_at_stop(decoded, STEP_BOUNDARY)
                self.steps[r] += 1
                self.line[r] = []
                ended[r] = not text.strip() or answer_of(text) is not None or self.steps[r] >= self.max_steps
            else:
                ended[r] = len(self.line[r]) >= self.max_step_tokens
        return torch.tensor(ended)


def sample_solutions(
    backend: HFBackend,
    problems: Sequence[Problem],
    n: int,
    max_steps: int = 8,
    max_step_tokens: int = 24,
    temperature: float = 1.0,
    seed: int = 0,
) -> list[list[Rollout]]:
    """`n` solutions per problem, each decoded in one pass → [problem][sample] (see the module doc)."""

    def ends(rows: int) -> SolutionEnd:
        return SolutionEnd(backend, rows, max_steps, max_step_tokens)

    prompts = [render(p, header=backend.header) for p in problems]
    generations = backend.generate_until(prompts, n, max_steps * max_step_tokens, ends, temperature, seed)
    rollouts = [[Rollout(p) for _ in range(n)] for p in problems]
    for group, row in zip(rollouts, generations, strict=True):
        for rollout, g in zip(group, row, strict=True):
            for step in split_steps(backend, g):
                extend(rollout, step, max_steps)
            if not rollout.done:  # the end of sequence after a step that is not an answer
                rollout.failure = "eos"
    return rollouts


def split_steps(backend: HFBackend, whole: Generation) -> list[Generation]:
    """One solution's generation → one `Generation` per step, as step-by-step sampling returns them."""
    if whole.finish == "too_long":
        return [whole]
    ends = backend.ends_step(torch.tensor(whole.token_ids), STEP_BOUNDARY).tolist()
    steps, start = [], 0
    for i, token in enumerate(whole.token_ids):
        last = i == len(whole.token_ids) - 1
        if not (ends[i] or token == backend.eos_id or last):
            continue
        ids = whole.token_ids[start : i + 1]
        text, stopped = cut_at_stop(backend.tokenizer.decode(ids, skip_special_tokens=True), STEP_BOUNDARY)
        finish = "stop" if stopped else "eos" if token == backend.eos_id else "length"
        steps.append(Generation(text, ids, whole.logprobs[start : i + 1], finish))
        start = i + 1
    return steps


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
