"""Linear equations in one variable (reasoning-gym `simple_equations`), solved by isolation.

Reference solution of `Solve for e: 56 - 98*e = -1218`::

    -98*e = -1274
    e = -1274 / -98
    e = 13
    Answer: 13

A step is correct when it is an equation in the variable, linear, with the gold solution.
Default difficulty = reasoning-gym's (2-4 terms, constants up to 100)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

from reasonact.reasoning.tasks.base import ANSWER_PREFIX, Problem, StepCheck, Task, answer_of
from reasonact.reasoning.tasks.expressions import ExpressionError, evaluate, format_number


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


def solve_steps(equation: str, variable: str) -> tuple[str, ...]:
    """Isolate `variable`: `a*x = c`, `x = c / a`, `x = value`, `Answer: value`."""
    a, b = linear_form(equation, variable)
    if a == 0:
        raise ExpressionError(f"no unique solution: {equation!r}")
    solution = -b / a
    if solution.denominator != 1:
        raise ExpressionError(f"non-integer solution {solution}")
    answer = format_number(solution)
    return (
        f"{format_number(a)}*{variable} = {format_number(-b)}",
        f"{variable} = {format_number(-b)} / {format_number(a)}",
        f"{variable} = {answer}",
        f"{ANSWER_PREFIX} {answer}",
    )


@dataclass(frozen=True)
class EquationsTask(Task):
    max_terms: int = 4  # terms per equation, upper bound (reasoning-gym default)
    max_value: int = 100  # largest constant (reasoning-gym default)
    family: str = "equations"
    generator: ClassVar[str] = "simple_equations"
    LEVELS: ClassVar[dict[str, dict[str, Any]]] = {"default": {}, "easy": dict(max_terms=3, max_value=20)}

    def options(self) -> dict[str, Any]:
        return dict(min_terms=2, max_terms=self.max_terms, max_value=self.max_value)

    def solve(self, entry: dict[str, Any]) -> tuple[str, ...]:
        steps = solve_steps(entry["metadata"]["equation"], entry["metadata"]["variable"])
        if answer_of(steps[-1]) != str(entry["answer"]):
            raise ExpressionError(f"solved {steps[-1]!r}, the generator says {entry['answer']}")
        return steps

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
