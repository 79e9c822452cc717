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


GENERATORS: dict[str, str] = {cls.generator: family for family, cls in TASKS.items()}  # reasoning-gym → family


def make_task(family: str, difficulty: str = "default") -> Task:
    """The task of `family` at a named difficulty ("default": reasoning-gym's own defaults)."""
    if family not in TASKS:
        raise ValueError(f"family: expected one of {sorted(TASKS)}, received {family!r}")
    levels = TASKS[family].LEVELS
    if difficulty not in levels:
        raise ValueError(f"difficulty: expected one of {sorted(levels)} for {family}, received {difficulty!r}")
    return TASKS[family](**levels[difficulty])


__all__ = [
    "ANSWER_PREFIX",
    "GENERATORS",
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
