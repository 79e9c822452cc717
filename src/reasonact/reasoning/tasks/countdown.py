"""Countdown (reasoning-gym `countdown`): reach a target by combining numbers, one operation per step.

Reference solution for numbers 6, 61, 94, 4 and target 309::

    94 * 4 = 376
    376 - 61 = 315
    315 - 6 = 309
    Answer: 94*4 - 61 - 6

A step `a op b = c` is correct when a and b are still available, the arithmetic is right, and
the target is still reachable from the numbers left (exhaustive search, memoised)."""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

from reasonact.reasoning.tasks.base import ANSWER_PREFIX, Problem, Split, StepCheck, Task
from reasonact.reasoning.tasks.expressions import ExpressionError, evaluate, format_number, parse, reduce_once
from reasonact.reasoning.tasks.gym import gym_problems

_STEP = re.compile(r"^\s*(-?\d+)\s*([-+*/])\s*(-?\d+)\s*=\s*(-?\d+)\s*$")


@lru_cache(maxsize=200_000)
def reachable(numbers: tuple[Fraction, ...], target: Fraction) -> bool:
    """Can `target` be made from a sub-multiset of `numbers` with + - * /? (`numbers` sorted)."""
    if target in numbers:
        return True
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


def countdown_steps(expression: str) -> tuple[str, ...]:
    node = parse(expression)
    steps = []
    while True:
        node, op, value = reduce_once(node)
        if op is None or value is None:
            break
        left, right = evaluate(op.left), evaluate(op.right)
        symbol = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}[type(op.op)]
        steps.append(f"{format_number(left)} {symbol} {format_number(right)} = {format_number(value)}")
    return tuple(steps)


@dataclass(frozen=True)
class CountdownTask(Task):
    min_numbers: int = 3  # numbers given, lower bound
    max_numbers: int = 4  # numbers given, upper bound (the step checker's search is exponential in it)
    max_target: int = 200  # largest target
    family: str = "countdown"

    def generate(self, split: Split, n: int, seed: int = 0) -> list[Problem]:
        if self.max_numbers > 5:
            raise ValueError(f"max_numbers: expected <= 5 (exhaustive step checking), received {self.max_numbers}")
        options = dict(
            min_numbers=self.min_numbers,
            max_numbers=self.max_numbers,
            min_target=10,
            max_target=self.max_target,
            max_value=50,
        )
        return gym_problems(self.family, "countdown", options, self._solve, split, n, seed)

    @staticmethod
    def _solve(entry: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
        expression = entry["metadata"]["expression"]
        return expression, (*countdown_steps(expression), f"{ANSWER_PREFIX} {expression}")

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
        numbers = tuple(sorted(pool.elements()))
        if not reachable(numbers, Fraction(problem.metadata["target"])):
            return StepCheck(False, "target no longer reachable")
        return StepCheck(True)

    def check_answer(self, problem: Problem, answer: str) -> bool:
        try:
            value = evaluate(answer)
            used = Counter(int(x) for x in re.findall(r"\d+", answer))
        except (ExpressionError, ValueError):
            return False
        available = Counter(problem.metadata["numbers"])
        return value == problem.metadata["target"] and all(available[k] >= v for k, v in used.items())
