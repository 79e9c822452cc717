"""Arithmetic expressions (reasoning-gym `basic_arithmetic`), solved one operation per step.

Default difficulty = reasoning-gym's: 2-6 terms of up to 4 digits, + - * /, parentheses and
negated numbers.

Reference solution of `Calculate 3 + 4 * 2 - 5.`::

    3 + 8 - 5
    11 - 5
    6
    Answer: 6

A step is correct when it is an expression with fewer operations than the one before and still
has the question's value (so it is a valid partial evaluation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from reasonact.reasoning.tasks.base import ANSWER_PREFIX, Problem, StepCheck, Task
from reasonact.reasoning.tasks.expressions import (
    ExpressionError,
    count_operations,
    evaluate,
    format_number,
    parse,
    reduce_once,
    unparse,
)


def reduction_steps(expression: str, answer: str) -> tuple[str, ...]:
    """Steps evaluating `expression` one operation at a time, then `Answer: answer`; raises
    `ExpressionError` if the reductions do not end at `answer`."""
    node = parse(expression)
    steps = []
    while True:
        node, op, value = reduce_once(node)
        if value is None:
            break
        if op is None and steps:  # a collapsed double negation (`--12` → `12`) is part of the last step
            steps[-1] = unparse(node)
        else:
            steps.append(unparse(node))
    value = format_number(evaluate(node))
    if value != answer:
        raise ExpressionError(f"{expression!r} reduces to {value}, the generator says {answer}")
    if not steps:
        steps.append(value)
    return (*steps, f"{ANSWER_PREFIX} {answer}")


@dataclass(frozen=True)
class ArithmeticTask(Task):
    min_terms: int = 2  # numbers per expression, lower bound (reasoning-gym default)
    max_terms: int = 6  # numbers per expression, upper bound (reasoning-gym default)
    max_digits: int = 4  # digits per number, upper bound (reasoning-gym default)
    operators: tuple[str, ...] = ("+", "-", "*", "/")  # allowed operators (reasoning-gym default)
    parentheses: bool = True  # allow parentheses and negated numbers (reasoning-gym default)
    family: str = "arithmetic"
    generator: ClassVar[str] = "basic_arithmetic"
    # "easy": the level the shipped tiny policy was trained at (3-4 one-digit terms, + - * only)
    LEVELS: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {},
        "easy": dict(min_terms=3, max_terms=4, max_digits=1, operators=("+", "-", "*"), parentheses=False),
    }

    def options(self) -> dict[str, Any]:
        return dict(
            min_terms=self.min_terms,
            max_terms=self.max_terms,
            min_digits=1,
            max_digits=self.max_digits,
            operators=self.operators,
            allow_parentheses=self.parentheses,
            allow_negation=self.parentheses,
        )

    def solve(self, entry: dict[str, Any]) -> tuple[str, ...]:
        return reduction_steps(entry["metadata"]["expression"], str(entry["answer"]))

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
