"""A search study: accuracy vs generated tokens of several search methods on held-out problems.

Every (method, N, problem) unit is one record in `runs/<name>/metrics.jsonl`; a study interrupted
(Ctrl-C, crash) and started again with the same config skips the units already recorded. A unit
that fails (bad model output the search could not absorb, a backend error) is recorded with its
error instead of stopping the study. `summary.json` and `plots/accuracy_vs_tokens.png` are written
at the end (Snell et al. 2024's accuracy-vs-compute curves).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from reasonact.atomic import atomic_write_json
from reasonact.reasoning.backends.base import Backend
from reasonact.reasoning.mdp import STEP_BOUNDARY
from reasonact.reasoning.scorers import OracleScorer, OutcomeScorer, StepScorer
from reasonact.reasoning.search import SEARCHES, SearchConfig
from reasonact.reasoning.search.common import Selection
from reasonact.reasoning.tasks import Problem, make_task
from reasonact.reasoning.tasks.problem_files import Unsupported, load_problems
from reasonact.runs import Run


@dataclass(frozen=True)
class StudyConfig:
    family: str = "arithmetic"  # task family (reasonact.reasoning.tasks.TASKS)
    difficulty: str = "default"  # the family's named difficulty ("default" = reasoning-gym's defaults)
    # "tiny" / "small" (trained SFT policies), "gemma" (Gemma 3 270M, few-shot), "gemma:<model dir>" (another
    # base model with the same few-shot header), a model dir, or "vllm:<model dir>"
    policy: str = "tiny"
    scorer: str = "oracle"  # step scorer of PRM-guided methods: "oracle", "outcome", or a PRM directory
    methods: tuple[str, ...] = ("greedy", "best_of_n", "beam", "dvts", "mcts", "tree_dfs")  # SEARCHES keys[:selection]
    budgets: tuple[int, ...] = (4, 8)  # N per method (MCTS: simulations = N, tree+DFS: level width = N)
    count: int = 20  # generated test problems (the test split: never the policy's training seeds)
    problems: Path | None = None  # outside problems instead: a JSONL file of reasoning-gym entries (any families)
    search: SearchConfig = field(default_factory=SearchConfig)  # everything else about the search
    root: Path = Path("runs")  # parent of the run directory
    name: str = "search_study"  # run directory name
    resume: bool = True  # continue a matching interrupted study instead of refusing to overwrite it
    save_trees: bool = True  # write every search tree as JSON under the run's trees/
    out: Path | None = None  # also write the report as <out>.json and the plot as <out>.png


def load_backend(policy: str, family: str, difficulty: str = "default") -> Backend:
    """The policy to search with: Gemma 3 270M (few-shot; `gemma:<model directory>` gives another
    base model the same header), an SFT preset trained at the study's family and difficulty
    (shipped or cached: `reasonact search train-policy`), a model directory, or
    `vllm:<model directory>` (served by vLLM, for GPUs)."""
    from reasonact.reasoning.backends.hf import HFBackend

    if policy.startswith("vllm:"):  # GPU scale-out: the same contract served by vLLM's engine
        from reasonact.reasoning.backends.vllm import VLLMBackend

        return VLLMBackend(policy.removeprefix("vllm:"))
    if policy == "gemma" or policy.startswith("gemma:"):
        from reasonact.reasoning.backends.gemma import gemma_backend

        path = policy.removeprefix("gemma").removeprefix(":") or None
        if path is not None and not Path(path).is_dir():
            raise ValueError(f"policy: expected 'gemma:<model directory>', {path!r} is not a directory")
        return gemma_backend(family, difficulty=difficulty, path=path)
    from reasonact.reasoning.step_lm import POLICY_PRESETS, find_policy

    if policy in POLICY_PRESETS:  # tiny models: one thread is faster (see HFBackend._threads)
        path = find_policy(dataclasses.replace(POLICY_PRESETS[policy], family=family, difficulty=difficulty))
        if path is None:
            raise ValueError(
                f"policy: the {policy} policy of {family} at {difficulty} difficulty is not trained yet; run "
                f"`reasonact search train-policy {policy} --policy.family {family} --policy.difficulty {difficulty}`"
            )
        return HFBackend.from_pretrained(path, threads=1)
    if not Path(policy).is_dir():
        raise ValueError(
            f"policy: expected 'gemma', 'gemma:<dir>', one of {sorted(POLICY_PRESETS)} or a model directory, "
            f"received {policy!r}"
        )
    return HFBackend.from_pretrained(policy)


def make_scorer(kind: str, family: str, difficulty: str = "default") -> StepScorer:
    """ "oracle" (the task's step checker), "outcome" (final answers only) or a trained PRM directory."""
    if kind == "oracle":
        return OracleScorer(make_task(family, difficulty))
    if kind == "outcome":
        return OutcomeScorer(make_task(family, difficulty))
    from reasonact.reasoning.prm.model import LearnedScorer

    if not Path(kind).is_dir():
        raise ValueError(f"scorer: expected 'oracle', 'outcome' or a PRM directory, received {kind!r}")
    return LearnedScorer(kind)


def parse_method(name: str) -> tuple[str, str | None]:
    """Split `method[:selection]` (e.g. `best_of_n:majority`): a method with its own answer
    selection, so one study compares majority-vote best-of-N with PRM-argmax beam search."""
    method, _, selection = name.partition(":")
    if method not in SEARCHES:
        raise ValueError(f"methods: expected names from {sorted(SEARCHES)}[:selection], received {name!r}")
    if selection and selection not in get_args(Selection):
        raise ValueError(f"methods: expected a selection from {get_args(Selection)} after ':', received {name!r}")
    return method, selection or None


def unit_config(name: str, budget: int, base: SearchConfig) -> SearchConfig:
    """How a budget N maps onto each method's knobs (and a `method:selection` name's selection)."""
    method, selection = parse_method(name)
    if selection is not None:
        base = dataclasses.replace(base, selection=selection)
    if method == "mcts":
        return dataclasses.replace(base, simulations=budget)
    if method in ("beam", "dvts"):
        return dataclasses.replace(base, n=budget, width=min(base.width, budget))
    return dataclasses.replace(base, n=budget)


def study_problems(config: StudyConfig) -> tuple[list[Problem], list[Unsupported]]:
    """The study's problems: `count` generated test problems of `family`, or the outside problems
    of `config.problems` (with the rows no family of ours takes)."""
    if config.problems is not None:
        problems, unsupported = load_problems(config.problems, config.difficulty)
        if not problems:
            reasons = "; ".join(f"line {u.line}: {u.reason}" for u in unsupported[:3])
            raise ValueError(
                f"problems: no supported row in {config.problems} ({len(unsupported)} unsupported: {reasons})"
            )
        return problems, unsupported
    return make_task(config.family, config.difficulty).generate("test", config.count), []


def check_step_tokens(problems: Sequence[Problem], backend: Backend, search: SearchConfig) -> None:
    """Refuse a per-step token limit shorter than the longest reference step of the problems (+ the
    boundary): the policy could never write such a step whole. Backends without a tokenizer here
    (vLLM) are not checked."""
    encode = getattr(backend, "encode", None)
    steps = [s for p in problems for s in p.steps]
    if encode is None or not steps:
        return
    longest = max(steps, key=lambda s: len(encode(s + STEP_BOUNDARY)))
    need = len(encode(longest + STEP_BOUNDARY))
    if need > search.max_step_tokens:
        raise ValueError(
            f"search.max_step_tokens: {search.max_step_tokens} cannot hold the longest reference step "
            f"({need} tokens with the boundary: {longest!r}); raise it to at least {need}"
        )


def run_study(config: StudyConfig, backend: Backend | None = None, progress: bool = False) -> dict[str, Any]:
    """Run every (method, N, problem) unit not yet recorded; `backend` (one for all families)
    replaces the policy named in the config, e.g. in tests."""
    for name in config.methods:
        parse_method(name)  # refuse unknown names before any work
    problems, unsupported = study_problems(config)
    run = Run.open(config.root, config.name, config, resume=config.resume)
    done = {(m["method"], m["budget"], m["uid"]) for m in run.metrics()}
    backends: dict[str, Backend] = {}
    scorers: dict[str, StepScorer] = {}
    units = [(m, b, i) for m in config.methods for b in config.budgets for i in range(len(problems))]
    for method, budget, i in units:
        problem = problems[i]
        if (method, budget, problem.uid) in done:
            continue
        family = problem.family
        if family not in backends:
            backends[family] = backend or load_backend(config.policy, family, config.difficulty)
            scorers[family] = make_scorer(config.scorer, family, config.difficulty)
            check_step_tokens([p for p in problems if p.family == family], backends[family], config.search)
        task = make_task(family, config.difficulty)
        record: dict[str, Any] = {"method": method, "budget": budget, "uid": problem.uid, "family": family}
        try:
            result = SEARCHES[parse_method(method)[0]](
                problem, unit_config(method, budget, config.search), backends[family], scorers[family]
            )
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
    return summarise(run, config.out, unsupported)


def summarise(run: Run, out: Path | None = None, unsupported: Sequence[Unsupported] = ()) -> dict[str, Any]:
    """Accuracy and mean generated tokens per (method, N) → summary.json + accuracy-vs-tokens plot
    (and their copies at `out`, with the study's config, `accuracy[method][N]`, the unsupported
    rows of a problems file and the machine's load average)."""
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
    summary = {
        "rows": rows,
        "vs_majority": versus_majority(rows),
        "unsupported": len(unsupported),
        "unsupported_rows": [dataclasses.asdict(u) for u in unsupported],
    }
    atomic_write_json(run.path / "summary.json", summary)
    plot_curves(rows, run.plots / "accuracy_vs_tokens.png")
    if out is not None:
        config = json.loads((run.path / "config.json").read_text())
        accuracy: dict[str, dict[str, float]] = defaultdict(dict)
        for r in rows:
            accuracy[r["method"]][str(r["budget"])] = r["accuracy"]
        report = {"config": config, "loadavg": os.getloadavg(), "accuracy": dict(accuracy)} | summary
        atomic_write_json(out.with_suffix(".json"), report)
        plot_curves(rows, out.with_suffix(".png"))
    return summary


def versus_majority(rows: list[dict[str, Any]], slack: float = 1.05) -> list[dict[str, Any]]:
    """Each method's point against majority-vote best-of-N at equal token budget: the best
    majority accuracy among its points that spent at most `slack` × the method's mean tokens
    (None where majority voting has no point that cheap, i.e. N = 2 already costs more)."""
    majority = [r for r in rows if r["method"] == "best_of_n:majority"]
    out = []
    for r in rows:
        if r["method"] == "best_of_n:majority" or not majority:
            continue
        affordable = [m["accuracy"] for m in majority if m["mean_tokens"] <= r["mean_tokens"] * slack]
        best = max(affordable) if affordable else None
        out.append(
            {
                "method": r["method"],
                "budget": r["budget"],
                "mean_tokens": r["mean_tokens"],
                "accuracy": r["accuracy"],
                "majority_accuracy": best,
                "beats_majority": None if best is None else r["accuracy"] > best,
            }
        )
    return out


def plot_curves(rows: list[dict[str, Any]], path: Path) -> None:
    from reasonact.plotting import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7.5, 4), layout="constrained")
    for method in sorted({r["method"] for r in rows}):
        points = sorted((r["mean_tokens"], r["accuracy"]) for r in rows if r["method"] == method)
        ax.plot(*zip(*points, strict=True), marker="o", label=method)
    ax.set(xlabel="generated tokens per problem", ylabel="accuracy", title="accuracy vs test-time compute")
    fig.legend(loc="outside right upper", fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
