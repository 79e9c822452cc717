"""Problems from `reasoning-gym` generators, turned into `Problem`s by a family's step solver."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reasonact.reasoning.tasks.base import Problem, Split, one_line, split_seed
from reasonact.reasoning.tasks.expressions import ExpressionError

Solver = Callable[[dict[str, Any]], tuple[str, tuple[str, ...]]]  # entry → (answer, steps)


def gym_problems(
    family: str, generator: str, options: dict[str, Any], solver: Solver, split: Split, n: int, seed: int
) -> list[Problem]:
    """Draw from reasoning-gym's `generator` until `n` entries have a step solution.

    Entries the solver cannot split into checkable steps (e.g. a non-integer intermediate value)
    are skipped, so the family stays exactly checkable."""
    import reasoning_gym

    if n < 0:
        raise ValueError(f"n: expected a number of problems >= 0, received {n}")
    problems: list[Problem] = []
    base = split_seed(split, seed)
    size = max(8, 2 * n)
    dataset = reasoning_gym.create_dataset(generator, size=size, seed=base, **options)
    for index in range(size):
        if len(problems) == n:
            break
        entry = dataset[index]
        try:
            answer, steps = solver(entry)
        except ExpressionError:
            continue
        metadata = {k: v for k, v in entry["metadata"].items() if k != "difficulty"}
        uid = f"{family}/{split}/{seed}/{index}"
        problems.append(Problem(family, uid, one_line(entry["question"]), answer, steps, metadata))
    if len(problems) < n:
        raise ValueError(f"n: {generator} yielded only {len(problems)} solvable problems of {size}, asked for {n}")
    return problems
