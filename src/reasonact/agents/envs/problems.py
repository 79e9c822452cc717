"""Reasoning problems with tool use: a problem of `reasonact.reasoning.tasks` as a one-answer episode.

The agent may call the calculator or the sandboxed interpreter (intrinsic: results go to memory)
and ends the episode with `answer <value>`, judged by the task's exact checker. Seeds index the
task's `test` split, disjoint from the training split policies learn from.
"""

from __future__ import annotations

import re

from reasonact.agents.envs.base import Step, TextEnv
from reasonact.reasoning.tasks import Problem, make_task

EXAMPLE = """Example (another problem):
Task: Calculate 2 + 3 * 4.
Tool call: calculator: 2 + 3 * 4
Tool result: 14
Action: answer 14
End of example."""  # a worked demonstration in the prompt: base LMs continue patterns
_ANSWER = re.compile(r"^\s*(?:final\s+)?answer\s*[:=]?\s*(.+?)\s*\.?\s*$", re.I)
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:/\d+)?$")
EXPRESSION_ANSWERS = ("countdown",)  # families whose answer is an expression; the others need a number


class ProblemEnv(TextEnv):
    tools = ("calculator", "python")
    max_steps = 4
    action_forms = "answer <number>"

    def __init__(self, family: str = "arithmetic", split: str = "test") -> None:
        self.family_task = make_task(family)
        self.split = split
        self.name = f"problems:{family}"
        self.problem: Problem | None = None

    def reset(self, seed: int) -> dict[str, str]:
        (self.problem,) = self.family_task.generate(self.split, 1, seed=seed)  # type: ignore[arg-type]
        return {"agent": "No answer given yet."}

    def _problem(self) -> Problem:
        if self.problem is None:
            raise ValueError("reset: call reset(seed) before using the environment")
        return self.problem

    def task(self, role: str) -> str:
        return self._problem().question

    def instructions(self, role: str) -> str:
        return "Solve the problem. Use tools for arithmetic. Finish with `answer <number>`.\n" + EXAMPLE

    def parse_action(self, text: str) -> str | None:
        """`answer <value>`; the value must be a number literal (except for expression-answer families):
        the tasks' checkers compare values, so `answer 9 * 9 - 7` (the question echoed) would pass."""
        match = _ANSWER.match(text)
        if match is None:
            return None
        value = match.group(1).replace(" ", "")
        if self.family_task.family not in EXPRESSION_ANSWERS and not _NUMBER.match(value):
            return None
        return f"answer {value}"

    def step(self, role: str, action: str) -> Step:
        value = action.removeprefix("answer ").strip()
        correct = self.family_task.check_answer(self._problem(), value)
        return Step(f"answer {value} is {'correct' if correct else 'wrong'}", done=True, success=correct)
