"""Task names → simulators, and single or vectorised environments built from `EnvConfig`s.

A new simulator adds one entry to `_SIMULATORS` (how to list its tasks) and one branch in
`make_env`, as LIBERO did; everything downstream (experts, datasets, VLM data, evaluation) only
sees the `reasonact.envs.spec` contract.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import partial

import gymnasium as gym

from reasonact.envs.spec import EnvConfig
from reasonact.envs.tasks import MT10, closest

PUSHT_TASK = "pusht"


def _metaworld() -> list[str]:
    from reasonact.envs.metaworld import metaworld_tasks

    return metaworld_tasks()


def _libero() -> list[str]:
    from reasonact.envs.libero_tasks import libero_tasks

    return libero_tasks()  # [] when LIBERO is not installed


def _libero_suites() -> dict:
    from reasonact.envs.libero_tasks import suite_listers

    return suite_listers()


_SIMULATORS = {"metaworld": _metaworld, "pusht": lambda: [PUSHT_TASK], "libero": _libero}
SUITES = {"mt10": lambda: list(MT10), "mt50": _metaworld, "pusht": lambda: [PUSHT_TASK], **_libero_suites()}


def list_tasks(suite: str = "all") -> list[str]:
    """Task names of a suite ("mt10", "mt50", "pusht", "libero_spatial", …) or of every simulator ("all")."""
    if suite == "all":
        return [t for tasks in _SIMULATORS.values() for t in tasks()]
    if suite not in SUITES:
        raise closest(suite, [*SUITES, "all"], "suite")
    return SUITES[suite]()


def simulator_of(task: str) -> str:
    """ "metaworld", "pusht" or "libero"; unknown names raise a ValueError suggesting the closest task."""
    for name, tasks in _SIMULATORS.items():
        if task in tasks():
            return name
    if task.startswith("libero"):
        from reasonact.envs.libero_tasks import require_libero

        require_libero()  # a LIBERO name without LIBERO installed: say how to install it
    raise closest(task, list_tasks("all"), "task")


def make_env(config: EnvConfig | str, **overrides) -> gym.Env:
    """One environment: `make_env("push-v3", image_size=64)` or `make_env(EnvConfig(...))`."""
    if isinstance(config, str):
        config = EnvConfig(task=config, **overrides)
    elif overrides:
        config = dataclasses.replace(config, **overrides)
    if simulator_of(config.task) == "libero":
        from reasonact.envs.libero import LiberoEnv

        return LiberoEnv(config)
    if simulator_of(config.task) == "pusht":
        from reasonact.envs.pusht import PushTEnv

        return PushTEnv(config)
    from reasonact.envs.metaworld import MetaWorldEnv

    return MetaWorldEnv(config)


def make_vector_env(configs: Sequence[EnvConfig], asynchronous: bool = True) -> gym.vector.VectorEnv:
    """A gymnasium vector env with one sub-env per config (tasks may differ, spaces must match).

    Asynchronous envs run each sub-env in its own process ("spawn": EGL contexts do not survive
    a fork), so rendering and physics use every core. Autoreset is disabled: callers reset
    finished sub-envs with `reset(seed=..., options={"reset_mask": mask})`, which keeps every
    episode's seed under their control.
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
