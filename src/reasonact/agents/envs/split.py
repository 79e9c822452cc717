"""Two agents, split information: an arithmetic problem whose numbers are divided between them.

Both see the formula with named numbers (`a + b * c - d`); `alice` knows the values of a, c, …
and `bob` those of b, d, …, so neither can answer alone: they must `communicate`. Either ends the
episode with `answer <value>` (judged exactly) or passes with `wait`. Problems come from the
arithmetic task's test split.
"""

from __future__ import annotations

import ast
import re
import string

from reasonact.agents.envs.base import Step, TextEnv
from reasonact.agents.envs.problems import ProblemEnv


class _Name(ast.NodeTransformer):
    def __init__(self) -> None:
        self.values: list[int] = []

    def visit_Constant(self, node: ast.Constant) -> ast.expr:
        self.values.append(int(node.value))
        return ast.Name(string.ascii_lowercase[len(self.values) - 1])


EXAMPLE = """Example (another problem):
Task: Compute a * b + c. You know a = 2, c = 1; bob knows the other numbers.
Message: I know a = 2, c = 1
Message from bob: I know b = 5
Tool call: calculator: 2 * 5 + 1
Tool result: 11
Action: answer 11
End of example."""  # a worked demonstration in the prompt: base LMs continue patterns


class SplitInfoEnv(TextEnv):
    roles = ("alice", "bob")
    tools = ("calculator",)
    max_steps = 4
    action_forms = "answer <number>, wait"

    def __init__(self, split: str = "test") -> None:
        self.problems = ProblemEnv("arithmetic", split)
        self.name = "split:arithmetic"
        self.formula = ""
        self.known: dict[str, dict[str, int]] = {}

    def reset(self, seed: int) -> dict[str, str]:
        self.problems.reset(seed)
        problem = self.problems._problem()
        namer = _Name()
        self.formula = ast.unparse(namer.visit(ast.parse(problem.metadata["expression"], mode="eval")))
        names = string.ascii_lowercase[: len(namer.values)]
        self.known = {
            role: {n: v for i, (n, v) in enumerate(zip(names, namer.values, strict=True)) if i % 2 == r}
            for r, role in enumerate(self.roles)
        }
        return {role: "No answer given yet." for role in self.roles}

    def value(self) -> str:
        """The formula's value (for checks and tests)."""
        return self.problems._problem().answer

    def task(self, role: str) -> str:
        mine = ", ".join(f"{n} = {v}" for n, v in self.known[role].items())
        peer = next(r for r in self.roles if r != role)
        return f"Compute {self.formula}. You know {mine}; {peer} knows the other numbers."

    def instructions(self, role: str) -> str:
        return "Work with your partner. Actions: `answer <number>` (ends the episode) or `wait`.\n" + EXAMPLE

    def parse_action(self, text: str) -> str | None:
        if re.match(r"^\s*wait\b", text, re.I):
            return "wait"
        return self.problems.parse_action(text)

    def step(self, role: str, action: str) -> Step:
        if action == "wait":
            return Step("You waited.", done=False)
        value = action.removeprefix("answer ").strip()
        correct = self.problems.family_task.check_answer(self.problems._problem(), value)
        return Step(f"answer {value} is {'correct' if correct else 'wrong'}", done=True, success=correct)
