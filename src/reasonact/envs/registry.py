"""Simulators as records: task names → `Simulator`, and single or vectorised environments built from `EnvConfig`s.

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
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from reasonact.envs.spec import EnvConfig
from reasonact.envs.tasks import MT10, closest

if TYPE_CHECKING:
    from reasonact.envs.experts import Expert

PUSHT_TASK = "pusht"
TaskLister = Callable[[], list[str]]


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
