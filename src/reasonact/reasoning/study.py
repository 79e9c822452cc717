"""A search study: accuracy vs generated tokens of several search methods on held-out problems.

Every (method, N, problem) unit is one record in `runs/<name>/metrics.jsonl`; a study interrupted
(Ctrl-C, crash) and started again with the same config skips the units already recorded. A unit
that fails (bad model output the search could not absorb, a backend error) is recorded with its
error instead of stopping the study. `summary.json` and `plots/accuracy_vs_tokens.png` are written
at the end (Snell et al. 2024's accuracy-vs-compute curves).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reasonact.atomic import atomic_write_json
from reasonact.reasoning.backends.base import Backend
from reasonact.reasoning.scorers import OracleScorer, OutcomeScorer, StepScorer
from reasonact.reasoning.search import SEARCHES, SearchConfig
from reasonact.reasoning.tasks import make_task
from reasonact.runs import Run


@dataclass(frozen=True)
class StudyConfig:
    family: str = "arithmetic"  # task family (reasonact.reasoning.tasks.TASKS)
    policy: str = "tiny"  # "tiny" / "small" (SFT policies, trained and cached on first use), "gemma", or a model dir
    scorer: Literal["oracle", "outcome"] = "oracle"  # step scorer used by PRM-guided methods
    methods: tuple[str, ...] = ("greedy", "best_of_n", "beam", "dvts", "mcts", "tree_dfs")  # keys of SEARCHES
    budgets: tuple[int, ...] = (4, 8)  # N per method (MCTS: simulations = N, tree+DFS: level width = N)
    problems: int = 20  # test problems (the test split: never the policy's training seeds)
    search: SearchConfig = field(default_factory=SearchConfig)  # everything else about the search
    root: Path = Path("runs")  # parent of the run directory
    name: str = "search_study"  # run directory name
    resume: bool = True  # continue a matching interrupted study instead of refusing to overwrite it
    save_trees: bool = True  # write every search tree as JSON under the run's trees/


def load_backend(policy: str, family: str) -> Backend:
    from reasonact.reasoning.backends.hf import HFBackend

    if policy == "gemma":
        from reasonact.reasoning.backends.gemma import gemma_backend

        return gemma_backend(family)
    from reasonact.reasoning.policy import POLICY_PRESETS, cached_policy

    if policy in POLICY_PRESETS:
        return HFBackend.from_pretrained(cached_policy(dataclasses.replace(POLICY_PRESETS[policy], family=family)))
    if not Path(policy).is_dir():
        raise ValueError(
            f"policy: expected 'gemma', one of {sorted(POLICY_PRESETS)} or a model directory, received {policy!r}"
        )
    return HFBackend.from_pretrained(policy)


def make_scorer(kind: str, family: str) -> StepScorer:
    task = make_task(family)
    return OracleScorer(task) if kind == "oracle" else OutcomeScorer(task)


def unit_config(method: str, budget: int, base: SearchConfig) -> SearchConfig:
    """How a budget N maps onto each method's knobs."""
    if method == "mcts":
        return dataclasses.replace(base, simulations=budget)
    if method in ("beam", "dvts"):
        return dataclasses.replace(base, n=budget, width=min(base.width, budget))
    return dataclasses.replace(base, n=budget)


def run_study(config: StudyConfig, backend: Backend | None = None, progress: bool = False) -> dict[str, Any]:
    unknown = sorted(set(config.methods) - set(SEARCHES))
    if unknown:
        raise ValueError(f"methods: expected names from {sorted(SEARCHES)}, received unknown {unknown}")
    run = Run.open(config.root, config.name, config, resume=config.resume)
    task = make_task(config.family)
    problems = task.generate("test", config.problems)
    done = {(m["method"], m["budget"], m["uid"]) for m in run.metrics()}
    backend = backend or load_backend(config.policy, config.family)
    scorer = make_scorer(config.scorer, config.family)
    units = [(m, b, i) for m in config.methods for b in config.budgets for i in range(len(problems))]
    for method, budget, i in units:
        problem = problems[i]
        if (method, budget, problem.uid) in done:
            continue
        record: dict[str, Any] = {"method": method, "budget": budget, "uid": problem.uid}
        try:
            result = SEARCHES[method](problem, unit_config(method, budget, config.search), backend, scorer)
        except (ValueError, RuntimeError) as err:  # recorded, the study goes on
            record |= {"error": f"{type(err).__name__}: {err}", "correct": False, "tokens": 0}
        else:
            correct = result.answer is not None and task.check_answer(problem, result.answer)
            record |= {"answer": result.answer, "correct": correct, "tokens": result.tokens, "calls": result.calls}
            if config.save_trees:
                result.tree.save(run.path / "trees" / f"{method}-{budget}-{i:04d}.json")
        run.log(len(done), **record)
        done.add((method, budget, problem.uid))
        if progress:
            print(f"{method} N={budget} {problem.uid}: {'✓' if record['correct'] else '✗'} {record['tokens']} tokens")
    return summarise(run)


def summarise(run: Run) -> dict[str, Any]:
    """Accuracy and mean generated tokens per (method, N) → summary.json + accuracy-vs-tokens plot."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for m in run.metrics():
        groups[(m["method"], m["budget"])].append(m)
    rows = [
        {
            "method": method,
            "budget": budget,
            "accuracy": sum(r["correct"] for r in records) / len(records),
            "mean_tokens": sum(r["tokens"] for r in records) / len(records),
            "errors": sum("error" in r for r in records),
            "problems": len(records),
        }
        for (method, budget), records in sorted(groups.items())
    ]
    summary = {"rows": rows}
    atomic_write_json(run.path / "summary.json", summary)
    plot_curves(rows, run.plots / "accuracy_vs_tokens.png")
    return summary


def plot_curves(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in sorted({r["method"] for r in rows}):
        points = sorted((r["mean_tokens"], r["accuracy"]) for r in rows if r["method"] == method)
        ax.plot(*zip(*points, strict=True), marker="o", label=method)
    ax.set(xlabel="generated tokens per problem", ylabel="accuracy", title="accuracy vs test-time compute")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
