"""Scripted-expert demonstrations → a LeRobot v3.0 dataset, resumable, with subtask labels.

Each frame stores the camera images, the policy-visible state, the executed action, the
instruction (as the LeRobot task), the expert's subtask phase ("reach the puck", …) and whether
the step succeeded. An episode is a pure function of its seed (scene and expert noise), and the
seed is a pure function of (config.seed, task, attempt) and is stored with the episode: so an
interrupted collection resumes exactly where it stopped, and `workers` processes can roll out
attempts in parallel while results are kept in attempt order (same dataset for any `workers`).
A crashed episode (a simulator error, a dead worker process) is re-run `CRASH_RETRIES` times with
the same seed, then counted as a failed attempt; the collection goes on either way.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reasonact.atomic import ensure_writable_dir
from reasonact.envs import (
    EnvConfig,
    ExpertNoise,
    expand_tasks,
    list_tasks,
    make_env,
    make_expert,
    make_vector_env,
    rollout,
    simulator_of,
)
from reasonact.envs.rollout import RECORDABLE

CRASH_RETRIES = 1  # re-runs of a crashed episode (same seed) before it counts as a failed attempt
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectConfig:
    tasks: tuple[str, ...] = ("mt10",)  # task names, or suite names ("mt10", "mt50", "pusht") expanded in place
    episodes_per_task: int = 10  # successful demonstrations kept per task (all attempts if keep_failures)
    out: Path = Path("runs/datasets/mt10")  # dataset root (LeRobot v3.0 layout); resumed if it exists
    env: EnvConfig = field(default_factory=lambda: EnvConfig(image_size=96))  # task/privileged are set per task
    noise: ExpertNoise = field(default_factory=ExpertNoise)  # action noise / random bursts on the expert
    keep_failures: bool = False  # also store episodes where the expert failed
    max_attempts_factor: int = 3  # give up on a task after factor × episodes_per_task attempts
    episodes_per_file: int = 10  # episodes per parquet file (a crash loses at most this many)
    workers: int = 1  # processes rolling out episodes in parallel (2 = both cores here); same dataset for any n
    seed: int = 0  # base seed; episode seeds derive from it, the task index and the attempt
    sampled_layouts: bool = (
        True  # reset with the simulator's `demo_reset` (LIBERO: fresh layouts, not its 50 eval states)
    )


PRESETS: dict[str, tuple[str, CollectConfig]] = {
    "tiny": (
        "Seconds: 2 MT10 tasks × 2 episodes at 32 px.",
        CollectConfig(
            tasks=("reach-v3", "drawer-open-v3"),
            episodes_per_task=2,
            out=Path("runs/datasets/tiny"),
            env=EnvConfig(image_size=32, max_steps=150),
            episodes_per_file=2,
        ),
    ),
    "mt10": ("MT10, 10 demos per task, 96 px corner camera.", CollectConfig()),
    "mt10-noisy": (
        "MT10 with action noise (std 0.1) and random bursts: recovery data.",
        CollectConfig(out=Path("runs/datasets/mt10_noisy"), noise=ExpertNoise(action_std=0.1, burst_prob=0.02)),
    ),
    "libero-spatial": (
        "libero_spatial, 10 demos per task on sampled layouts (not the evaluation states), 2 cameras at 64 px, "
        "2 processes.",
        CollectConfig(
            tasks=("libero_spatial",),
            out=Path("runs/datasets/libero_spatial"),
            env=EnvConfig(image_size=64),
            workers=2,
        ),
    ),
    "libero-tiny": (
        "About a minute: one libero_spatial task, 2 demos at 32 px.",
        CollectConfig(
            tasks=(
                "libero_spatial/pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_plate",
            ),
            episodes_per_task=2,
            out=Path("runs/datasets/libero_tiny"),
            env=EnvConfig(image_size=32),
            episodes_per_file=2,
        ),
    ),
    "pusht": (
        "PushT, 20 successful demos (our expert succeeds on ~35 % of seeds: up to 4 attempts per demo).",
        CollectConfig(tasks=("pusht",), episodes_per_task=20, out=Path("runs/datasets/pusht"), max_attempts_factor=4),
    ),
}


def features(env, image_size: int) -> dict[str, dict]:
    """LeRobot feature specs of the frames this collector writes."""
    space = env.observation_space
    out = {
        f"observation.images.{cam}": {
            "dtype": "image",
            "shape": [image_size, image_size, 3],
            "names": ["height", "width", "channels"],
        }
        for cam in (space["images"].spaces if image_size else {})
    }
    out["observation.state"] = {"dtype": "float32", "shape": list(space["state"].shape), "names": None}
    out["action"] = {"dtype": "float32", "shape": list(env.action_space.shape), "names": None}
    out["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    out["next.success"] = {"dtype": "bool", "shape": [1], "names": None}
    out["subtask_index"] = {"dtype": "int64", "shape": [1], "names": None}
    out["subtask"] = {"dtype": "string", "shape": [1], "names": None}
    return out


def demonstration(
    envs, task: str, noise: ExpertNoise, seed: int, options: dict | None = None
) -> tuple[dict, str, bool]:
    """One expert episode of `task` on a one-env vector env → (LeRobot frames, instruction, success); the
    expert's noise is seeded with the episode's seed, so the episode is a function of `seed`."""
    phases = envs.get_attr("language")[0].phases

    def expert(slot: int, episode_seed: int):
        return make_expert(task, noise, seed=episode_seed)

    episode = rollout(envs, [seed], expert, record=RECORDABLE, options=options)[0]
    recorded = episode.frames
    frames = {
        f"observation.images.{key.split('/', 1)[1]}": v for key, v in recorded.items() if key.startswith("images/")
    }
    frames["observation.state"] = recorded["state"].astype(np.float32)
    frames["action"] = recorded["action"]
    frames["next.reward"] = recorded["reward"].astype(np.float32)
    frames["next.success"] = recorded["success"].astype(bool)
    frames["subtask_index"] = recorded["phase"]
    frames["subtask"] = np.asarray([phases[p] for p in recorded["phase"]], dtype=object)
    return frames, episode.instruction, episode.success


def episode_seed(base: int, task: str, attempt: int) -> int:
    return (base * 1_000 + list_tasks("all").index(task)) * 100_000 + attempt


_ENVS: dict[EnvConfig, object] = {}  # one (one-env, in-process) vector env per config and process, reused


def attempt_episode(
    env_config: EnvConfig, noise: ExpertNoise, seed: int, options: dict | None = None
) -> tuple[dict[str, np.ndarray], str, bool]:
    """One expert episode, fully determined by `seed` (scene and noise), in this process or a worker."""
    if env_config not in _ENVS:
        _ENVS[env_config] = make_vector_env([env_config], asynchronous=False)
    try:
        return demonstration(_ENVS[env_config], env_config.task, noise, seed, options)
    except Exception:
        _discard(env_config)  # its simulator state is suspect: the next attempt builds a fresh env
        raise


def _discard(env_config: EnvConfig) -> None:
    env = _ENVS.pop(env_config)
    try:
        env.close()
    except Exception as err:  # a crashed simulator may not close cleanly; it is dropped either way
        log.warning("closing a crashed %s env failed: %s", env_config.task, err)


class _Workers:
    """`workers` spawned processes (or this process when 1), restarted when a worker process dies."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = self._start()

    def _start(self):
        if self.workers == 1:
            return _Inline()
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, fn, *args) -> Future:
        return self.pool.submit(fn, *args)

    def restart(self) -> None:
        self.pool.shutdown(cancel_futures=True)
        self.pool = self._start()

    def shutdown(self, cancel_futures: bool = False) -> None:
        self.pool.shutdown(cancel_futures=cancel_futures)


class _Inline:
    """The executor interface, run in this process (workers=1)."""

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as err:  # reported through the future, as a process pool would
            future.set_exception(err)
        return future

    def shutdown(self, cancel_futures: bool = False) -> None:
        for env in _ENVS.values():
            env.close()
        _ENVS.clear()


def collect(config: CollectConfig, progress: bool = True) -> dict:
    """Collect demonstrations; returns {task: {kept, attempts, expert_success}} and timing."""
    from rich.progress import Progress

    from reasonact.checks import check_range
    from reasonact.data.lerobot import LeRobotWriter

    check_range(config.episodes_per_task, "episodes_per_task", low=1)
    check_range(config.episodes_per_file, "episodes_per_file", low=1)
    check_range(config.workers, "workers", low=1)
    tasks = expand_tasks(config.tasks)
    check_out(config.out)
    simulators = {simulator_of(t).name for t in tasks}
    if len(simulators) > 1:
        raise ValueError(f"tasks: one dataset holds one robot; received tasks of {sorted(simulators)}")
    simulator = simulator_of(tasks[0])
    probe = make_env(dataclasses.replace(config.env, task=tasks[0], privileged=True))
    writer = LeRobotWriter(
        config.out, simulator.fps, features(probe, config.env.image_size), simulator.name, config.episodes_per_file
    )
    probe.close()
    verify_data_files(config.out, writer.episodes)
    report: dict = {"tasks": {}}
    start = time.perf_counter()
    executor = _Workers(config.workers)
    try:
        with Progress(disable=not progress) as bar:
            job = bar.add_task("demonstrations", total=len(tasks) * config.episodes_per_task)
            for task in tasks:
                report["tasks"][task] = _collect_task(task, config, writer, executor, lambda: bar.advance(job))
    finally:
        executor.shutdown(cancel_futures=True)
    writer.flush()
    report["episodes"] = writer.num_episodes
    report["frames"] = writer.info["total_frames"]
    report["seconds"] = time.perf_counter() - start
    return report


def check_out(out: Path) -> None:
    """`--out` must be a new or empty directory, or an existing dataset to resume, and writable:
    checked before any rollout, so a bad path costs seconds, not a collection."""
    if out.is_dir() and any(out.iterdir()) and not (out / "meta" / "info.json").is_file():
        raise ValueError(f"out: {out} is a non-empty directory without a dataset (no meta/info.json); choose a new one")
    ensure_writable_dir(out, "out")


def verify_data_files(root: Path, episodes: list[dict]) -> None:
    """Before resuming: every data file of the committed episodes reads back whole, with the frames its
    episodes claim (a truncated or corrupt file would otherwise be extended, and fail only when loaded)."""
    import pyarrow.parquet as pq

    from reasonact.data.lerobot import DATA_PATH

    files: dict[tuple[int, int], list[dict]] = {}
    for episode in episodes:
        files.setdefault((episode["data/chunk_index"], episode["data/file_index"]), []).append(episode)
    for (chunk, file), rows in files.items():
        path = root / DATA_PATH.format(chunk_index=chunk, file_index=file)
        expected = np.concatenate([np.arange(r["dataset_from_index"], r["dataset_to_index"]) for r in rows])
        try:
            index = pq.read_table(path).column("index").to_numpy()
        except Exception as err:  # pyarrow raises several types for truncated or garbled files
            problem = f"cannot be read ({type(err).__name__}: {err})"
        else:
            if np.array_equal(index, expected):
                continue
            problem = f"holds {len(index)} frames, its episodes {len(expected)}"
        raise ValueError(
            f"{path}: {problem}; refusing to resume the dataset at {root}: move it aside (or restore the file) "
            "and collect into a new --out"
        )


def _collect_task(task: str, config: CollectConfig, writer, executor, advance) -> dict:
    """Attempts in seed order, `workers` in flight; results are consumed in attempt order, so the
    kept episodes do not depend on the number of workers."""
    env_config = dataclasses.replace(config.env, task=task, privileged=True)
    done = [e for e in writer.episodes if e.get("env_task") == task]
    first = 1 + max((e["attempt"] for e in done), default=-1)
    kept, tried, successes, crashed = len(done), 0, 0, 0
    crashes: dict[int, int] = {}  # attempt → times it crashed
    for _ in range(kept):
        advance()
    budget = config.max_attempts_factor * config.episodes_per_task
    pending: deque = deque()
    attempt = first

    options = simulator_of(task).demo_reset if config.sampled_layouts else None

    def submit(seed: int) -> Future:
        return executor.submit(attempt_episode, env_config, config.noise, seed, options)

    while kept < config.episodes_per_task and tried < budget:
        while len(pending) < config.workers and attempt - first < budget:
            seed = episode_seed(config.seed, task, attempt)
            pending.append((attempt, seed, submit(seed)))
            attempt += 1
        this, seed, future = pending.popleft()
        try:
            frames, instruction, success = future.result()
        except Exception as err:  # a simulator error, or a worker process that died (the module docstring)
            if isinstance(err, BrokenProcessPool):  # every episode in flight died with it: run them again
                executor.restart()
                pending = deque((a, s, submit(s)) for a, s, _ in pending)
            crashes[this] = crashes.get(this, 0) + 1
            log.warning("%s attempt %d (seed %d) crashed (%d×): %r", task, this, seed, crashes[this], err)
            if crashes[this] <= CRASH_RETRIES:
                pending.appendleft((this, seed, submit(seed)))
            else:
                tried, crashed = tried + 1, crashed + 1
            continue
        tried, successes = tried + 1, successes + success
        if success or config.keep_failures:
            extra = {"env_task": task, "attempt": this, "seed": seed, "expert_success": success}
            writer.add_episode(instruction, frames, extra)
            kept += 1
            advance()
    for _, _, future in pending:
        future.cancel()
    report = {"kept": kept, "attempts": tried, "expert_success": successes / tried if tried else None}
    return {**report, "crashed": crashed} if crashed else report  # attempts that crashed CRASH_RETRIES + 1 times
