"""Simulated robot tasks behind one gymnasium contract (MetaWorld, PushT), with scripted experts."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless software GL; must precede any `import mujoco`


from reasonact.envs.experts import Expert, ExpertNoise, make_expert
from reasonact.envs.registry import SUITES, list_tasks, make_env, make_vector_env, simulator_of
from reasonact.envs.spec import EnvConfig, Observation, Scene, SceneObject

__all__ = [
    "SUITES",
    "EnvConfig",
    "Expert",
    "ExpertNoise",
    "Observation",
    "Scene",
    "SceneObject",
    "list_tasks",
    "make_env",
    "make_expert",
    "make_vector_env",
    "simulator_of",
]
