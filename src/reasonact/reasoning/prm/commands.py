"""CLI verbs of `reasonact prm`: label (sample solutions, checker + Math-Shepherd labels) and eval
(step F1, earliest-error F1, calibration); `train` lives with its trainer (training/prm.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonact.atomic import atomic_write_json
from reasonact.reasoning.prm.montecarlo import RolloutConfig


@dataclass(frozen=True)
class LabelConfig:
    family: str = "arithmetic"  # task family
    difficulty: str = "easy"  # the family's named difficulty
    policy: str = "tiny"  # policy preset (trained at family/difficulty), or a model directory
    train_problems: int = 120  # train-split problems to label (PRM training data)
    test_problems: int = 40  # test-split problems to label with the checker (held-out evaluation)
    samples: int = 4  # sampled solutions per problem
    mc: bool = True  # also Monte Carlo labels (Math-Shepherd) for the train split
    rollouts: RolloutConfig = field(default_factory=RolloutConfig)  # Math-Shepherd rollouts (k, depth, tokens)
    chunk: int = 8  # problems per batch; a finished chunk is written before the next starts (resume point)
    out: Path = Path("runs/prm_labels_tiny")  # train.jsonl, test.jsonl, agreement.json


LABEL_PRESETS: dict[str, tuple[str, LabelConfig]] = {
    "tiny": ("Tiny policy on easy arithmetic: 120 train problems (checker + MC labels), 40 test.", LabelConfig()),
    "smoke": (
        "Seconds: 4 train problems, 2 test problems, 2 samples, k = 2.",
        LabelConfig(
            train_problems=4,
            test_problems=2,
            samples=2,
            rollouts=RolloutConfig(k=2, max_steps=5),
            out=Path("runs/prm_smoke"),
        ),
    ),
}


def label(config: LabelConfig) -> dict[str, Any]:
    """Label both splits (resuming finished problems) → MC-vs-checker agreement (train split)."""
    from reasonact.reasoning.prm.data import append_rows, checker_rows, read_rows, sample_solutions, truncate_partial
    from reasonact.reasoning.prm.montecarlo import monte_carlo_labels
    from reasonact.reasoning.study import load_backend
    from reasonact.reasoning.tasks import make_task

    task = make_task(config.family, config.difficulty)
    backend = load_backend(config.policy, config.family, config.difficulty)
    for split, count in (("train", config.train_problems), ("test", config.test_problems)):
        path = config.out / f"{split}.jsonl"
        truncate_partial(path)
        done = {r["uid"] for r in read_rows(path)} if path.exists() else set()
        todo = [p for p in task.generate(split, count) if p.uid not in done]
        for at in range(0, len(todo), config.chunk):
            chunk = todo[at : at + config.chunk]
            solutions = sample_solutions(
                chunk, backend, config.samples, config.rollouts.max_steps, config.rollouts.max_step_tokens, at
            )
            rows = checker_rows(task, chunk, solutions)
            if config.mc and split == "train":
                mc = [
                    monte_carlo_labels(task, p, s, backend, config.rollouts)
                    for p, s in zip(chunk, solutions, strict=True)
                ]
                for row, labels in zip(rows, [y for per_problem in mc for y in per_problem], strict=True):
                    row["mc_labels"] = labels
            append_rows(path, rows)
            print(f"{split}: {len(done) + at + len(chunk)}/{count} problems labelled")
    report = agreement(read_rows(config.out / "train.jsonl")) if config.mc else {}
    atomic_write_json(config.out / "agreement.json", report)
    print(f"Monte Carlo (hard) vs checker labels: {report}")
    return report


def agreement(rows: list[dict]) -> dict[str, Any]:
    """Share of steps whose hard MC label (any rollout succeeds) equals the checker's label."""
    pairs = [
        (m > 0, bool(y)) for r in rows if "mc_labels" in r for m, y in zip(r["mc_labels"], r["labels"], strict=True)
    ]
    same = sum(a == b for a, b in pairs)
    return {
        "steps": len(pairs),
        "agreement": same / len(pairs) if pairs else None,
        "checker_correct_mc_wrong": sum(b and not a for a, b in pairs),
        "checker_wrong_mc_correct": sum(a and not b for a, b in pairs),
    }


@dataclass(frozen=True)
class EvalConfig:
    data: Path = Path("runs/prm_labels_tiny/test.jsonl")  # held-out rows with checker labels (the truth)
    scorers: tuple[str, ...] = (  # "oracle" (the checker itself) and PRM directories
        "oracle",
        "runs/prm_tiny/prm",
        "runs/prm_tiny_mc/prm",
        "runs/prm_tiny_value/prm",
        "runs/prm_tiny_orm/prm",
    )
    threshold: float = 0.5  # a step scoring below it is called wrong
    out: Path = Path("runs/prm_eval_tiny")  # metrics.json + reliability.png


EVAL_PRESETS: dict[str, tuple[str, EvalConfig]] = {
    "tiny": ("Every tiny PRM and the oracle on the held-out test rows.", EvalConfig()),
}


def evaluate(config: EvalConfig) -> dict[str, Any]:
    from reasonact.reasoning.mdp import State
    from reasonact.reasoning.prm.data import problem_of_row, read_rows
    from reasonact.reasoning.prm.metrics import plot_reliability, prm_metrics
    from reasonact.reasoning.study import make_scorer

    rows = read_rows(config.data)
    labels = [[bool(y) for y in r["labels"]] for r in rows]
    results = {}
    for name in config.scorers:
        scorer = make_scorer(name, rows[0]["family"])
        scores = scorer.score([State(problem_of_row(r), tuple(r["completions"])) for r in rows])
        results[name] = prm_metrics(scores, labels, config.threshold)
        m = results[name]
        print(f"{name}: step F1 {m['step_f1']:.3f}  earliest-error F1 {m['earliest_error_f1']:.3f}  ECE {m['ece']:.3f}")
    atomic_write_json(config.out / "metrics.json", results)
    plot_reliability(results, config.out / "reliability.png")
    return results
