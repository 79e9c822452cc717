"""Countdown (reasoning-gym `countdown`): reach a target by combining numbers, one operation per step.

Reference solution for numbers 6, 61, 94, 4 and target 309::

    94 * 4 = 376
    376 - 61 = 315
    315 - 6 = 309
    Answer: 94*4 - 61 - 6

A step `a op b = c` is correct when a and b are still available, the arithmetic is right, and
the target is still reachable from all the numbers left (exhaustive search, memoised): every
given number must be used, as reasoning-gym's judge requires. Default difficulty =
reasoning-gym's (4-6 numbers up to 100, targets 100-999); a step leaves at most 5 numbers, so
the exhaustive check stays in milliseconds to a second."""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any, ClassVar

from reasonact.reasoning.tasks.base import ANSWER_PREFIX, Problem, StepCheck, Task
from reasonact.reasoning.tasks.expressions import ExpressionError, evaluate, format_number, parse, reduce_once

_INT = re.compile(r"\d+")
_STEP = re.compile(r"^\s*(-?\d+)\s*([-+*/])\s*(-?\d+)\s*=\s*(-?\d+)\s*$")


@lru_cache(maxsize=200_000)
def reachable(numbers: tuple[float, ...], target: float) -> bool:
    """Can `target` be made from *all* of `numbers` with + - * / (reasoning-gym's rule: every number
    is used once)? Exhaustive, memoised; floats compared within 1e-6 as reasoning-gym's judge does
    (`numbers` sorted)."""
    if len(numbers) == 1:
        return abs(numbers[0] - target) < 1e-6
    for i in range(len(numbers)):
        for j in range(i + 1, len(numbers)):
            a, b = numbers[i], numbers[j]
            rest = numbers[:i] + numbers[i + 1 : j] + numbers[j + 1 :]
            results = {a + b, a * b, a - b, b - a} | ({a / b} if b else set()) | ({b / a} if a else set())
            if any(reachable(tuple(sorted((*rest, r))), target) for r in results):
                return True
    return False


def remaining_numbers(numbers: list[int], steps: tuple[str, ...]) -> Counter[Fraction] | None:
    """Numbers left after applying `steps` (None if a step uses a number that is not there)."""
    pool = Counter(Fraction(x) for x in numbers)
    for step in steps:
        match = _STEP.match(step)
        if match is None:
            return None
        a, _, b, c = match.groups()
        for x in (Fraction(a), Fraction(b)):
            if pool[x] == 0:
                return None
            pool[x] -= 1
        pool[Fraction(c)] += 1
    return pool


def written_with(pool: Counter[Fraction], a: Fraction, symbol: str, b: Fraction) -> tuple[Fraction, str, Fraction]:
    """`a op b` over numbers in `pool`: a negated given number is written away (`-2 + 6` → `6 - 2`,
    `7 - -3` → `7 + 3`); raises `ExpressionError` when an operand is not in the pool."""
    if symbol == "+" and not pool[a] and pool[-a]:
        a, symbol, b = b, "-", -a
    if symbol in "+-" and not pool[b] and pool[-b]:
        symbol, b = "-" if symbol == "+" else "+", -b
    if not pool[a] or not pool[b] or (a == b and pool[a] < 2):
        raise ExpressionError(f"{format_number(a)} {symbol} {format_number(b)} uses a number not in {dict(pool)}")
    return a, symbol, b


def countdown_steps(expression: str, numbers: list[int]) -> tuple[str, ...]:
    """`a op b = c` steps evaluating `expression` over `numbers` one operation at a time."""
    pool = Counter(Fraction(x) for x in numbers)
    node = parse(expression)
    steps = []
    while True:
        node, op, value = reduce_once(node)
        if op is None or value is None:
            break
        symbol = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}[type(op.op)]
        left, symbol, right = written_with(pool, evaluate(op.left), symbol, evaluate(op.right))
        pool -= Counter([left, right])
        pool[value] += 1
        steps.append(f"{format_number(left)} {symbol} {format_number(right)} = {format_number(value)}")
    return tuple(steps)


@dataclass(frozen=True)
class CountdownTask(Task):
    min_numbers: int = 4  # numbers given, lower bound (reasoning-gym default)
    max_numbers: int = 6  # numbers given, upper bound (reasoning-gym default)
    max_value: int = 100  # largest given number (reasoning-gym default)
    min_target: int = 100  # smallest target (reasoning-gym default)
    max_target: int = 999  # largest target (reasoning-gym default)
    family: str = "countdown"
    generator: ClassVar[str] = "countdown"
    LEVELS: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {},
        "easy": dict(min_numbers=3, max_numbers=4, max_value=50, min_target=10, max_target=200),
    }

    def options(self) -> dict[str, Any]:
        return dict(
            min_numbers=self.min_numbers,
            max_numbers=self.max_numbers,
            max_value=self.max_value,
            min_target=self.min_target,
            max_target=self.max_target,
        )

    def solve(self, entry: dict[str, Any]) -> tuple[str, ...]:
        expression = entry["metadata"]["expression"]
        return (*countdown_steps(expression, entry["metadata"]["numbers"]), f"{ANSWER_PREFIX} {entry['answer']}")

    def check_step(self, problem: Problem, previous: tuple[str, ...], step: str) -> StepCheck:
        match = _STEP.match(step)
        if match is None:
            return StepCheck(False, "unparseable: expected 'a op b = c'")
        a, op, b, c = match.groups()
        try:
            if evaluate(f"{a} {op} ({b})") != Fraction(c):
                return StepCheck(False, "wrong arithmetic")
        except ExpressionError as err:
            return StepCheck(False, f"unparseable: {err}")
        pool = remaining_numbers(problem.metadata["numbers"], (*previous, step))
        if pool is None:
            return StepCheck(False, "uses a number that is not available")
        numbers = tuple(sorted(float(x) for x in pool.elements()))
        if not reachable(numbers, float(problem.metadata["target"])):
            return StepCheck(False, "target no longer reachable with the numbers left")
        return StepCheck(True)

    def answer_key(self, answer: str) -> str:
        """Expressions vote together when they have the same value from the same numbers."""
        try:
            value = evaluate(answer)
        except ExpressionError:
            return super().answer_key(answer)
        return f"{format_number(value)} from {sorted(int(x) for x in _INT.findall(answer))}"
