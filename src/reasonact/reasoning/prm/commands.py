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
    "small": (
        "Small policy at reasoning-gym's default arithmetic difficulty: 48 train problems (checker + MC), 40 test.",
        LabelConfig(difficulty="default", policy="small", train_problems=48, out=Path("runs/prm_labels_small")),
    ),
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
    """Share of steps whose hard MC label (any rollout succeeds) equals the checker's label, beside
    both labels' positive rates and Cohen's kappa: when almost every step is wrong (a weak policy
    on hard problems), raw agreement is high by chance alone, and kappa says how much is not."""
    pairs = [
        (m > 0, bool(y)) for r in rows if "mc_labels" in r for m, y in zip(r["mc_labels"], r["labels"], strict=True)
    ]
    n = len(pairs)
    same = sum(a == b for a, b in pairs)
    mc_rate = sum(a for a, _ in pairs) / n if n else None
    checker_rate = sum(b for _, b in pairs) / n if n else None
    return {
        "steps": n,
        "agreement": same / n if n else None,
        "checker_correct_mc_wrong": sum(b and not a for a, b in pairs),
        "checker_wrong_mc_correct": sum(a and not b for a, b in pairs),
        "checker_positive_rate": checker_rate,
        "mc_positive_rate": mc_rate,
        "kappa": cohen_kappa(same / n, mc_rate, checker_rate) if n else None,
    }


def cohen_kappa(observed: float, rate_a: float, rate_b: float) -> float | None:
    """(p_o - p_e) / (1 - p_e) with p_e the agreement of two independent raters with these positive
    rates; None when chance agreement is already 1 (both raters constant and equal)."""
    chance = rate_a * rate_b + (1 - rate_a) * (1 - rate_b)
    return None if chance == 1 else (observed - chance) / (1 - chance)


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
    "small": (
        "Every small PRM (default difficulty) and the oracle on the held-out test rows.",
        EvalConfig(
            data=Path("runs/prm_labels_small/test.jsonl"),
            scorers=tuple(s.replace("tiny", "small") for s in EvalConfig().scorers),
            out=Path("runs/prm_eval_small"),
        ),
    ),
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
