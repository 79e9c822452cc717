"""A simulator is one record: a toy registered here is collected, evaluated and benchmarked by the
unchanged package, and the built-in records agree with the envs they build."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
from benchmarks.envs import expert_success

from reasonact.data.collect import CollectConfig, collect
from reasonact.data.lerobot import LeRobotReader
from reasonact.envs import SIMULATORS, EnvConfig, Simulator, list_tasks, make_env, register
from reasonact.envs.spec import observation_space
from reasonact.envs.tasks import TaskLanguage
from reasonact.evaluation import EvalConfig, evaluate

LANGUAGE = TaskLanguage("reach the mark", (), ("go to the mark",), "mark", ("approach", "settle"), "push")


class LineEnv(gym.Env):
    """A point on a line that must reach a goal: position in [0, 1], action = velocity in [-0.1, 0.1]."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 5}

    def __init__(self, config: EnvConfig) -> None:
        self.config, self.task, self.language = config, config.task, LANGUAGE
        self.max_steps = config.max_steps or 30
        cams = ("line",) if config.image_size else ()
        self.observation_space = observation_space(config.image_size, cams, 1, 2 * config.privileged)
        self.action_space = gym.spaces.Box(-0.1, 0.1, (1,), np.float32)
        self.x, self.goal, self.t = 0.0, 0.0, 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.x, self.goal = self.np_random.uniform(0, 1, 2)
        self.t = 0
        return self._obs(), self._info()

    def step(self, action):
        self.x = float(np.clip(self.x + np.clip(action[0], -0.1, 0.1), 0, 1))
        self.t += 1
        info = self._info()
        return self._obs(), -abs(self.x - self.goal), info["success"], self.t >= self.max_steps, info

    def _obs(self) -> dict:
        size = self.config.image_size
        images = {"line": np.full((size, size, 3), int(255 * self.x), np.uint8)} if size else {}
        obs = {"images": images, "state": np.array([self.x], np.float32), "instruction": LANGUAGE.instruction}
        if self.config.privileged:
            obs["privileged"] = np.array([self.x, self.goal])
        return obs

    def _info(self) -> dict:
        near = abs(self.x - self.goal) < 0.02
        return {"success": bool(near), "phase": int(abs(self.x - self.goal) < 0.1)}


class LineExpert:
    def reset(self) -> None:
        """Memoryless."""

    def act(self, obs) -> np.ndarray:
        x, goal = obs["privileged"]
        return np.array([np.clip(goal - x, -0.1, 0.1)], np.float32)


def _table(results: dict[str, dict]) -> dict[str, dict]:
    successes = sum(r["successes"] for r in results.values())
    episodes = sum(r["episodes"] for r in results.values())
    return {"Line": {"success_rate": successes / episodes, "successes": successes, "episodes": episodes}}


TOY = Simulator(
    name="toy",
    tasks=lambda: ["toy-reach"],
    suites=lambda: {"toy": lambda: ["toy-reach"]},
    make_env=LineEnv,
    make_expert=lambda task: LineExpert(),
    fps=5,
    action_low=(-0.1,),
    action_high=(0.1,),
    paper_table=_table,
)


@pytest.fixture
def toy():
    register(TOY)
    yield TOY
    SIMULATORS.pop("toy")


def test_a_registered_simulator_is_collected_evaluated_and_benchmarked(tmp_path, toy):
    assert list_tasks("toy") == ["toy-reach"] and list_tasks("all")[-1] == "toy-reach"
    with pytest.raises(ValueError, match="already registered"):
        register(TOY)
    config = CollectConfig(tasks=("toy",), episodes_per_task=2, out=tmp_path / "ds", env=EnvConfig(image_size=16))
    report = collect(config, progress=False)
    assert report["tasks"]["toy-reach"]["kept"] == 2
    reader = LeRobotReader(tmp_path / "ds")
    assert reader.info["fps"] == 5 and reader.info["robot_type"] == "toy" and reader.tasks == ["reach the mark"]
    episode = reader.episode(0)
    assert episode["observation.images.line"].shape[1:] == (16, 16, 3) and episode["next.success"][-1]
    assert episode["subtask"][-1] == "settle"

    results = evaluate(
        EvalConfig(
            tasks=("toy",),
            episodes=3,
            env=EnvConfig(image_size=0),
            num_envs=2,
            asynchronous=False,
            out=tmp_path / "eval",
        ),
        show_progress=False,
    )
    assert results["tasks"]["toy-reach"]["success_rate"] == 1.0 and results["tasks"]["toy-reach"]["simulator"] == "toy"
    assert results["suites"]["Line"]["episodes"] == 3 and results["suites"]["Line"]["ci95"][1] == 1.0
    assert expert_success("toy-reach", 3) == 1.0


@pytest.mark.parametrize("name", ["metaworld", "pusht"])
def test_builtin_records_agree_with_their_envs(name):
    sim = SIMULATORS[name]
    env = make_env(sim.tasks()[0], image_size=0)
    try:
        np.testing.assert_array_equal(env.action_space.low, sim.action_low)
        np.testing.assert_array_equal(env.action_space.high, sim.action_high)
        assert env.metadata["render_fps"] == sim.fps
    finally:
        env.close()
