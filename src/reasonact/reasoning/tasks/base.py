"""The task contract: problems with reference solutions split into steps, a step checker, and the
judge and voting key of final answers.

A `Problem` carries its question, gold answer (as reasoning-gym writes it) and reference steps
(the last is always `Answer: …`). A `Task` is one reasoning-gym generator at one difficulty: it
draws problems for a split, writes their reference steps (`solve`), and judges any step sequence a
model writes, step by step: `check_steps` says, for each step, whether the solution is still on a
path to the right answer (the ground truth PRMs are evaluated against, as ProcessBench's
earliest-wrong-step labels). Final answers are judged by reasoning-gym's own `score_answer`
(`check_answer`): an answer is a value in the family's answer format, never an expression that
happens to evaluate to it. `answer_key` groups answers for majority voting.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar, Literal

from reasonact.reasoning.tasks.expressions import ExpressionError

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")
ANSWER_PREFIX = "Answer:"
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def split_seed(split: str, seed: int) -> int:
    """Disjoint generator seeds per split: evaluation never draws from training seeds."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, received {split!r}")
    return 1_000_003 * SPLITS.index(split) + seed


@dataclass(frozen=True)
class Problem:
    family: str  # task family, e.g. "arithmetic"
    uid: str  # f"{family}/{split}/{seed}/{index}" (generated) or f"{file}:{line}" (from a file): unique
    question: str  # one line: newlines in generator output are folded to spaces
    answer: str  # gold final answer as reasoning-gym writes it (what its score_answer compares with)
    steps: tuple[str, ...]  # reference solution, one reasoning step per entry, last = "Answer: …"
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)  # generator metadata (JSON)


@dataclass(frozen=True)
class StepCheck:
    correct: bool  # the solution is still on a path to the gold answer after this step
    reason: str = ""  # why not (unparseable, wrong arithmetic, value changed, …)


def answer_of(step: str) -> str | None:
    """The final answer if `step` is an answer step (`Answer: …`), else None."""
    step = step.strip()
    return step[len(ANSWER_PREFIX) :].strip() if step.startswith(ANSWER_PREFIX) else None


@cache
def gym_dataset(generator: str):  # a reasoning_gym ProceduralDataset (imported lazily)
    """One instance of reasoning-gym's `generator`, for its `score_answer`."""
    import reasoning_gym

    return reasoning_gym.create_dataset(generator, size=1, seed=0)


class Task(ABC):
    """A family of problems with checkable steps (one reasoning-gym generator at one difficulty)."""

    family: str
    generator: ClassVar[str]  # reasoning-gym dataset name, e.g. "basic_arithmetic"
    LEVELS: ClassVar[dict[str, dict[str, Any]]] = {"default": {}}  # named difficulties → field overrides

    def options(self) -> dict[str, Any]:
        """reasoning-gym config of this difficulty (keyword arguments of `create_dataset`)."""
        return {}

    @abstractmethod
    def solve(self, entry: dict[str, Any]) -> tuple[str, ...]:
        """Reference steps of a reasoning-gym entry, ending with `Answer: …`; raises
        `ExpressionError` when the entry cannot be split into checkable steps."""

    @abstractmethod
    def check_step(self, problem: Problem, previous: tuple[str, ...], step: str) -> StepCheck:
        """Judge a non-answer step given the steps before it (all assumed correct)."""

    def generate(self, split: Split, n: int, seed: int = 0) -> list[Problem]:
        """`n` problems of `split`, reproducible from `seed`."""
        return gym_problems(self, split, n, seed)

    def check_answer(self, problem: Problem, answer: str) -> bool:
        """reasoning-gym's `score_answer` gives full marks (its partial credit counts as wrong), or
        the answer is the gold text itself (gsm_symbolic's scorer reads "-1" as 1)."""
        if answer.strip() == problem.answer:
            return True
        entry = {"question": problem.question, "answer": problem.answer, "metadata": problem.metadata}
        return gym_dataset(self.generator).score_answer(answer, entry) >= 1.0

    def answer_key(self, answer: str) -> str:
        """Answers that vote together in majority voting: the same number ("6", "6.0"), else the
        same text up to whitespace."""
        text = " ".join(answer.split())
        if _NUMBER.fullmatch(text):
            value = float(text)
            return str(int(value)) if value.is_integer() else repr(value)
        return text

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
    """Newlines and runs of spaces → single spaces."""
    return " ".join(text.split())


def problem_of(task: Task, entry: dict[str, Any], uid: str) -> Problem:
    """A reasoning-gym entry as a `Problem` with the task's reference steps (raises
    `ExpressionError` when the task cannot split it into checkable steps)."""
    steps = task.solve(entry)
    metadata = {k: v for k, v in entry["metadata"].items() if k != "difficulty"}
    return Problem(task.family, uid, one_line(entry["question"]), str(entry["answer"]), steps, metadata)


def gym_problems(task: Task, split: Split, n: int, seed: int) -> list[Problem]:
    """Draw from the task's reasoning-gym generator until `n` entries have a step solution.

    Entries the solver cannot split into checkable steps (e.g. a non-integer intermediate value in
    countdown) are skipped, so the family stays exactly checkable."""
    import reasoning_gym

    if n < 0:
        raise ValueError(f"n: expected a number of problems >= 0, received {n}")
    problems: list[Problem] = []
    size = max(8, 2 * n)
    dataset = reasoning_gym.create_dataset(task.generator, size=size, seed=split_seed(split, seed), **task.options())
    for index in range(size):
        if len(problems) == n:
            break
        try:
            problems.append(problem_of(task, dataset[index], f"{task.family}/{split}/{seed}/{index}"))
        except ExpressionError:
            continue
    if len(problems) < n:
        raise ValueError(f"n: {task.generator} yielded only {len(problems)} solvable problems of {size}, asked for {n}")
    return problems
