"""The task contract: problems with reference solutions split into steps, and a step checker.

A `Problem` carries its question, gold answer and reference steps (the last is always
`Answer: …`). A `Task` generates problems for a split and judges any step sequence a model
writes, step by step: `check_steps` says, for each step, whether the solution is still on a
path to the right answer (the ground truth PRMs are evaluated against, as ProcessBench's
earliest-wrong-step labels), and `check_answer` judges the outcome.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")
ANSWER_PREFIX = "Answer:"


def split_seed(split: str, seed: int) -> int:
    """Disjoint generator seeds per split: evaluation never draws from training seeds."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, received {split!r}")
    return 1_000_003 * SPLITS.index(split) + seed


@dataclass(frozen=True)
class Problem:
    family: str  # task family, e.g. "arithmetic"
    uid: str  # f"{family}/{split}/{seed}/{index}": unique and reproducible
    question: str  # one line: newlines in generator output are folded to spaces
    answer: str  # gold final answer as text
    steps: tuple[str, ...]  # reference solution, one reasoning step per entry, last = "Answer: …"
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)  # generator metadata (JSON)


@dataclass(frozen=True)
class StepCheck:
    correct: bool  # the solution is still on a path to the gold answer after this step
    reason: str = ""  # why not (unparseable, wrong arithmetic, value changed, …)


def answer_of(step: str) -> str | None:
    """The final answer if `step` is an answer step, else None."""
    step = step.strip()
    return step[len(ANSWER_PREFIX) :].strip() if step.startswith(ANSWER_PREFIX) else None


class Task(ABC):
    """A family of problems with checkable steps."""

    family: str

    @abstractmethod
    def generate(self, split: Split, n: int, seed: int = 0) -> list[Problem]:
        """`n` problems of `split`, reproducible from `seed`."""

    @abstractmethod
    def check_step(self, problem: Problem, previous: tuple[str, ...], step: str) -> StepCheck:
        """Judge a non-answer step given the steps before it (all assumed correct)."""

    @abstractmethod
    def check_answer(self, problem: Problem, answer: str) -> bool:
        """Exact-match judgement of a final answer."""

    def check_steps(self, problem: Problem, steps: tuple[str, ...] | list[str]) -> list[StepCheck]:
        """Per-step labels: once a step is wrong, every later step is wrong too (the prefix failed)."""
        checks: list[StepCheck] = []
        for i, step in enumerate(steps):
            if checks and not checks[-1].correct:
                checks.append(StepCheck(False, "after an incorrect step"))
                continue
            answer = answer_of(step)
            if answer is not None:
                ok = self.check_answer(problem, answer)
                checks.append(StepCheck(ok, "" if ok else f"wrong answer {answer!r}"))
            elif not step.strip():
                checks.append(StepCheck(False, "empty step"))
            else:
                checks.append(self.check_step(problem, tuple(steps[:i]), step))
        return checks

    def first_error(self, problem: Problem, steps: tuple[str, ...] | list[str]) -> int:
        """Index of the earliest wrong step, -1 if none (ProcessBench's label)."""
        for i, check in enumerate(self.check_steps(problem, steps)):
            if not check.correct:
                return i
        return -1


def one_line(text: str) -> str:
    return " ".join(text.split())
