"""`reasonact eval`: K fixed-seed episodes per task on vectorised envs → success rates with 95 % CIs.

Episodes of one task run on `num_envs` sub-envs (one process each when asynchronous, so both
cores work); a finished sub-env is reset with the next episode's seed, so the k-th episode of a
task always has seed `config.seed + k`, whatever the number of envs. A simulator that raises or
whose worker process dies ends the episodes in flight: each is re-run (same seed) `CRASH_RETRIES`
times on fresh envs, then recorded as failed ("crashed"), and the run goes on. Writes
`results.json`, `summary.png` (success per task with Wilson intervals) and rollout GIFs.

LIBERO follows the benchmark's protocol: seed s selects its fixed initial state s % 50, so the
default seeds 10,000 … 10,049 visit each of the 50 states once; results then carry a `suites`
table in the papers' form (Spatial / Object / Goal / Long / Average, `suite_table`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reasonact.atomic import atomic_write_json
from reasonact.checks import check_range
from reasonact.envs import SUITES, EnvConfig, list_tasks, make_vector_env, simulator_of
from reasonact.evaluation.policy import Policy, PolicyFactory, resolve_policy
from reasonact.stats import wilson_interval

CRASH_RETRIES = 1  # re-runs of an episode whose simulator crashed before it is recorded as failed
log = logging.getLogger(__name__)


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
    "libero": (
        "The papers' LIBERO protocol: 4 suites × 10 tasks × 50 fixed initial states, 2 cameras at 128 px.",
        EvalConfig(
            tasks=("libero_spatial", "libero_object", "libero_goal", "libero_10"),
            episodes=50,
            env=EnvConfig(image_size=128),
            videos_per_task=1,
            out=Path("runs/eval/libero"),
        ),
    ),
    "libero-tiny": (
        "A few minutes: expert on one Spatial and one Object task × 2 initial states, 32 px, in-process.",
        EvalConfig(
            tasks=(
                "libero_spatial/pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_plate",
                "libero_object/pick_up_the_alphabet_soup_and_place_it_in_the_basket",
            ),
            episodes=2,
            env=EnvConfig(image_size=32),
            num_envs=1,
            asynchronous=False,
            out=Path("runs/eval/libero_tiny"),
        ),
    ),
}


class SimulatorCrash(RuntimeError):
    """A sub-env raised, or its worker process died, during reset or step."""


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


def _simulate(call, *args, **kwargs):
    """`envs.reset` / `envs.step`, with any failure raised as a SimulatorCrash."""
    try:
        return call(*args, **kwargs)
    except Exception as err:
        raise SimulatorCrash(f"{type(err).__name__}: {err}") from err


def _close(envs, crashed: bool) -> None:
    try:
        envs.close(terminate=True) if crashed and hasattr(envs, "parent_pipes") else envs.close()
    except Exception as err:  # a crashed worker may not close cleanly; the envs are dropped either way
        log.warning("closing crashed envs failed: %r", err)


def run_task(task: str, policy: Policy, config: EvalConfig, progress=None, job=None) -> dict:
    """K episodes of one task → {successes, lengths, crashed, videos: {episode: frames}}."""
    privileged = getattr(policy, "privileged", False)
    env_config = dataclasses.replace(config.env, task=task, privileged=privileged)
    k = config.episodes
    result: dict = {
        "successes": [False] * k,
        "lengths": [0] * k,
        "crashed": [False] * k,
        "videos": {e: [] for e in range(min(config.videos_per_task, k))},
    }
    todo, crashes = deque(range(k)), [0] * k

    def done_one() -> None:
        if progress is not None:
            progress.advance(job)

    while todo:
        envs = make_vector_env([env_config] * min(config.num_envs, len(todo)), asynchronous=config.asynchronous)
        running: list[int | None] = []  # episode per sub-env, kept up to date by _run_episodes
        try:
            _run_episodes(envs, policy, config, todo, running, result, done_one)
            _close(envs, crashed=False)
        except SimulatorCrash as err:
            _close(envs, crashed=True)
            for e in reversed([e for e in running if e is not None]):
                crashes[e] += 1
                log.warning("%s episode %d (seed %d) crashed (%d×): %s", task, e, config.seed + e, crashes[e], err)
                result["lengths"][e] = 0
                result["videos"].get(e, []).clear()
                if crashes[e] <= CRASH_RETRIES:
                    todo.appendleft(e)
                else:
                    result["crashed"][e] = True
                    done_one()
    return result


def _run_episodes(envs, policy: Policy, config: EvalConfig, todo: deque, running: list, result: dict, done_one) -> None:
    """Run the episodes in `todo` (popped as they start) on `envs`; `running` mirrors the sub-envs' episodes."""
    n, dim = envs.num_envs, envs.single_action_space.shape[0]
    running[:] = [todo.popleft() for _ in range(n)]
    obs, _ = _simulate(envs.reset, seed=[config.seed + e for e in running])
    queues: list[list[np.ndarray]] = [[] for _ in range(n)]
    frames = result["videos"]
    camera = next(iter(obs["images"]), None)
    for _ in range(n):
        policy.reset()
    while any(e is not None for e in running):
        actions = np.zeros((n, dim), dtype=np.float32)
        for i, e in enumerate(running):
            if e is None:
                continue
            if e in frames and camera is not None:
                frames[e].append(obs["images"][camera][i])
            if not queues[i]:
                queues[i] = _as_chunk(policy.act(_unbatch(obs, i)), dim, config.execute_steps)
            actions[i] = queues[i].pop(0)
        obs, _, terminated, truncated, info = _simulate(envs.step, actions)
        done = np.logical_or(terminated, truncated)
        reset = np.zeros(n, dtype=bool)
        seeds: list[int | None] = [None] * n
        for i, e in enumerate(running):
            reset[i] = done[i]  # gymnasium forbids stepping a finished sub-env, idle or not
            if e is None:
                continue
            result["lengths"][e] += 1
            if done[i]:
                result["successes"][e] = bool(info["success"][i])
                done_one()
                queues[i] = []
                if todo:
                    running[i] = todo.popleft()
                    seeds[i] = config.seed + running[i]
                    policy.reset()
                else:
                    running[i] = None
        if reset.any() and any(e is not None for e in running):
            obs, _ = _simulate(envs.reset, seed=seeds, options={"reset_mask": reset})


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
        "crashed": int(sum(result.get("crashed", []))),
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
                        config.out / "videos" / f"{task.replace('/', '__')}_ep{k}.gif",  # LIBERO: "suite/task"
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
    if any(simulator_of(t) == "libero" for t in tasks):
        results["suites"] = suite_table(results["tasks"])
    atomic_write_json(config.out / "results.json", results)
    plot_summary(results, config.out / "summary.png")
    return results


def suite_table(task_results: dict) -> dict[str, dict]:
    """LIBERO success per suite as the papers report it: {"Spatial": {success_rate, ci95, tasks, episodes},
    "Object", "Goal", "Long", then any other suite by name, and "Average" (mean of the paper suites' rates)}."""
    from reasonact.envs.libero_tasks import PAPER_NAMES

    groups: dict[str, list[dict]] = {}
    for task, r in task_results.items():
        if r["simulator"] == "libero":
            groups.setdefault(task.split("/", 1)[0], []).append(r)
    order = [s for s in PAPER_NAMES if s in groups] + sorted(s for s in groups if s not in PAPER_NAMES)
    table = {}
    for suite in order:
        rows = groups[suite]
        successes, episodes = sum(r["successes"] for r in rows), sum(r["episodes"] for r in rows)
        table[PAPER_NAMES.get(suite, suite)] = {
            "success_rate": float(np.mean([r["success_rate"] for r in rows])),
            "ci95": list(wilson_interval(successes, episodes)),
            "tasks": len(rows),
            "episodes": episodes,
        }
    paper = [table[PAPER_NAMES[s]]["success_rate"] for s in PAPER_NAMES if s in groups]
    if paper:
        table["Average"] = {"success_rate": float(np.mean(paper)), "suites": len(paper)}
    return table


def plot_summary(results: dict, path: Path) -> None:
    from reasonact.plotting import pyplot

    plt = pyplot()

    tasks = list(results["tasks"])
    rates = np.array([results["tasks"][t]["success_rate"] for t in tasks])
    ci = np.array([results["tasks"][t]["ci95"] for t in tasks]).reshape(-1, 2)
    fig, ax = plt.subplots(figsize=(max(4, 0.7 * len(tasks) + 2), 3.5))
    ax.bar(range(len(tasks)), rates, yerr=[rates - ci[:, 0], ci[:, 1] - rates], capsize=3, color="tab:blue")
    labels = [t.removesuffix("-v3").split("/")[-1][:32] for t in tasks]  # LIBERO names are long: suite dropped
    ax.set_xticks(range(len(tasks)), labels, rotation=45, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95% Wilson CI)")
    ax.set_title(f"{results['config']['policy']}: {results['config']['episodes']} episodes/task")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
