"""Reasoning as a Markov decision process (OpenR; Wang et al., "OpenR: An Open Source Framework
for Advanced Reasoning with LLMs", 2024, §2).

State s_t = question + the steps written so far; action a_t = the next step or the final answer
(`Answer: …`); the transition appends the action; the episode ends at an answer or after
`max_steps`. Steps are separated by an explicit boundary (`STEP_BOUNDARY`, a newline), which is
also the stop string of every backend, so one generation = one action. Reward: the outcome
checker at the end, or a process reward model's score per step (see `scorers`).
"""

from __future__ import annotations

from dataclasses import dataclass

from reasonact.reasoning.tasks.base import Problem, answer_of

STEP_BOUNDARY = "\n"  # ends every step; the stop string of generation
QUESTION_PREFIX = "Question: "


def render(problem: Problem, steps: tuple[str, ...] = (), header: str = "") -> str:
    """The prompt for state (problem, steps): an optional few-shot header, the question, the steps."""
    lines = [QUESTION_PREFIX + problem.question, *steps]
    return header + "".join(line + STEP_BOUNDARY for line in lines)


def few_shot_header(examples: list[Problem]) -> str:
    """Worked examples (question + reference steps) to put before a question for a base LM."""
    return "".join(render(p, p.steps) + STEP_BOUNDARY for p in examples)


def solution_text(steps: tuple[str, ...]) -> str:
    """The completion a policy is trained to write after the question: the steps, newline-ended."""
    return "".join(step + STEP_BOUNDARY for step in steps)


@dataclass(frozen=True)
class State:
    problem: Problem  # the question (and its gold answer, for checkers only)
    steps: tuple[str, ...] = ()  # actions taken so far

    @property
    def answer(self) -> str | None:
        """The final answer if the last action was an answer."""
        return answer_of(self.steps[-1]) if self.steps else None

    @property
    def terminal(self) -> bool:
        return self.answer is not None

    def prompt(self, header: str = "") -> str:
        return render(self.problem, self.steps, header)

    def step(self, action: str) -> State:
        """Transition: append one action. Refuses actions containing the step boundary."""
        if STEP_BOUNDARY in action:
            raise ValueError(f"action: expected one step without {STEP_BOUNDARY!r}, received {action!r}")
        if self.terminal:
            raise ValueError(f"action: the state already ended with an answer ({self.steps[-1]!r})")
        return State(self.problem, (*self.steps, action))
