"""GSM-style word problems (reasoning-gym `gsm_symbolic`) with the generator's worked solution.

Reference steps are the equation lines of the generator's chain of thought (`35 × 3 = 105`).
A generated step is checked locally: every `a op b = c` in it must be arithmetically right.
That is weaker than the other families' checks (a right equation can still be irrelevant);
outcomes are exact."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from reasonact.reasoning.tasks.base import ANSWER_PREFIX, Problem, StepCheck, Task, one_line
from reasonact.reasoning.tasks.expressions import ExpressionError, evaluate, normalise

_NUMBER = r"-?\d+(?:\.\d+)?"
_EQUATION = re.compile(rf"({_NUMBER}(?:\s*[-+*/]\s*{_NUMBER})+)\s*=\s*({_NUMBER}(?:/\d+)?)")
_INNER_FRACTION = re.compile(rf"(?<=/)\s*({_NUMBER}\s*/\s*{_NUMBER})")  # the "1/2" of "14/1/2"
_REWRITES = [  # worked-solution notation → plain arithmetic, applied in order
    (re.compile(r"[$£€¥]"), ""),  # currency signs
    (re.compile(r"(?<=\d),(?=\d{3}\b)"), ""),  # thousands separators: 410,000
    (re.compile(r"(?<=\s)[x×](?=\s)"), "*"),  # "80 questions x 5/100"
    (re.compile(r"\bhalf\b"), "1/2"),  # "half * 74 grasshoppers"
    (re.compile(r"(\d+(?:\.\d+)?)\s*%"), r"\1/100"),  # "75.0%", "5%"
    (re.compile(r"\d+(?:\.\d+)?[A-Za-z]\w*"), " ; "),  # "2x+140": algebra, not arithmetic on numbers
    (re.compile(r"/?[A-Za-z][\w'/-]*|,"), " "),  # words, units ("orders/day", "t-shirt") between numbers
]


def equations(text: str) -> list[tuple[str, str]]:
    """`(lhs, rhs)` of every `a op b … = c` in `text`, in the notation of reasoning-gym's worked
    solutions: words, units and currency between numbers ignored, `x` for ×, `%` for /100."""
    bare = normalise(text)
    for pattern, replacement in _REWRITES:
        bare = pattern.sub(replacement, bare)
    return _EQUATION.findall(bare)


def holds(lhs: str, rhs: str) -> bool:
    """`lhs = rhs` up to float rounding, or with the right side a whole count the left side was
    truncated or rounded to (the generator's `13*0.5=6 tubes`); a fraction after a division is
    read as one number, as the generator writes it (`14/1/2=28`)."""
    right = float(evaluate(rhs))
    for reading in {lhs, _INNER_FRACTION.sub(r"(\1)", lhs)}:
        left = float(evaluate(reading))
        if math.isclose(left, right, rel_tol=1e-6, abs_tol=1e-6) or (right.is_integer() and abs(left - right) < 1):
            return True
    return False


def equation_steps(cot: str) -> tuple[str, ...]:
    lines = [one_line(line.lstrip(" •-*").strip()) for line in normalise(cot).splitlines()]
    return tuple(line for line in lines if equations(line))


@dataclass(frozen=True)
class GsmTask(Task):
    family: str = "gsm"
    generator: ClassVar[str] = "gsm_symbolic"  # reasoning-gym has one difficulty (1.0) for it

    def solve(self, entry: dict[str, Any]) -> tuple[str, ...]:
        cot = entry["metadata"].get("answer_cot")
        steps = equation_steps(cot or "")
        if not steps:
            raise ExpressionError("no equation 'a op b = c' in the generator's worked solution")
        return (*steps, f"{ANSWER_PREFIX} {entry['answer']}")

    def check_step(self, problem: Problem, previous: tuple[str, ...], step: str) -> StepCheck:
        found = equations(step)
        if not found:
            return StepCheck(False, "unparseable: no equation 'a op b = c' in the step")
        for lhs, rhs in found:
            try:
                if not holds(lhs, rhs):
                    return StepCheck(False, f"wrong arithmetic: {lhs.strip()} = {rhs}")
            except ExpressionError as err:
                return StepCheck(False, f"unparseable: {err}")
        return StepCheck(True)
