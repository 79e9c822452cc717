"""The demo's typed config: one field group per section, every field overridable from the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reasonact.actions import FastConfig
from reasonact.actions.commands import ChunkSource
from reasonact.reasoning.search.common import SearchConfig
from reasonact.reasoning.study import StudyConfig


@dataclass(frozen=True)
class ActingDemo:
    """KI-VLA (tiny) co-trained on MetaWorld expert rollouts, against π0's joint training."""

    tasks: tuple[str, ...] = ("reach-v3", "push-v3", "pick-place-v3")  # MetaWorld tasks rolled out by the experts
    episodes: int = 4  # expert episodes per task; the last one of each task is held out
    max_steps: int = 120  # episode length cap (steps)
    image_size: int = 32  # camera resolution fed to the tiny ViT
    variants: tuple[str, ...] = ("ki", "pi0")  # VLA variants trained side by side (reasonact.vla.config)
    train_steps: int = 200  # optimiser steps per variant
    batch: int = 16  # (observation, chunk) pairs per step
    lr: float = 1e-3  # AdamW learning rate
    seed: int = 0


@dataclass(frozen=True)
class ClosedLoopDemo:
    """The shipped small VLA and CNN BC acting in MetaWorld beside the expert and a random policy."""

    tasks: tuple[str, ...] = ("drawer-open-v3", "push-v3", "reach-v3")  # MT10 tasks (a door task, two visual ones)
    episodes: int = 2  # episodes per task and policy, seeds seed … seed + episodes − 1
    seed: int = 10_000  # first evaluation seed (the data collection never used seeds 10,000 … 10,000 + episodes)
    num_envs: int = 2  # vectorised sub-envs per task (2 = both cores here)
    n_action_steps: int = 4  # actions of each chunk executed before re-planning (chosen on validation seeds 20,000+)


@dataclass(frozen=True)
class DemoConfig:
    name: str = "demo"  # run directory under `root`; replaced on every demo run
    root: Path = Path("runs")
    sections: tuple[str, ...] = ("fast", "vla", "closed_loop", "search")  # parts to run (reasonact.demo.SECTIONS)
    fast_source: ChunkSource = field(default_factory=lambda: ChunkSource(episodes_per_task=6))  # MetaWorld experts
    fast: FastConfig = field(default_factory=lambda: FastConfig(scale=20.0))  # γ=20: RMSE ≤ 0.01 on MetaWorld
    scales: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0)  # γ sweep for the tokens-vs-error figure
    acting: ActingDemo = field(default_factory=ActingDemo)
    closed_loop: ClosedLoopDemo = field(default_factory=ClosedLoopDemo)
    thinking: StudyConfig = field(  # the shipped tiny SFT policy + the oracle step scorer
        default_factory=lambda: StudyConfig(
            difficulty="easy",  # the level the shipped policy was trained at
            methods=("greedy", "best_of_n:majority", "beam", "tree_dfs"),
            budgets=(8,),
            count=30,
            search=SearchConfig(max_steps=6, max_step_tokens=24),
            name="search",
            resume=False,
            save_trees=False,
        )
    )
