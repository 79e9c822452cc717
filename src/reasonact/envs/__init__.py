"""Simulated robot tasks behind one gymnasium contract (MetaWorld, PushT, LIBERO), experts, one rollout loop."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless software GL; must precede any `import mujoco`


from reasonact.envs.experts import Expert, ExpertNoise
from reasonact.envs.registry import (
    SIMULATORS,
    Simulator,
    expand_tasks,
    expert_episodes,
    list_tasks,
    make_env,
    make_expert,
    make_vector_env,
    register,
    simulator_of,
    suites,
)
from reasonact.envs.rollout import BatchController, Controller, Episode, ImagesNotRendered, SimulatorCrash, rollout
from reasonact.envs.spec import EnvConfig, EnvObservation, Scene, SceneObject

__all__ = [
    "SIMULATORS",
    "BatchController",
    "Controller",
    "EnvConfig",
    "EnvObservation",
    "Episode",
    "Expert",
    "ExpertNoise",
    "ImagesNotRendered",
    "Scene",
    "SceneObject",
    "Simulator",
    "SimulatorCrash",
    "expand_tasks",
    "expert_episodes",
    "list_tasks",
    "make_env",
    "make_expert",
    "make_vector_env",
    "register",
    "rollout",
    "simulator_of",
    "suites",
]
