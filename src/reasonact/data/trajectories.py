"""Action trajectories to fit and benchmark action tokenizers on, and their cutting into chunks.

Two sources:
* `metaworld_expert_trajectories` — the scripted expert policies shipped with MetaWorld
  (`metaworld.policies`), run state-only (no rendering) through `reasonact.envs.rollout`;
  the real robot-action source.
* `smooth_trajectories` — a documented synthetic fallback: per dimension a sum of three
  sinusoids with random frequency (0.1–1.5 cycles per 50 steps), phase and amplitude, plus a
  slow linear drift; every value in [-1, 1]. Used by tests that must not need a simulator.
"""

from __future__ import annotations

import numpy as np
from rich.progress import track

from reasonact.checks import check_range

METAWORLD_DEFAULT_TASKS = ("reach-v3", "push-v3", "pick-place-v3", "drawer-open-v3", "button-press-v3")


def metaworld_expert_trajectories(
    tasks: tuple[str, ...] = METAWORLD_DEFAULT_TASKS,
    episodes_per_task: int = 10,
    steps: int = 150,
    seed: int = 0,
    progress: bool = False,
) -> list[np.ndarray]:
    """Roll out MetaWorld's scripted expert for `steps` steps per episode → list of (steps, 4).

    Episodes continue after success (the expert holds its goal) so every trajectory has the
    same length. Actions are clipped to the action space, as the simulator applies them.
    """
    from reasonact.envs import EnvConfig, expert_episodes, simulator_of

    check_range(episodes_per_task, "episodes_per_task", low=1)
    check_range(steps, "steps", low=1)
    others = [t for t in tasks if simulator_of(t).name != "metaworld"]  # unknown names: closest-name error
    if others:
        raise ValueError(f"tasks: expected MetaWorld tasks, received {others}")
    seeds = [seed * 100_003 + episode for episode in range(episodes_per_task)]
    trajectories = []
    for task in track(tasks, description="expert rollouts", disable=not progress):
        config = EnvConfig(task=task, image_size=0, max_steps=steps, terminate_on_success=False)
        episodes = expert_episodes(config, seeds, record=("action",))
        trajectories += [episode.frames["action"].astype(np.float64) for episode in episodes]  # (steps, 4) each
    return trajectories


def smooth_trajectories(n: int, steps: int = 150, dim: int = 7, seed: int = 0) -> list[np.ndarray]:
    """n synthetic smooth trajectories (steps, dim) in [-1, 1]; see the module docstring."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[None, :, None] / 50.0  # (1, T, 1) time in units of 50 steps
    freq = rng.uniform(0.1, 1.5, (n, 1, dim, 3))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, dim, 3))
    amp = rng.uniform(0.05, 0.3, (n, 1, dim, 3))
    drift = rng.uniform(-0.1, 0.1, (n, 1, dim))
    x = (amp * np.sin(2 * np.pi * freq * t[..., None] + phase)).sum(-1) + drift * t  # (n, T, dim)
    return list(np.clip(x, -1.0, 1.0))


def chunk_trajectories(trajectories: list[np.ndarray], horizon: int, stride: int = 1) -> np.ndarray:
    """Every full window of `horizon` steps, `stride` apart → chunks (b, horizon, d)."""
    check_range(horizon, "horizon", low=1)
    check_range(stride, "stride", low=1)
    chunks = [traj[s : s + horizon] for traj in trajectories for s in range(0, len(traj) - horizon + 1, stride)]
    if not chunks:
        longest = max((len(t) for t in trajectories), default=0)
        raise ValueError(f"horizon: expected <= the longest trajectory ({longest} steps), received {horizon}")
    return np.stack(chunks)
