"""How well step scores match ground-truth step labels.

* step F1: F1 of flagging wrong steps (score < threshold) over every step;
* earliest-error F1 (ProcessBench, Zheng et al. 2024): the predicted earliest error of a solution
  is its first step scoring below the threshold (none if no step does); accuracy on solutions with
  an error (exact index) and on error-free ones (predicting none), and their harmonic mean;
* calibration: a reliability diagram (10 equal-width bins of the predicted probability against the
  fraction of correct steps in each) and its expected calibration error (ECE).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def first_below(scores: Sequence[float], threshold: float) -> int:
    return next((i for i, s in enumerate(scores) if s < threshold), -1)


def prm_metrics(
    scores: Sequence[Sequence[float]], labels: Sequence[Sequence[bool]], threshold: float = 0.5, bins: int = 10
) -> dict[str, Any]:
    """scores and labels [solution][step] → step F1, earliest-error F1 and calibration."""
    if len(scores) != len(labels) or any(len(s) != len(y) for s, y in zip(scores, labels, strict=True)):
        raise ValueError("scores: expected one score per labelled step of every solution")
    pairs = [(float(s), bool(y)) for ss, ys in zip(scores, labels, strict=True) for s, y in zip(ss, ys, strict=True)]
    flagged_wrong = sum(s < threshold and not y for s, y in pairs)
    precision = flagged_wrong / max(1, sum(s < threshold for s, _ in pairs))
    recall = flagged_wrong / max(1, sum(not y for _, y in pairs))
    step_f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    erroneous, error_free = [], []
    for ss, ys in zip(scores, labels, strict=True):
        truth = first_below([float(y) for y in ys], 0.5)
        (erroneous if truth >= 0 else error_free).append(first_below(ss, threshold) == truth)
    acc_error = sum(erroneous) / len(erroneous) if erroneous else 0.0
    acc_correct = sum(error_free) / len(error_free) if error_free else 0.0
    earliest_f1 = 2 * acc_error * acc_correct / (acc_error + acc_correct) if acc_error + acc_correct else 0.0
    reliability = []
    for b in range(bins):
        inside = [(s, y) for s, y in pairs if b / bins <= s < (b + 1) / bins or (b == bins - 1 and s == 1.0)]
        if inside:
            confidence = sum(s for s, _ in inside) / len(inside)
            reliability.append(
                {
                    "bin": b,
                    "confidence": confidence,
                    "accuracy": sum(y for _, y in inside) / len(inside),
                    "count": len(inside),
                }
            )
    ece = sum(r["count"] * abs(r["confidence"] - r["accuracy"]) for r in reliability) / max(1, len(pairs))
    return {
        "steps": len(pairs),
        "solutions": len(scores),
        "step_f1": step_f1,
        "step_precision": precision,
        "step_recall": recall,
        "earliest_error_f1": earliest_f1,
        "earliest_error_acc_erroneous": acc_error,
        "earliest_error_acc_correct": acc_correct,
        "ece": ece,
        "reliability": reliability,
    }


def plot_reliability(curves: dict[str, dict[str, Any]], path: Path) -> None:
    """Reliability diagrams of several scorers in one figure (the diagonal is perfect calibration)."""
    from reasonact.plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    for name, metrics in curves.items():
        points = [(r["confidence"], r["accuracy"]) for r in metrics["reliability"]]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=f"{name} (ECE {metrics['ece']:.3f})")
    ax.set(xlabel="predicted P(step correct)", ylabel="fraction of steps correct", title="PRM calibration")
    ax.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
