"""GSM-style word problems (reasoning-gym `gsm_symbolic`) with the generator's worked solution.

Reference steps are the equation lines of the generator's chain of thought (`35 × 3 = 105`).
A generated step is checked locally: every `a op b = c` in it must be arithmetically right.
That is weaker than the other families' checks (a right equation can still be irrelevant);
outcomes are exact."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from reasonact.reasoning.tasks.base import ANSWER_PREFIX, Problem, Split, StepCheck, Task, one_line
from reasonact.reasoning.tasks.expressions import ExpressionError, evaluate, normalise
from reasonact.reasoning.tasks.gym import gym_problems

_NUMBER = r"-?\d+(?:\.\d+)?"
_EQUATION = re.compile(rf"({_NUMBER}(?:\s*[-+*/]\s*{_NUMBER})+)\s*=\s*({_NUMBER})")


def equations(text: str) -> list[tuple[str, str]]:
    """`(lhs, rhs)` of every `a op b … = c` in `text`, ignoring words and units between numbers."""
    bare = re.sub(r"[A-Za-z$,%']+", " ", normalise(text))
    return _EQUATION.findall(bare)


def equation_steps(cot: str) -> tuple[str, ...]:
    lines = [one_line(line.lstrip(" •-*").strip()) for line in normalise(cot).splitlines()]
    return tuple(line for line in lines if equations(line))


@dataclass(frozen=True)
class GsmTask(Task):
    family: str = "gsm"

    def generate(self, split: Split, n: int, seed: int = 0) -> list[Problem]:
        return gym_problems(self.family, "gsm_symbolic", {}, self._solve, split, n, seed)

    @staticmethod
    def _solve(entry: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
        cot = entry["metadata"].get("answer_cot")
        if not cot:
            raise ExpressionError("no worked solution in the generator's metadata")
        steps = equation_steps(cot)
        if not steps or any(evaluate(lhs) != evaluate(rhs) for step in steps for lhs, rhs in equations(step)):
            raise ExpressionError("no checkable equations in the worked solution")
        return entry["answer"], (*steps, f"{ANSWER_PREFIX} {entry['answer']}")

    def check_step(self, problem: Problem, previous: tuple[str, ...], step: str) -> StepCheck:
        found = equations(step)
        if not found:
            return StepCheck(False, "unparseable: no equation 'a op b = c' in the step")
        for lhs, rhs in found:
            try:
                if evaluate(lhs) != evaluate(rhs):
                    return StepCheck(False, f"wrong arithmetic: {lhs.strip()} = {rhs}")
            except ExpressionError as err:
                return StepCheck(False, f"unparseable: {err}")
        return StepCheck(True)

    def check_answer(self, problem: Problem, answer: str) -> bool:
        try:
            return evaluate(answer.replace(",", "")) == evaluate(problem.answer)
        except ExpressionError:
            return False
