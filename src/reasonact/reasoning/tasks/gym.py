"""Problems from `reasoning-gym` generators, turned into `Problem`s by a family's step solver."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reasonact.reasoning.tasks.base import Problem, Split, one_line, split_seed
from reasonact.reasoning.tasks.expressions import ExpressionError

if TYPE_CHECKING:
    from reasonact.reasoning.tasks.base import Task


def problem_of(task: Task, entry: dict[str, Any], uid: str) -> Problem:
    """A reasoning-gym entry as a `Problem` with the task's reference steps (raises
    `ExpressionError` when the task cannot split it into checkable steps)."""
    steps = task.solve(entry)
    metadata = {k: v for k, v in entry["metadata"].items() if k != "difficulty"}
    return Problem(task.family, uid, one_line(entry["question"]), str(entry["answer"]), steps, metadata)


def gym_problems(task: Task, split: Split, n: int, seed: int) -> list[Problem]:
    """Draw from the task's reasoning-gym generator until `n` entries have a step solution.

    Entries the solver cannot split into checkable steps (e.g. a non-integer intermediate value in
    countdown) are skipped, so the family stays exactly checkable."""
    import reasoning_gym

    if n < 0:
        raise ValueError(f"n: expected a number of problems >= 0, received {n}")
    problems: list[Problem] = []
    size = max(8, 2 * n)
    dataset = reasoning_gym.create_dataset(task.generator, size=size, seed=split_seed(split, seed), **task.options())
    for index in range(size):
        if len(problems) == n:
            break
        try:
            problems.append(problem_of(task, dataset[index], f"{task.family}/{split}/{seed}/{index}"))
        except ExpressionError:
            continue
    if len(problems) < n:
        raise ValueError(f"n: {task.generator} yielded only {len(problems)} solvable problems of {size}, asked for {n}")
    return problems
