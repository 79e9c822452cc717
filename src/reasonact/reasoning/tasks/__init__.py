"""Problem families with reference solutions split into checkable steps."""

from __future__ import annotations

from reasonact.reasoning.tasks.arithmetic import ArithmeticTask
from reasonact.reasoning.tasks.base import ANSWER_PREFIX, SPLITS, Problem, StepCheck, Task, answer_of, split_seed
from reasonact.reasoning.tasks.countdown import CountdownTask
from reasonact.reasoning.tasks.equations import EquationsTask
from reasonact.reasoning.tasks.gsm import GsmTask

TASKS: dict[str, type[Task]] = {
    "arithmetic": ArithmeticTask,
    "equations": EquationsTask,
    "countdown": CountdownTask,
    "gsm": GsmTask,
}


def make_task(family: str) -> Task:
    """The task of `family` with its default difficulty."""
    if family not in TASKS:
        raise ValueError(f"family: expected one of {sorted(TASKS)}, received {family!r}")
    return TASKS[family]()


__all__ = [
    "ANSWER_PREFIX",
    "SPLITS",
    "TASKS",
    "ArithmeticTask",
    "CountdownTask",
    "EquationsTask",
    "GsmTask",
    "Problem",
    "StepCheck",
    "Task",
    "answer_of",
    "make_task",
    "split_seed",
]
