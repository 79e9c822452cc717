"""LIBERO speeds and scripted-expert success: the `simulators.libero` entry of `reasonact data bench --suite libero`.

Measured on our env (`reasonact.envs.libero.LiberoEnv`); the machine is shared, so ratios and
orders of magnitude, not absolute times, are the result:
* `steps_per_s`: state only (no rendering), the expert's actions, over every expert episode;
* `steps_per_s_with_render`: the expert on `task` with both cameras at `image_size`;
* `render_fps`: frames/s of one camera at `image_size`;
* `expert_success`: suite → mean over its tasks of the scripted expert's success on the
  benchmark's initial states 0 … `episodes` − 1 (state only), with `expert_success_per_task`;
  tasks run in `workers` processes, one task per process at a time;
* `demos_per_minute`: successful expert episodes with both cameras recorded, per minute of
  stepping (env construction, ~10–20 s per task, excluded).

Every expert episode is appended to `log` (JSON lines) as it ends; episodes already logged are
not run again, so an interrupted benchmark resumes. Delete the log after changing the expert.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import reasonact.envs  # noqa: F401  (sets MUJOCO_GL=egl before robosuite imports mujoco)
from reasonact.envs.libero_tasks import PAPER_SUITES

SPATIAL_TASK = "libero_spatial/pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_plate"


@dataclass(frozen=True)
class LiberoBenchConfig:
    task: str = SPATIAL_TASK  # task timed for steps/s with rendering, render fps and demos/minute
    image_size: int = 96  # render size (pixels) for render_fps, steps/s with rendering and demos/minute
    frames: int = 60  # frames per render timing
    suites: tuple[str, ...] = PAPER_SUITES  # suites whose expert success is measured
    tasks_per_suite: int = 0  # first n tasks of each suite (0 = all)
    episodes: int = 20  # expert episodes per task (initial states 0 … episodes − 1); 0 = only those already logged
    workers: int = 2  # processes measuring expert success (2 = both cores here)
    demos: int = 2  # rendered expert episodes timed for demos/minute
    log: Path = Path("runs/bench/libero_episodes.jsonl")  # per-episode records, reused (committed: benchmarks/results/)


TINY = LiberoBenchConfig(
    suites=("libero_spatial",),
    tasks_per_suite=1,
    episodes=1,
    workers=1,
    demos=1,
    frames=20,
    log=Path("runs/bench/libero_episodes_tiny.jsonl"),
)


def _read_log(path: Path) -> dict[tuple[str, int], dict]:
    """(task, seed) → record; a torn last line (an interrupted write) is ignored."""
    records: dict[tuple[str, int], dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            records[record["task"], record["seed"]] = record
    return records


def logged_expert_episodes(task: str, seeds: list[int], log: Path) -> list[dict]:
    """The scripted expert on `task` (state only) from each seed's initial state; appends each record to `log`."""
    from reasonact.envs import EnvConfig, expert_episodes

    records = []

    def logged(episode) -> None:
        record = {
            "task": task,
            "seed": episode.seed,
            "success": episode.success,
            "steps": episode.length,
            "seconds": episode.seconds,
        }
        with log.open("a") as f:  # one short appended line: atomic enough between two processes
            f.write(json.dumps(record) + "\n")
        records.append(record)

    expert_episodes(EnvConfig(task=task, image_size=0), seeds, on_episode=logged)
    return records


def expert_success(config: LiberoBenchConfig) -> dict[str, list[dict]]:
    """task → episode records for seeds 0 … episodes − 1, running only those missing from the log
    (`episodes` = 0: every logged episode of the tasks, running none; tasks without any are left out)."""
    from reasonact.envs import list_tasks

    tasks = [t for s in config.suites for t in list_tasks(s)[: config.tasks_per_suite or None]]
    config.log.parent.mkdir(parents=True, exist_ok=True)
    logged = _read_log(config.log)
    if config.episodes == 0:
        runs = {t: [r for (task, _), r in sorted(logged.items()) if task == t] for t in tasks}
        return {t: rs for t, rs in runs.items() if rs}
    jobs = [(t, [s for s in range(config.episodes) if (t, s) not in logged], config.log) for t in tasks]
    jobs = [job for job in jobs if job[1]]
    if config.workers > 1 and len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(min(config.workers, len(jobs))) as pool:
            pool.starmap(logged_expert_episodes, jobs, chunksize=1)
    else:
        for job in jobs:
            logged_expert_episodes(*job)
    logged = _read_log(config.log)
    return {t: [logged[t, s] for s in range(config.episodes) if (t, s) in logged] for t in tasks}


def libero_bench(config: LiberoBenchConfig) -> dict:
    """The `simulators.libero` entry: {works, steps_per_s, render_fps, expert_success: {suite: rate}, …}."""
    from reasonact.envs import EnvConfig, make_expert, make_vector_env, rollout

    load_start = list(os.getloadavg())
    runs = expert_success(config)
    per_task = {t: float(np.mean([r["success"] for r in rs])) for t, rs in runs.items()}
    suites = {
        s: float(np.mean([r for t, r in per_task.items() if t.startswith(s + "/")]))
        for s in config.suites
        if any(t.startswith(s + "/") for t in per_task)
    }
    steps = sum(r["steps"] for rs in runs.values() for r in rs)
    seconds = sum(r["seconds"] for rs in runs.values() for r in rs)

    env_config = EnvConfig(task=config.task, image_size=config.image_size, privileged=True)
    envs, expert = make_vector_env([env_config], asynchronous=False), make_expert(config.task)
    try:
        envs.reset(seed=0)
        env = envs.envs[0].unwrapped
        renderer, start = env.renderer, time.perf_counter()
        for _ in range(config.frames):
            renderer.render(env.data, env.cameras[0])
        render_fps = config.frames / (time.perf_counter() - start)
        demos = rollout(envs, range(config.demos), lambda slot, seed: expert)  # both cameras rendered every step
    finally:
        envs.close()
    render_seconds = sum(d.seconds for d in demos)
    return {
        "works": True,
        "steps_per_s": steps / seconds,
        "steps_per_s_with_render": sum(d.length for d in demos) / render_seconds,
        "render_fps": render_fps,
        "image_size": config.image_size,
        "cameras": 2,
        "expert_success": suites,
        "expert_success_per_task": per_task,
        "episodes_per_task": {t: len(rs) for t, rs in runs.items()},
        "demos_per_minute": 60.0 * sum(d.success for d in demos) / render_seconds,
        "loadavg": [load_start, list(os.getloadavg())],
    }


def broken_entry(err: Exception, measures: tuple[str, ...]) -> dict:
    """The entry of a simulator that is missing or broken (a result, not a crash of the benchmark):
    works False, the error, and None for each of its `measures`."""
    return {"works": False, "error": f"{type(err).__name__}: {err}", **dict.fromkeys(measures)}


def libero_entry(config: LiberoBenchConfig) -> dict:
    """`libero_bench`, or `broken_entry` when LIBERO is missing or broken."""
    try:
        return libero_bench(config)
    except Exception as err:
        return broken_entry(err, ("steps_per_s", "render_fps", "expert_success", "demos_per_minute"))
