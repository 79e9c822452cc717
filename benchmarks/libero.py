"""LIBERO speeds and scripted-expert success: the `simulators.libero` entry of `reasonact data bench --suite libero`.

Measured on our env (`reasonact.envs.libero.LiberoEnv`), in one process (the machine is shared:
ratios and orders of magnitude, not absolute times, are the result):
* `steps_per_s`: state only (no rendering), the expert's actions on one task;
* `steps_per_s_with_render`: the same with both cameras at `image_size`;
* `render_fps`: frames/s of one camera at `image_size`;
* `expert_success`: suite → scripted-expert success over `episodes` per task (state only), with
  `expert_success_per_task` beside it;
* `demos_per_minute`: successful expert episodes with both cameras recorded, per minute of
  stepping (env construction, ~8 s per task, excluded).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import reasonact.envs  # noqa: F401  (sets MUJOCO_GL=egl before robosuite imports mujoco)
from reasonact.atomic import atomic_write_json

SPATIAL_TASK = "libero_spatial/pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_plate"


@dataclass(frozen=True)
class LiberoBenchConfig:
    task: str = SPATIAL_TASK  # task timed for steps/s, render fps and demos/minute
    image_size: int = 96  # render size (pixels) for render_fps, steps/s with rendering and demos/minute
    frames: int = 60  # frames per render timing
    suites: tuple[str, ...] = ("libero_spatial", "libero_object", "libero_goal", "libero_10")  # expert success
    tasks_per_suite: int = 0  # first n tasks of each suite (0 = all ten)
    episodes: int = 2  # expert episodes per task (benchmark initial states 0 … episodes − 1)
    demos: int = 2  # rendered expert episodes timed for demos/minute
    out: Path = Path("benchmarks/results/libero.json")


PRESETS: dict[str, tuple[str, LiberoBenchConfig]] = {
    "default": ("All 40 paper tasks × 2 episodes, 96 px (~25 min on 2 busy cores).", LiberoBenchConfig()),
    "tiny": (
        "About a minute: one spatial task, one episode per measurement.",
        LiberoBenchConfig(
            suites=("libero_spatial",),
            tasks_per_suite=1,
            episodes=1,
            demos=1,
            frames=20,
            out=Path("benchmarks/results/libero_tiny.json"),
        ),
    ),
}


def _episode(env, expert, seed: int) -> tuple[bool, int, float]:
    """One expert episode → (success, steps, seconds spent stepping)."""
    obs, _ = env.reset(seed=seed)
    expert.reset()
    steps, start = 0, time.perf_counter()
    while True:
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        steps += 1
        if terminated or truncated:
            return bool(info["success"]), steps, time.perf_counter() - start


def expert_success(task: str, episodes: int) -> tuple[float, int, float]:
    """Success rate of the scripted expert on `task` (state only) → (rate, steps, seconds)."""
    from reasonact.envs import make_env, make_expert

    env, expert = make_env(task, image_size=0, privileged=True), make_expert(task)
    try:
        runs = [_episode(env, expert, seed) for seed in range(episodes)]
    finally:
        env.close()
    return float(np.mean([r[0] for r in runs])), sum(r[1] for r in runs), sum(r[2] for r in runs)


def libero_bench(config: LiberoBenchConfig) -> dict:
    """The `simulators.libero` entry: {works, steps_per_s, render_fps, expert_success: {suite: rate}, …}."""
    from reasonact.envs import list_tasks, make_env, make_expert

    per_task: dict[str, float] = {}
    steps = seconds = 0.0
    for suite in config.suites:
        tasks = list_tasks(suite)[: config.tasks_per_suite or None]
        for task in tasks:
            rate, n, s = expert_success(task, config.episodes)
            per_task[task], steps, seconds = rate, steps + n, seconds + s
    suites = {s: float(np.mean([r for t, r in per_task.items() if t.startswith(s + "/")])) for s in config.suites}

    env, expert = make_env(config.task, image_size=config.image_size, privileged=True), make_expert(config.task)
    try:
        env.reset(seed=0)
        renderer, start = env.unwrapped.renderer, time.perf_counter()
        for _ in range(config.frames):
            renderer.render(env.unwrapped.data, env.unwrapped.cameras[0])
        render_fps = config.frames / (time.perf_counter() - start)
        demos = [_episode(env, expert, seed) for seed in range(config.demos)]
    finally:
        env.close()
    render_seconds = sum(d[2] for d in demos)
    return {
        "works": True,
        "steps_per_s": steps / seconds,
        "steps_per_s_with_render": sum(d[1] for d in demos) / render_seconds,
        "render_fps": render_fps,
        "image_size": config.image_size,
        "cameras": 2,
        "expert_success": suites,
        "expert_success_per_task": per_task,
        "episodes_per_task": config.episodes,
        "demos_per_minute": 60.0 * sum(d[0] for d in demos) / render_seconds,
    }


def run(config: LiberoBenchConfig) -> dict:
    """Standalone: writes `config.out`; a broken LIBERO install is reported, not raised."""
    try:
        result = libero_bench(config)
    except Exception as err:  # the benchmark reports a simulator that does not work
        result = {
            "works": False,
            "error": f"{type(err).__name__}: {err}",
            "steps_per_s": None,
            "render_fps": None,
            "expert_success": None,
            "demos_per_minute": None,
        }
    result["config"] = {k: str(v) for k, v in dataclasses.asdict(config).items()}
    atomic_write_json(config.out, {"simulators": {"libero": result}})
    keys = ("works", "steps_per_s", "render_fps", "expert_success", "demos_per_minute")
    print("libero", {k: result.get(k) for k in keys}, "→", config.out)
    return result
