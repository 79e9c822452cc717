"""Arithmetic expressions (reasoning-gym `basic_arithmetic`), solved one operation per step.

Reference solution of `Calculate 3 + 4 * 2 - 5.`::

    3 + 8 - 5
    11 - 5
    6
    Answer: 6

A step is correct when it is an expression with fewer operations than the one before and still
has the question's value (so it is a valid partial evaluation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reasonact.reasoning.tasks.base import ANSWER_PREFIX, Problem, Split, StepCheck, Task
from reasonact.reasoning.tasks.expressions import (
    ExpressionError,
    count_operations,
    evaluate,
    format_number,
    parse,
    reduce_once,
    unparse,
)
from reasonact.reasoning.tasks.gym import gym_problems


def reduction_steps(expression: str) -> tuple[str, tuple[str, ...]]:
    """(answer, steps) evaluating `expression` one operation at a time."""
    node = parse(expression)
    steps = []
    while True:
        node, _, value = reduce_once(node)
        if value is None:
            break
        steps.append(unparse(node))
    answer = format_number(evaluate(node))
    if not steps:
        steps.append(answer)
    return answer, (*steps, f"{ANSWER_PREFIX} {answer}")


@dataclass(frozen=True)
class ArithmeticTask(Task):
    min_terms: int = 3  # numbers per expression, lower bound
    max_terms: int = 4  # numbers per expression, upper bound
    max_digits: int = 1  # digits per number, upper bound
    operators: tuple[str, ...] = ("+", "-", "*")  # allowed operators
    parentheses: bool = False  # allow parentheses and negation (harder)
    family: str = "arithmetic"

    def generate(self, split: Split, n: int, seed: int = 0) -> list[Problem]:
        options = dict(
            min_terms=self.min_terms,
            max_terms=self.max_terms,
            min_digits=1,
            max_digits=self.max_digits,
            operators=self.operators,
            allow_parentheses=self.parentheses,
            allow_negation=self.parentheses,
        )
        return gym_problems(self.family, "basic_arithmetic", options, self._solve, split, n, seed)

    @staticmethod
    def _solve(entry: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
        return reduction_steps(entry["metadata"]["expression"])

    def check_step(self, problem: Problem, previous: tuple[str, ...], step: str) -> StepCheck:
        before = previous[-1] if previous else problem.metadata["expression"]
        try:
            value = evaluate(step)
            ops, ops_before = count_operations(step), count_operations(before)
        except ExpressionError as err:
            return StepCheck(False, f"unparseable: {err}")
        if ops >= ops_before and not (ops == 0 and ops_before == 0 and not previous):
            return StepCheck(False, f"no progress: {ops} operations left, {ops_before} before")
        if value != evaluate(problem.metadata["expression"]):
            return StepCheck(False, f"value changed to {format_number(value)}")
        return StepCheck(True)

    def check_answer(self, problem: Problem, answer: str) -> bool:
        try:
            return evaluate(answer) == evaluate(problem.answer)
        except ExpressionError:
            return False
