"""Linear equations in one variable (reasoning-gym `simple_equations`), solved by isolation.

Reference solution of `Solve for e: 56 - 98*e = -1218`::

    -98*e = -1274
    e = -1274 / -98
    e = 13
    Answer: 13

A step is correct when it is an equation in the variable, linear, with the gold solution."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from reasonact.reasoning.tasks.base import ANSWER_PREFIX, Problem, Split, StepCheck, Task
from reasonact.reasoning.tasks.expressions import ExpressionError, evaluate, format_number
from reasonact.reasoning.tasks.gym import gym_problems


def linear_form(equation: str, variable: str) -> tuple[Fraction, Fraction]:
    """`lhs = rhs` → (a, b) with lhs − rhs = a·x + b; refuses non-linear or malformed equations."""
    sides = equation.split("=")
    if len(sides) != 2:
        raise ExpressionError(f"expected one '=' in an equation, received {equation!r}")

    def residual(x: Fraction) -> Fraction:
        env = {variable: x}
        return evaluate(sides[0], env) - evaluate(sides[1], env)

    r0, r1, r2 = residual(Fraction(0)), residual(Fraction(1)), residual(Fraction(2))
    if r2 - 2 * r1 + r0 != 0:
        raise ExpressionError(f"not linear in {variable}: {equation!r}")
    return r1 - r0, r0


def solve_steps(equation: str, variable: str) -> tuple[str, tuple[str, ...]]:
    a, b = linear_form(equation, variable)
    if a == 0:
        raise ExpressionError(f"no unique solution: {equation!r}")
    solution = -b / a
    if solution.denominator != 1:
        raise ExpressionError(f"non-integer solution {solution}")
    answer = format_number(solution)
    steps = (
        f"{format_number(a)}*{variable} = {format_number(-b)}",
        f"{variable} = {format_number(-b)} / {format_number(a)}",
        f"{variable} = {answer}",
        f"{ANSWER_PREFIX} {answer}",
    )
    return answer, steps


@dataclass(frozen=True)
class EquationsTask(Task):
    max_terms: int = 3  # terms per equation, upper bound (reasoning-gym's max_terms)
    max_value: int = 20  # largest constant
    family: str = "equations"

    def generate(self, split: Split, n: int, seed: int = 0) -> list[Problem]:
        options = dict(min_terms=2, max_terms=self.max_terms, max_value=self.max_value)
        return gym_problems(self.family, "simple_equations", options, self._solve, split, n, seed)

    @staticmethod
    def _solve(entry: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
        return solve_steps(entry["metadata"]["equation"], entry["metadata"]["variable"])

    def check_step(self, problem: Problem, previous: tuple[str, ...], step: str) -> StepCheck:
        variable = problem.metadata["variable"]
        if variable not in step:
            return StepCheck(False, f"no variable {variable!r} in the step")
        try:
            a, b = linear_form(step, variable)
        except ExpressionError as err:
            return StepCheck(False, f"unparseable: {err}")
        if a == 0 or -b / a != Fraction(problem.answer):
            return StepCheck(False, "the step's equation has a different solution")
        return StepCheck(True)

    def check_answer(self, problem: Problem, answer: str) -> bool:
        try:
            return evaluate(answer.removeprefix(f"{problem.metadata['variable']} =")) == Fraction(problem.answer)
        except ExpressionError:
            return False
