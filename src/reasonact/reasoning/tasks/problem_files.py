"""Outside problems as users bring them: a JSONL file of reasoning-gym entries of any families."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from reasonact.reasoning.tasks.base import Problem, problem_of
from reasonact.reasoning.tasks.expressions import ExpressionError


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
