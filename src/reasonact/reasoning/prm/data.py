"""Step-labelled solutions in TRL's step-wise PRM format, one JSON object per line:

    {"prompt": "<question>", "completions": ["<step>", …, "Answer: …"], "labels": [true, false, …],
     "mc_labels": [1.0, 0.25, …], "uid": "<problem uid>", "family": "arithmetic", "problem": {…}}

`labels[i]` says whether the solution is still on a path to the right answer after step i: hard
(bool) labels from the task's step checker, or any file's labels in TRL's format (bools, or floats
in [0, 1]). The rest is ours: `mc_labels` are Math-Shepherd Monte Carlo labels (the fraction of
policy rollouts from the step that reach the answer; hard label = fraction > 0), `uid`, `family`
and `problem` (the `Problem` as JSON) let a labelling run resume and a scorer re-check a row.

Solutions are sampled from the policy (best-of-N trees at temperature 1, every root-to-leaf path
that ends in an answer or a failed step), so the data has the policy's own mistakes in it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from reasonact.reasoning.backends.base import Backend
from reasonact.reasoning.tasks import Problem, Task

PRMRow = dict[str, Any]  # one line of the format above


def validate_row(row: Any, where: str) -> PRMRow:
    """Refuse a row whose steps and labels differ in length, that has an empty step, or labels
    outside {0, 1} / [0, 1]; the error names `where` (file:line or uid)."""
    if not isinstance(row, dict) or not all(k in row for k in ("prompt", "completions", "labels")):
        raise ValueError(f"{where}: expected an object with prompt, completions and labels, received {row!r:.120}")
    steps, labels = row["completions"], row["labels"]
    if not isinstance(steps, list) or not isinstance(labels, list) or len(steps) != len(labels) or not steps:
        got = (len(steps), len(labels)) if isinstance(steps, list) and isinstance(labels, list) else "non-lists"
        raise ValueError(f"{where}: completions and labels must be non-empty lists of one length, received {got}")
    for i, step in enumerate(steps):
        if not isinstance(step, str) or not step.strip():
            raise ValueError(f"{where}: completions[{i}] is empty; every step needs text")
    for key in ("labels", "mc_labels"):
        values = row.get(key, [])
        if len(values) not in (0, len(steps)) or (key == "mc_labels" and not isinstance(values, list)):
            raise ValueError(f"{where}: {key} has {len(values)} entries for {len(steps)} completions")
        for i, label in enumerate(values):
            if isinstance(label, bool):
                continue
            if not isinstance(label, int | float) or not math.isfinite(label) or not 0 <= label <= 1:
                raise ValueError(f"{where}: {key}[{i}] must be a bool or a number in [0, 1], received {label!r}")
    return row


def problem_of_row(row: PRMRow) -> Problem:
    data = dict(row["problem"])
    data["steps"] = tuple(data["steps"])
    return Problem(**data)


def make_row(problem: Problem, steps: Sequence[str], labels: Sequence[bool | float]) -> PRMRow:
    return {
        "prompt": problem.question,
        "completions": list(steps),
        "labels": list(labels),
        "uid": problem.uid,
        "family": problem.family,
        "problem": dataclasses.asdict(problem),
    }


def sample_solutions(
    problems: Sequence[Problem], backend: Backend, samples: int, max_steps: int, max_step_tokens: int, seed: int
) -> list[list[tuple[str, ...]]]:
    """`samples` solutions per problem from the policy at temperature 1 → [problem][solution] steps.
    A solution ends at an answer, at `max_steps`, or at a failed step (kept, as a wrong step "…")."""
    from reasonact.reasoning.search import SearchConfig, best_of_n

    config = SearchConfig(
        n=samples, max_steps=max_steps, max_step_tokens=max_step_tokens, selection="majority", seed=seed
    )
    out = []
    for problem in problems:
        tree = best_of_n(problem, config, backend).tree
        ends = [n for n in tree.leaves() if n.failure != "too_long"]
        out.append([tuple(s if s.strip() else "…" for s in tree.steps(n.id)) for n in ends])
    return out


def checker_rows(
    task: Task, problems: Sequence[Problem], solutions: Sequence[Sequence[tuple[str, ...]]]
) -> list[PRMRow]:
    """Ground-truth hard labels from the task's step checker (a failed last step is wrong)."""
    rows = []
    for problem, paths in zip(problems, solutions, strict=True):
        for steps in paths:
            labels = [c.correct for c in task.check_steps(problem, steps)]
            rows.append(make_row(problem, steps, labels))
    return rows


def read_rows(path: str | Path) -> list[PRMRow]:
    """Every complete row of a JSONL file, validated; a partial last line (a crash mid-write) is
    ignored, any other malformed line raises naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"rows: no such file {path}")
    lines = path.read_text().split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):  # the unterminated last line of an interrupted write
                break
            raise ValueError(f"{path}:{number}: not JSON ({err.msg})") from None
        rows.append(validate_row(row, f"{path}:{number}"))
    return rows


def append_rows(path: Path, rows: Iterable[PRMRow]) -> None:
    """Append rows as JSON lines and fsync, so a resumed run sees every finished problem."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def truncate_partial(path: Path) -> None:
    """Cut an unterminated last line (a write interrupted mid-row) before appending more."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])
