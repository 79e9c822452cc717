"""Critics of the propose–critique loop (O1-Journey §4, "reasoning tree construction").

A critic reads the state a proposed step leads to and answers with one of four actions:

* `continue`  — the step is sound; the policy goes on from it;
* `reflect`   — the step is wrong and the critic can say why (a reflection the journey keeps);
* `backtrack` — the step is unusable (no reason to give: a failed generation, a low PRM score);
* `terminate` — the step is a correct final answer: the search stops.

Three critics fill the slot, as the issue asks: the task's step checker (exact, with reasons), a
step scorer (a PRM; the oracle scorer until learned PRMs exist) with a threshold, and an LM asked
for a verdict in words (its unparseable replies are counted and treated as `continue`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from reasonact.reasoning.backends.base import Backend
from reasonact.reasoning.mdp import State
from reasonact.reasoning.scorers import StepScorer
from reasonact.reasoning.tasks.base import Task

Action = Literal["continue", "backtrack", "reflect", "terminate"]
ACTIONS: tuple[Action, ...] = get_args(Action)


@dataclass(frozen=True)
class Verdict:
    action: Action  # what the loop does next
    reason: str = ""  # why (the reflection text for `reflect`)

    @property
    def accepts(self) -> bool:
        return self.action in ("continue", "terminate")


def short_reason(reason: str) -> str:
    """The checker's reason up to its first detail ("unparseable: …" → "unparseable"), one line."""
    return " ".join(reason.split(":")[0].split()) if reason.startswith(("unparseable", "no progress")) else reason


class Critic(ABC):
    @abstractmethod
    def judge(self, states: list[State]) -> list[Verdict]:
        """A verdict on the last step of each state."""


class CheckerCritic(Critic):
    """The task's step checker: exact verdicts with the checker's reason as reflection."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def judge(self, states: list[State]) -> list[Verdict]:
        out = []
        for s in states:
            check = self.task.check_steps(s.problem, s.steps)[-1]
            if check.correct:
                out.append(Verdict("terminate" if s.terminal else "continue"))
            else:
                out.append(Verdict("reflect", short_reason(check.reason)))
        return out


class ScorerCritic(Critic):
    """A PRM (any `StepScorer`): continue at or above `threshold`, else backtrack."""

    def __init__(self, scorer: StepScorer, threshold: float = 0.5) -> None:
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold: expected a score in [0, 1], received {threshold}")
        self.scorer, self.threshold = scorer, threshold

    def judge(self, states: list[State]) -> list[Verdict]:
        out = []
        for s, scores in zip(states, self.scorer.score(states), strict=True):
            if scores[-1] >= self.threshold:
                out.append(Verdict("terminate" if s.terminal else "continue"))
            else:
                out.append(Verdict("backtrack", f"scored {scores[-1]:.2f}"))
        return out


LM_PROMPT = "{state}Is the last step right? Reply continue, backtrack, reflect or terminate.\nCritic:"


class LMCritic(Critic):
    """An LM agent asked for a verdict in words (greedy); the first action word in its reply wins."""

    def __init__(self, backend: Backend, max_new_tokens: int = 16) -> None:
        self.backend, self.max_new_tokens = backend, max_new_tokens
        self.unparsed = 0  # replies without an action word (treated as `continue`)

    def judge(self, states: list[State]) -> list[Verdict]:
        prompts = [LM_PROMPT.format(state=s.prompt(self.backend.header)) for s in states]
        replies = self.backend.generate_texts(prompts, 1, self.max_new_tokens, temperature=0.0)
        out = []
        for (reply,) in replies:
            words = [w.strip(".,:;!").lower() for w in reply.text.split()]
            action = next((w for w in words if w in ACTIONS), None)
            if action is None:
                self.unparsed += 1
            out.append(Verdict(action or "continue", reply.text.strip()))  # type: ignore[arg-type]
        return out


def make_critic(kind: str, family: str, difficulty: str, backend: Backend, threshold: float = 0.5) -> Critic:
    """The critic agent by name: "checker" (the step checker), "lm" (`backend` asked in words), or a
    step scorer for `ScorerCritic` — "oracle", "outcome" or a trained PRM directory, as in search."""
    from reasonact.reasoning.study import make_scorer
    from reasonact.reasoning.tasks import make_task

    if kind == "checker":
        return CheckerCritic(make_task(family, difficulty))
    if kind == "lm":
        return LMCritic(backend)
    if kind not in ("oracle", "outcome") and not Path(kind).is_dir():
        raise ValueError(f"critic: expected 'checker', 'lm', 'oracle', 'outcome' or a PRM directory, received {kind!r}")
    return ScorerCritic(make_scorer(kind, family, difficulty), threshold)


REFLECT = "Wait:"  # starts a reflection line: the previous step is withdrawn


def reflection(verdict: Verdict) -> str:
    """The line a journey writes after a wrong step: why it fails, then back one step."""
    return f"{REFLECT} {verdict.reason or 'this step does not work'}."
