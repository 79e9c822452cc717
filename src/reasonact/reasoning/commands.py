"""CLI verb `reasonact search run` (a search study); `train-policy` lives with its trainer
(training/policy_sft.py), `study` in verifier_study.py, `bench` in benchmarks/search.py."""

from __future__ import annotations

from pathlib import Path

from reasonact.reasoning.search.common import SearchConfig
from reasonact.reasoning.study import StudyConfig

STUDY_PRESETS: dict[str, tuple[str, StudyConfig]] = {
    "tiny": (
        "Seconds-to-minutes smoke: tiny SFT policy, 4 easy test problems, greedy/best-of-N/beam/MCTS.",
        StudyConfig(
            difficulty="easy",
            methods=("greedy", "best_of_n", "beam", "mcts"),
            budgets=(4,),
            count=4,
            search=SearchConfig(max_steps=6, max_step_tokens=24, simulations=4),
            name="search_tiny",
        ),
    ),
    "small": (
        "Accuracy vs tokens of every method at N = 2 … 32 on 60 easy test problems (tiny SFT policy, oracle PRM).",
        StudyConfig(
            difficulty="easy",
            methods=(
                "greedy",
                "best_of_n:majority",
                "best_of_n:weighted",
                "best_of_n:argmax",
                "beam",
                "dvts",
                "mcts",
                "tree_dfs",
            ),
            budgets=(2, 4, 8, 16, 32),
            count=60,
            search=SearchConfig(max_steps=6, max_step_tokens=24, selection="argmax"),
            name="search_small",
            out=Path("benchmarks/results/search_study"),
        ),
    ),
    "gemma": (
        "The real Gemma 3 270M (few-shot) on 10 arithmetic problems, N = 4, 8.",
        StudyConfig(
            policy="gemma",
            methods=("greedy", "best_of_n", "beam", "mcts"),
            budgets=(4, 8),
            count=10,
            search=SearchConfig(max_steps=6, max_step_tokens=40, selection="argmax"),  # longest reference step: 35
            name="search_gemma",
        ),
    ),
}


def run(config: StudyConfig) -> None:
    from reasonact.reasoning.study import run_study

    summary = run_study(config, progress=True)
    for row in summary["rows"]:
        print(
            f"{row['method']:>10} N={row['budget']:<3} accuracy {row['accuracy']:.2f}  "
            f"tokens {row['mean_tokens']:.0f}  errors {row['errors']}"
        )
    comparable: dict[str, list[bool]] = {}
    for row in summary["vs_majority"]:
        if row["beats_majority"] is not None:
            comparable.setdefault(row["method"], []).append(row["beats_majority"])
    if comparable:
        wins = ", ".join(f"{m} {sum(w)}/{len(w)}" for m, w in sorted(comparable.items()))
        print(f"beats majority voting at ≤ its token cost (budgets where comparable): {wins}")
    print(f"→ {config.root / config.name}/summary.json, plots/accuracy_vs_tokens.png")
