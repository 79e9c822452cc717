"""`reasonact eval`: K fixed-seed episodes per task on vectorised envs → success rates with 95 % CIs.

Episodes of one task run on `num_envs` sub-envs (one process each when asynchronous, so both
cores work); a finished sub-env is reset with the next episode's seed, so the k-th episode of a
task always has seed `config.seed + k`, whatever the number of envs. Writes `results.json`,
`summary.png` (success per task with Wilson intervals) and rollout GIFs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reasonact.atomic import atomic_write_json
from reasonact.checks import check_range
from reasonact.envs import SUITES, EnvConfig, list_tasks, make_vector_env, simulator_of
from reasonact.evaluation.policy import Policy, PolicyFactory, resolve_policy


@dataclass(frozen=True)
class EvalConfig:
    tasks: tuple[str, ...] = ("mt10",)  # task names or suites ("mt10", "mt50", "pusht")
    episodes: int = 10  # K: episodes per task, seeds seed .. seed + K - 1
    policy: str = "expert"  # "expert", "random" or "package.module:factory" (task → Policy)
    env: EnvConfig = field(default_factory=lambda: EnvConfig(image_size=96))  # task is set per task
    num_envs: int = 2  # vectorised sub-envs per task (2 = both cores here)
    asynchronous: bool = True  # one process per sub-env
    execute_steps: int = 0  # actions of each predicted chunk executed before re-planning (0 = all)
    videos_per_task: int = 1  # rollouts saved as GIF per task (first-camera frames)
    seed: int = 10_000  # evaluation seeds start here (collection uses different ones)
    out: Path = Path("runs/eval/mt10")  # results.json, summary.png, videos/


PRESETS: dict[str, tuple[str, EvalConfig]] = {
    "tiny": (
        "Seconds: expert on 2 tasks × 2 episodes, 32 px, in-process.",
        EvalConfig(
            tasks=("reach-v3", "drawer-close-v3"),
            episodes=2,
            env=EnvConfig(image_size=32, max_steps=120),
            num_envs=1,
            asynchronous=False,
            out=Path("runs/eval/tiny"),
        ),
    ),
    "mt10": ("MT10, 10 episodes per task, 96 px, 2 processes.", EvalConfig()),
}


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval for a binomial proportion (Wilson 1927); (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _unbatch(obs: dict, i: int) -> dict:
    out = {
        "images": {cam: v[i] for cam, v in obs["images"].items()},
        "state": obs["state"][i],
        "instruction": obs["instruction"][i],
    }
    if "privileged" in obs:
        out["privileged"] = obs["privileged"][i]
    return out


def _as_chunk(action: np.ndarray, dim: int, execute: int) -> list[np.ndarray]:
    action = np.asarray(action, dtype=np.float32)
    if action.shape == (dim,):
        return [action]
    if action.ndim != 2 or action.shape[1] != dim:
        raise ValueError(
            f"policy.act: expected an action ({dim},) or a chunk (H, {dim}), received shape {action.shape}"
        )
    return list(action[: execute or len(action)])


def run_task(task: str, policy: Policy, config: EvalConfig, progress=None, job=None) -> dict:
    """K episodes of one task → {successes, lengths, videos: [frames]}."""
    privileged = getattr(policy, "privileged", False)
    env_config = dataclasses.replace(config.env, task=task, privileged=privileged)
    n = min(config.num_envs, config.episodes)
    envs = make_vector_env([env_config] * n, asynchronous=config.asynchronous)
    dim = envs.single_action_space.shape[0]
    try:
        obs, _ = envs.reset(seed=[config.seed + k for k in range(n)])
        episode = list(range(n))  # episode id per slot (None when idle)
        next_episode, queues = n, [[] for _ in range(n)]
        lengths, successes = [0] * config.episodes, [False] * config.episodes
        frames: dict[int, list[np.ndarray]] = {k: [] for k in range(min(config.videos_per_task, config.episodes))}
        camera = next(iter(obs["images"]), None)
        for _ in range(n):
            policy.reset()
        while any(e is not None for e in episode):
            actions = np.zeros((n, dim), dtype=np.float32)
            for i, e in enumerate(episode):
                if e is None:
                    continue
                if e in frames and camera is not None:
                    frames[e].append(obs["images"][camera][i])
                if not queues[i]:
                    queues[i] = _as_chunk(policy.act(_unbatch(obs, i)), dim, config.execute_steps)
                actions[i] = queues[i].pop(0)
            obs, _, terminated, truncated, info = envs.step(actions)
            done = np.logical_or(terminated, truncated)
            reset = np.zeros(n, dtype=bool)
            seeds: list[int | None] = [None] * n
            for i, e in enumerate(episode):
                reset[i] = done[i]  # gymnasium forbids stepping a finished sub-env, idle or not
                if e is None:
                    continue
                lengths[e] += 1
                if done[i]:
                    successes[e] = bool(info["success"][i])
                    if progress is not None:
                        progress.advance(job)
                    queues[i] = []
                    if next_episode < config.episodes:
                        episode[i], seeds[i] = next_episode, config.seed + next_episode
                        next_episode += 1
                        policy.reset()
                    else:
                        episode[i] = None
            if reset.any() and any(e is not None for e in episode):
                obs, _ = envs.reset(seed=seeds, options={"reset_mask": reset})
    finally:
        envs.close()
    return {"successes": successes, "lengths": lengths, "videos": frames}


def summarise(task: str, result: dict) -> dict:
    s, lengths = result["successes"], np.asarray(result["lengths"])
    low, high = wilson_interval(sum(s), len(s))
    ok = lengths[np.asarray(s, dtype=bool)]
    return {
        "episodes": len(s),
        "successes": int(sum(s)),
        "success_rate": sum(s) / len(s),
        "ci95": [low, high],
        "mean_length": float(lengths.mean()),
        "mean_length_success": float(ok.mean()) if len(ok) else None,
        "simulator": simulator_of(task),
    }


def evaluate(config: EvalConfig, policy: Policy | PolicyFactory | None = None, show_progress: bool = True) -> dict:
    """Run the evaluation; `policy` (an instance or a task → policy factory) overrides `config.policy`."""
    import imageio.v3 as iio
    from rich.progress import Progress

    check_range(config.episodes, "episodes", low=1)
    check_range(config.num_envs, "num_envs", low=1)
    tasks = [t for name in config.tasks for t in (list_tasks(name) if name in SUITES else [name])]
    for task in tasks:
        simulator_of(task)
    factory = policy if policy is not None else resolve_policy(config.policy, config.seed)
    results: dict = {
        "config": {
            "policy": config.policy if policy is None else type(policy).__name__,
            "episodes": config.episodes,
            "seed": config.seed,
            "tasks": tasks,
        },
        "tasks": {},
    }
    (config.out / "videos").mkdir(parents=True, exist_ok=True)
    with Progress(disable=not show_progress) as bar:
        job = bar.add_task("evaluating", total=len(tasks) * config.episodes)
        for task in tasks:
            is_instance = isinstance(factory, Policy) and not isinstance(factory, type)  # a class is a factory
            task_policy = factory if is_instance else factory(task)
            result = run_task(task, task_policy, config, bar, job)
            results["tasks"][task] = summarise(task, result)
            for k, frames in result["videos"].items():
                if frames:
                    iio.imwrite(
                        config.out / "videos" / f"{task}_ep{k}.gif",
                        np.stack(frames),
                        extension=".gif",
                        duration=50,
                        loop=0,
                    )
    rates = [r["success_rate"] for r in results["tasks"].values()]
    total = sum(r["successes"] for r in results["tasks"].values())
    episodes = sum(r["episodes"] for r in results["tasks"].values())
    results["overall"] = {
        "success_rate": float(np.mean(rates)),
        "ci95": list(wilson_interval(total, episodes)),
        "episodes": episodes,
    }
    atomic_write_json(config.out / "results.json", results)
    plot_summary(results, config.out / "summary.png")
    return results


def plot_summary(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results["tasks"])
    rates = np.array([results["tasks"][t]["success_rate"] for t in tasks])
    ci = np.array([results["tasks"][t]["ci95"] for t in tasks]).reshape(-1, 2)
    fig, ax = plt.subplots(figsize=(max(4, 0.7 * len(tasks) + 2), 3.5))
    ax.bar(range(len(tasks)), rates, yerr=[rates - ci[:, 0], ci[:, 1] - rates], capsize=3, color="tab:blue")
    ax.set_xticks(range(len(tasks)), [t.removesuffix("-v3") for t in tasks], rotation=45, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95% Wilson CI)")
    ax.set_title(f"{results['config']['policy']}: {results['config']['episodes']} episodes/task")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
