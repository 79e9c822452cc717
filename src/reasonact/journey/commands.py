"""CLI verbs of `reasonact journey`: study (shortcut vs journey, + DPO, GRPO, STaR);
`bench` lives in benchmarks/journey.py."""

from __future__ import annotations

from pathlib import Path

from reasonact.journey.construct import ConstructConfig
from reasonact.journey.study import JourneyStudyConfig
from reasonact.training.grpo import RECIPE, GRPOConfig
from reasonact.training.run_loop import OptimConfig
from reasonact.training.star import STaRConfig

STUDY_PRESETS: dict[str, tuple[str, JourneyStudyConfig]] = {
    "tiny": (
        "Pipeline smoke (about a minute): one seed, 12 problems, a few steps per trainer.",
        JourneyStudyConfig(
            seeds=(0,),
            problems=12,
            test=8,
            construct=ConstructConfig(width=3, attempts=2, max_rounds=12),
            sft=OptimConfig(steps=4, lr=5e-4),
            dpo=OptimConfig(steps=2, lr=1e-4),
            grpo=GRPOConfig(questions=2, group=4, pool=20, optim=OptimConfig(steps=2, lr=5e-5, warmup=0.0)),
            star=STaRConfig(rounds=1, problems=8, sft=OptimConfig(steps=2, lr=5e-4)),
            name="journey_study_tiny",
            out=None,
        ),
    ),
    "quick": (
        "Small budgets (~5 min with one thread here): 3 seeds, 80 tree problems, 30 SFT steps, 60 test problems.",
        JourneyStudyConfig(
            problems=80,
            test=60,
            construct=ConstructConfig(width=4, attempts=3, max_rounds=24),
            sft=OptimConfig(steps=30, lr=1e-3),
            batch=16,
            dpo=OptimConfig(steps=10, lr=1e-4),
            grpo=GRPOConfig(
                reward="process", questions=4, optim=OptimConfig(steps=8, lr=1e-4, warmup=0.0, checkpoint_every=4)
            ),
            star=STaRConfig(rounds=1, problems=40, batch=16, sft=OptimConfig(steps=30, lr=1e-3)),
            eval_max_steps=10,
            name="journey_study_quick",
            out=Path("docs/results/journey_study_quick"),
        ),
    ),
    "default": (
        "The study (~2.5 h here): 3 seeds, 300 tree problems, 200 SFT steps, GRPO 1000 steps, 2 STaR rounds.",
        JourneyStudyConfig(
            problems=300,
            test=100,
            construct=ConstructConfig(width=4, attempts=3, max_rounds=24),
            sft=OptimConfig(steps=200, lr=5e-4),
            batch=32,
            dpo=OptimConfig(steps=40, lr=5e-5),
            grpo=RECIPE,  # 1000 steps × 16 × 8: the study's old 40 × 8 × 8 moved nothing (docs/journey.md)
            star=STaRConfig(rounds=2, problems=200, batch=32, sft=OptimConfig(steps=100, lr=5e-4)),
            eval_max_steps=10,
            out=Path("docs/results/journey_study"),
        ),
    ),
}


def study(config: JourneyStudyConfig) -> None:
    import torch

    from reasonact.journey.study import run_study

    torch.set_num_threads(1)  # tiny policies on a busy 2-core machine: one thread is several times faster
    summary = run_study(config, progress=True)
    ci = summary["ci"]
    for arm, row in summary["arms"].items():
        print(f"{arm:>13}: accuracy {row['accuracy']:.3f} [{row['ci'][0]:.3f}, {row['ci'][1]:.3f}]")
    print(
        f"journey − shortcut {summary['journey_minus_shortcut']:+.3f} {ci['journey_minus_shortcut']}, "
        f"GRPO gain {summary['grpo_gain']:+.3f}, STaR gain {summary['star_gain']:+.3f}"
    )
    print(f"→ {config.root / config.name}/summary.{{json,md,png}}" + (f", {config.out}.*" if config.out else ""))
