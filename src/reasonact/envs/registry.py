"""Simulators as records: task names → `Simulator`, the environments and experts they build.

A simulator is one `Simulator` entry in `SIMULATORS` (or a `register` call) plus its own module:
an env class keeping the `reasonact.envs.spec` contract and a scripted expert. Every caller reads
the record (tasks and suites, control rate, action bounds, expert, the reset options of
demonstrations, the papers' results table); nothing downstream switches on a simulator's name.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np

from reasonact.envs.experts import Expert, ExpertNoise, NoisyExpert
from reasonact.envs.rollout import Episode, rollout
from reasonact.envs.spec import EnvConfig
from reasonact.envs.tasks import MT10, closest

PUSHT_TASK = "pusht"
TaskLister = Callable[[], list[str]]

# one frame of MetaWorld's observation; its 39-dim vector is this frame, the previous one, then the goal
_MW_OBJECT = ("x", "y", "z", "q0", "q1", "q2", "q3")
_MW_FRAME = ("hand_x", "hand_y", "hand_z", "gripper_opening", *(f"obj{i}_{n}" for i in (1, 2) for n in _MW_OBJECT))


@dataclass(frozen=True)
class Simulator:
    """Everything the rest of the package needs to know about one simulator."""

    name: str  # e.g. "metaworld"; results' "simulator" and the LeRobot robot_type of its datasets
    tasks: TaskLister  # every task name, without building a simulator; [] when the package is missing
    suites: Callable[[], dict[str, TaskLister]]  # suite name ("mt10", "libero_spatial", …) → task lister
    make_env: Callable[[EnvConfig], gym.Env]  # one env of the `reasonact.envs.spec` contract
    make_expert: Callable[[str], Expert]  # task → its scripted expert (reads obs["privileged"])
    fps: int  # control rate (Hz): env steps per simulated second; the fps of its datasets and videos
    action_low: tuple[float, ...]  # action bounds (d,): the env clips to them, expert noise stays inside
    action_high: tuple[float, ...]
    demo_reset: dict[str, Any] | None = None  # reset options of demonstrations (LIBERO: never an evaluation state)
    paper_table: Callable[[dict[str, dict]], dict[str, dict]] | None = None  # {task: result} → papers' table
    missing: Callable[[str], None] | None = None  # raises the install hint for a task it would own when absent
    state_names: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # EnvConfig.state → names
    action_names: tuple[str, ...] = ()  # names of the action entries (LeRobot's feature `names`)
    vlm_unsupported: str | None = None  # why `reasonact data vlm` cannot label its scenes (None: it can)


def _attr(ref: str) -> Any:
    """`"module:attr"` → the attribute, imported now (simulator packages import slowly: only when used)."""
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def _lazy(ref: str) -> Callable:
    """A callable that imports `"module:attr"` on its first call and calls it."""
    return lambda *args, **kwargs: _attr(ref)(*args, **kwargs)


def _libero_missing(task: str) -> None:
    if task.startswith("libero"):
        _attr("reasonact.envs.libero_tasks:require_libero")()


SIMULATORS: dict[str, Simulator] = {
    "metaworld": Simulator(
        name="metaworld",
        tasks=_lazy("reasonact.envs.metaworld:metaworld_tasks"),
        suites=lambda: {"mt10": lambda: list(MT10), "mt50": _lazy("reasonact.envs.metaworld:metaworld_tasks")},
        make_env=_lazy("reasonact.envs.metaworld:MetaWorldEnv"),
        make_expert=_lazy("reasonact.envs.experts:MetaWorldExpert"),
        fps=80,  # 5 physics steps of 2.5 ms per env step
        action_low=(-1.0,) * 4,
        action_high=(1.0,) * 4,
        state_names={
            "proprio": _MW_FRAME[:4],
            "full": (*_MW_FRAME, *(f"prev_{n}" for n in _MW_FRAME), "goal_x", "goal_y", "goal_z"),
        },
        action_names=("dx", "dy", "dz", "gripper"),
    ),
    "pusht": Simulator(
        name="pusht",
        tasks=lambda: [PUSHT_TASK],
        suites=lambda: {"pusht": lambda: [PUSHT_TASK]},
        make_env=_lazy("reasonact.envs.pusht:PushTEnv"),
        make_expert=lambda task: _attr("reasonact.envs.pusht_expert:PushTExpert")(),
        fps=10,
        action_low=(0.0, 0.0),
        action_high=(512.0, 512.0),
        state_names={
            "proprio": ("pusher_x", "pusher_y"),
            "full": ("pusher_x", "pusher_y", "block_x", "block_y", "block_angle"),
        },
        action_names=("target_x", "target_y"),
        vlm_unsupported="PushT is drawn by pygame: there is no MuJoCo segmentation to take object boxes from",
    ),
    "libero": Simulator(
        name="libero",
        tasks=_lazy("reasonact.envs.libero_tasks:libero_tasks"),
        suites=_lazy("reasonact.envs.libero_tasks:suite_listers"),
        make_env=_lazy("reasonact.envs.libero:LiberoEnv"),
        make_expert=_lazy("reasonact.envs.libero_experts:LiberoExpert"),
        fps=20,
        action_low=(-1.0,) * 7,
        action_high=(1.0,) * 7,
        demo_reset={"init_state": "sampled"},
        paper_table=_lazy("reasonact.envs.libero_tasks:suite_table"),
        missing=_libero_missing,
        state_names={
            "proprio": ("eef_x", "eef_y", "eef_z", "eef_ax", "eef_ay", "eef_az", "finger_left", "finger_right")
        },
        action_names=("dx", "dy", "dz", "drx", "dry", "drz", "gripper"),
        vlm_unsupported="LIBERO scenes are not supported yet (boxes need segmentation of each object's visual geoms)",
    ),
}


def register(simulator: Simulator) -> None:
    """Add a simulator at run time (its tasks list after the built-in ones). Async vector envs
    spawn fresh processes: register it in a module those processes import too."""
    if simulator.name in SIMULATORS:
        raise ValueError(f"simulator: {simulator.name!r} is already registered")
    SIMULATORS[simulator.name] = simulator


def suites() -> dict[str, TaskLister]:
    """Suite name → task lister, over every registered simulator."""
    return {name: lister for sim in SIMULATORS.values() for name, lister in sim.suites().items()}


def list_tasks(suite: str = "all") -> list[str]:
    """Task names of a suite ("mt10", "mt50", "pusht", "libero_spatial", …) or of every simulator ("all")."""
    if suite == "all":
        return [t for sim in SIMULATORS.values() for t in sim.tasks()]
    known = suites()
    if suite not in known:
        raise closest(suite, [*known, "all"], "suite")
    return known[suite]()


def expand_tasks(names: Sequence[str]) -> list[str]:
    """Suite names expand to their tasks in place; task names are checked (closest name on typos); no repeats."""
    known = suites()
    tasks: list[str] = []
    for name in names:
        for task in known[name]() if name in known else [name]:
            simulator_of(task)
            if task not in tasks:
                tasks.append(task)
    return tasks


def simulator_of(task: str) -> Simulator:
    """The record of the simulator owning `task`; unknown names raise a ValueError suggesting the closest task."""
    for sim in SIMULATORS.values():
        if task in sim.tasks():
            return sim
    for sim in SIMULATORS.values():
        if sim.missing is not None:
            sim.missing(task)  # a name of a simulator that is not installed: say how to install it
    raise closest(task, list_tasks("all"), "task")


def make_env(config: EnvConfig | str, **overrides) -> gym.Env:
    """One environment: `make_env("push-v3", image_size=64)` or `make_env(EnvConfig(...))`."""
    if isinstance(config, str):
        config = EnvConfig(task=config, **overrides)
    elif overrides:
        config = dataclasses.replace(config, **overrides)
    return simulator_of(config.task).make_env(config)


def make_vector_env(configs: Sequence[EnvConfig], asynchronous: bool = True) -> gym.vector.VectorEnv:
    """A gymnasium vector env with one sub-env per config (tasks may differ, spaces must match).

    Asynchronous envs run each sub-env in its own process ("spawn": EGL contexts do not survive
    a fork), so rendering and physics use every core. Autoreset is disabled: callers reset
    finished sub-envs with `reset(seed=..., options={"reset_mask": mask})`, which keeps every
    episode's seed under their control (`reasonact.envs.rollout` does).
    """
    if not configs:
        raise ValueError("configs: expected at least one EnvConfig, received none")
    for config in configs:
        simulator_of(config.task)  # fail early, in this process, on unknown task names
    fns = [partial(make_env, config) for config in configs]
    mode = gym.vector.AutoresetMode.DISABLED
    if asynchronous and len(configs) > 1:
        return gym.vector.AsyncVectorEnv(fns, shared_memory=False, context="spawn", autoreset_mode=mode)
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)


def make_expert(task: str, noise: ExpertNoise | None = None, seed: int = 0) -> Expert:
    """The scripted expert of `task` (its simulator's record says which), wrapped with `noise` when given."""
    simulator = simulator_of(task)
    expert = simulator.make_expert(task)
    if noise is None or (noise.action_std == 0 and noise.burst_prob == 0):
        return expert
    low, high = np.asarray(simulator.action_low, dtype=np.float64), np.asarray(simulator.action_high, dtype=np.float64)
    return NoisyExpert(expert, noise, low, high, seed)


def expert_episodes(
    config: EnvConfig,
    seeds: Sequence[int],
    record: tuple[str, ...] = (),
    on_episode: Callable[[Episode], None] | None = None,
) -> list[Episode]:
    """The task's scripted expert (no noise) from each seed on one in-process env built from `config`
    (privileged state switched on for the expert)."""
    envs = make_vector_env([dataclasses.replace(config, privileged=True)], asynchronous=False)
    expert = make_expert(config.task)
    try:
        return rollout(envs, seeds, lambda slot, seed: expert, record=record, on_episode=on_episode)
    finally:
        envs.close()
