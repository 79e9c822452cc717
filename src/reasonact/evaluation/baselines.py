"""Honest baselines for a learned policy, fitted on the demonstrations it was trained on (issue 18).

    mean-chunk     always the mean training action chunk of the task: what a policy that ignores the
                   observation can do at best in squared error
    nearest-state  the chunk that followed the training frame of the task whose robot state is closest
                   (per-dimension z-scores): a lookup table over the demonstrations, blind to the image
    random         uniform actions in the simulator's bounds (`controllers.RandomController`)

A chunk is a_t … a_{t+H−1} of a demonstration (the last action repeated past its end, as the VLA trainer
builds them), so the baselines act in chunks of the same horizon as the policy they are compared with.
Each is a `reasonact.envs.Controller`; `baseline_factory` gives the evaluation harness a task → controller.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reasonact.envs import Controller, EnvObservation
from reasonact.evaluation.controllers import ControllerFactory, resolve_controller

BASELINES = ("mean-chunk", "nearest-state", "random")


@dataclass(frozen=True)
class Demonstrations:
    """Per task: every training frame's robot state and the action chunk that followed it."""

    states: dict[str, np.ndarray]  # task → (n, d_s) robot units
    chunks: dict[str, np.ndarray]  # task → (n, H, d_a) robot units

    @classmethod
    def load(cls, datasets: tuple[Path, ...], horizon: int, heldout_per_task: int = 0) -> Demonstrations:
        """The LeRobot datasets' episodes, without the last `heldout_per_task` of each task (the VLA
        trainer's held-out split), as chunks of `horizon` steps."""
        from reasonact.data.lerobot import LeRobotReader
        from reasonact.data.splits import split_episodes

        readers = [LeRobotReader(root) for root in datasets]
        where = [(r, i) for r in readers for i in range(r.num_episodes)]  # every episode, in dataset order
        tasks = [str(r.episodes[i].get("env_task") or r.episode(i, keys=())["task"]) for r, i in where]
        train, _ = split_episodes(tasks, heldout_per_task)
        states: dict[str, list[np.ndarray]] = {}
        chunks: dict[str, list[np.ndarray]] = {}
        for e in train:
            reader, i = where[e]
            frames = reader.episode(i, keys=("observation.state", "action"))
            state = frames["observation.state"].astype(np.float64).reshape(len(frames["action"]), -1)  # (T, d_s)
            action = frames["action"].astype(np.float64).reshape(len(state), -1)  # (T, d_a)
            idx = np.minimum(np.arange(len(action))[:, None] + np.arange(horizon), len(action) - 1)  # (T, H)
            states.setdefault(tasks[e], []).append(state)
            chunks.setdefault(tasks[e], []).append(action[idx])  # (T, H, d_a)
        return cls({t: np.concatenate(v) for t, v in states.items()}, {t: np.concatenate(v) for t, v in chunks.items()})

    @classmethod
    def from_frames(cls, tasks: list[str], states: np.ndarray, chunks: np.ndarray) -> Demonstrations:
        """Frames grouped by task: their tasks (n,), states (n, d_s) and chunks (n, H, d_a)."""
        names, unique = np.asarray(tasks), sorted(set(tasks))
        return cls({t: states[names == t] for t in unique}, {t: chunks[names == t] for t in unique})

    def task(self, task: str) -> tuple[np.ndarray, np.ndarray]:
        """(states (n, d_s), chunks (n, H, d_a)) of one task; raises naming the task when it has none."""
        if task not in self.chunks:
            raise ValueError(f"task: no demonstrations of {task!r} to fit a baseline on; the datasets have "
                             f"{sorted(self.chunks)}")  # fmt: skip
        return self.states[task], self.chunks[task]


class MeanChunkController:
    """The task's mean training chunk, whatever the observation."""

    reads_images = False  # never reads obs["images"]: the rollout renders no frames for it

    def __init__(self, chunks: np.ndarray) -> None:  # (n, H, d_a)
        self.chunk = chunks.mean(0).astype(np.float32)  # (H, d_a)

    def reset(self) -> None:
        """Memoryless."""

    def act(self, obs: EnvObservation) -> np.ndarray:
        return self.chunk  # (H, d_a)


class NearestState:
    """The state → chunk lookup of one task: the chunk that followed the training frame nearest to the query,
    distance measured in per-dimension z-scores of the training states (so millimetres and radians weigh
    alike). The one nearest-state baseline: closed loop (`NearestStateController`) and in the VLA trainer's
    open-loop evaluation (`open_loop_errors`)."""

    def __init__(self, states: np.ndarray, chunks: np.ndarray) -> None:  # (n, d_s), (n, H, d_a)
        self.offset, self.scale = states.mean(0), np.maximum(states.std(0), 1e-6)  # (d_s,) each
        self.states, self.chunks = (states - self.offset) / self.scale, chunks.astype(np.float32)

    def __call__(self, queries: np.ndarray) -> np.ndarray:  # (m, d_s) → (m, H, d_a)
        z = (np.asarray(queries, dtype=np.float64) - self.offset) / self.scale  # (m, d_s)
        distance = ((z[:, None, :] - self.states[None]) ** 2).sum(-1)  # (m, n)
        return self.chunks[distance.argmin(1)]


class NearestStateController:
    """`NearestState` of one task as a controller."""

    reads_images = False  # never reads obs["images"]: the rollout renders no frames for it

    def __init__(self, states: np.ndarray, chunks: np.ndarray) -> None:  # (n, d_s), (n, H, d_a)
        self.lookup = NearestState(states, chunks)

    def reset(self) -> None:
        """Memoryless."""

    def act(self, obs: EnvObservation) -> np.ndarray:
        return self.lookup(np.asarray(obs["state"])[None])[0]  # (H, d_a)


def open_loop_errors(
    demos: Demonstrations, tasks: list[str], states: np.ndarray, truth: np.ndarray
) -> dict[str, float]:
    """Held-out chunk MAE (robot units) of the mean-chunk and nearest-state baselines, each fitted per task on
    `demos`: held-out frames of `tasks` (m,), their states (m, d_s) and true chunks (m, H, d_a)."""
    mean, nearest = np.empty_like(truth), np.empty_like(truth)
    for task in sorted(set(tasks)):
        rows = np.flatnonzero(np.asarray(tasks) == task)
        task_states, chunks = demos.task(task)
        mean[rows] = chunks.mean(0)
        nearest[rows] = NearestState(task_states, chunks)(states[rows])
    return {
        "mean_chunk_mae": float(np.abs(mean - truth).mean()),
        "nearest_state_mae": float(np.abs(nearest - truth).mean()),
    }


def baseline_factory(name: str, demos: Demonstrations | None, seed: int = 0) -> ControllerFactory:
    """A baseline by name (`BASELINES`) → task → its controller (`demos` may be None for "random")."""
    if name not in BASELINES:
        raise ValueError(f"baselines: expected names from {list(BASELINES)}, received {name!r}")

    def factory(task: str) -> Controller:
        if name == "random":
            return resolve_controller("random", seed)(task)
        if demos is None:
            raise ValueError(f"baselines: {name!r} is fitted on demonstrations; none were given")
        states, chunks = demos.task(task)
        return MeanChunkController(chunks) if name == "mean-chunk" else NearestStateController(states, chunks)

    return factory


__all__ = [
    "BASELINES",
    "Demonstrations",
    "MeanChunkController",
    "NearestState",
    "NearestStateController",
    "baseline_factory",
    "open_loop_errors",
]
