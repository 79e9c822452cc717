"""CLI verb `reasonact eval run`: success rates with 95 % CIs, rollout GIFs and a summary plot."""

from __future__ import annotations

from reasonact.evaluation.harness import PRESETS, EvalConfig

__all__ = ["PRESETS", "run"]


def run(config: EvalConfig) -> dict:
    """Evaluate `config.policy` on `config.tasks`; prints a table, writes results under `config.out`."""
    from rich.console import Console
    from rich.table import Table

    from reasonact.evaluation.harness import evaluate

    results = evaluate(config)
    table = Table(title=f"{config.policy}: {config.episodes} episodes per task (seeds from {config.seed})")
    table.add_column("task", overflow="fold")  # LIBERO names are long and differ near their ends: never elided
    for column in ("success", "95% CI", "mean length"):
        table.add_column(column)
    for task, r in results["tasks"].items():
        table.add_row(
            task, f"{r['success_rate']:.2f}", f"[{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]", f"{r['mean_length']:.0f}"
        )
    overall = results["overall"]
    table.add_row(
        "overall", f"{overall['success_rate']:.2f}", f"[{overall['ci95'][0]:.2f}, {overall['ci95'][1]:.2f}]", ""
    )
    Console().print(table)
    if "suites" in results:  # LIBERO: the papers' per-suite row
        suites = Table(title="LIBERO success per suite (papers' form)")
        for name in results["suites"]:
            suites.add_column(name)
        suites.add_row(*(f"{r['success_rate']:.1%}" for r in results["suites"].values()))
        Console().print(suites)
    print(f"→ {config.out / 'results.json'}, {config.out / 'summary.png'}, {config.out / 'videos'}")
    return results
