"""Problems from `reasoning-gym` generators, turned into `Problem`s by a family's step solver."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
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


@dataclass(frozen=True)
class Unsupported:
    line: int  # 1-based line of the problems file
    source: str  # the row's metadata.source_dataset
    reason: str  # why no family of ours takes it


def load_problems(path: Path, difficulty: str = "default") -> tuple[list[Problem], list[Unsupported]]:
    """Outside problems from a JSONL file of reasoning-gym entries (`question`, `answer`,
    `metadata` with `source_dataset`), one per line → (problems of our families, unsupported rows).

    The family comes from `metadata.source_dataset`; rows of other datasets, or that the family's
    solver cannot split into checkable steps, are returned as `Unsupported` (counted and reported by
    the caller, never silently dropped). A malformed line raises ValueError naming it."""
    from reasonact.reasoning.tasks import GENERATORS, make_task

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"problems: no such file {path}")
    problems: list[Problem] = []
    unsupported: list[Unsupported] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"problems: {path}:{number} is not JSON ({err.msg})") from None
        missing = [k for k in ("question", "answer", "metadata") if not isinstance(entry, dict) or k not in entry]
        if missing or not isinstance(entry["metadata"], dict) or "source_dataset" not in entry["metadata"]:
            raise ValueError(
                f"problems: {path}:{number} expected a reasoning-gym entry with question, answer and "
                f"metadata.source_dataset, missing {missing or ['metadata.source_dataset']}"
            )
        source = str(entry["metadata"]["source_dataset"])
        if source not in GENERATORS:
            unsupported.append(Unsupported(number, source, f"no family for {source!r} (have {sorted(GENERATORS)})"))
            continue
        task = make_task(GENERATORS[source], difficulty)
        try:
            problems.append(problem_of(task, entry, f"{path.name}:{number}"))
        except (ExpressionError, KeyError, TypeError) as err:
            unsupported.append(Unsupported(number, source, f"no checkable steps: {type(err).__name__}: {err}"))
    return problems, unsupported
