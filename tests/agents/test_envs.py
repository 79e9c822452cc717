from __future__ import annotations

import numpy as np
import pytest

from reasonact.agents.envs import make_env

pytest.importorskip("minigrid")

from reasonact.agents.envs.babyai import describe_view


def test_view_text_gives_distances_ahead_and_aside_nearest_first():
    image = np.zeros((7, 7, 3), dtype=np.uint8)
    image[:, :, 0] = 1  # empty floor everywhere
    image[1, 4] = (6, 0, 0)  # red ball: column 1 (2 left), row 4 (2 ahead)
    image[3, 5] = (2, 5, 0)  # a wall right in front
    image[5, 6] = (4, 4, 2)  # a locked yellow door level with the agent, 2 right
    text = describe_view(image)
    assert text == (
        "You see a yellow door (locked): level with you, 2 right; a red ball: 2 ahead, 2 left. "
        "Directly in front of you: wall."
    )
    with pytest.raises(ValueError, match=r"image: expected shape \(7, 7, 3\), received \(7, 7\)"):
        describe_view(image[:, :, 0])


def test_babyai_episodes_are_seeded_and_splits_differ():
    env = make_env("babyai")
    first, again = env.reset(5), env.reset(5)
    assert first == again and env.task("agent") == "go to the red ball"
    train = make_env("babyai", split="train")
    assert [train.reset(s) for s in range(4)] != [env.reset(s) for s in range(4)]


def test_babyai_actions_parse_leniently_and_reject_the_rest():
    env = make_env("babyai")
    assert env.parse_action("Move forward.") == "move forward"
    assert env.parse_action("turn_left") == "turn left"
    assert env.parse_action("right") == "turn right"
    assert env.parse_action("fly away") is None


@pytest.mark.parametrize("flow", ["structured", "flat"])
def test_rule_lm_reaches_the_ball_from_text_alone(rule_lm, flow):
    from reasonact.agents.agent import FLOWS, run_episode

    env = make_env("babyai")
    traces = [run_episode(env, FLOWS[flow], rule_lm, seed, flow) for seed in range(5)]
    assert all(t.success for t in traces)
    assert all(t.events[-1].observation == "You reached the goal." for t in traces)


def test_problem_env_judges_answers_exactly():
    env = make_env("problems:arithmetic")
    env.reset(0)
    answer = env.problem.answer
    assert env.parse_action(f"Answer: {answer}.") == f"answer {answer}"
    assert env.step("agent", f"answer {answer}").success
    assert not env.step("agent", f"answer {int(answer) + 1}").success


def test_problem_env_refuses_the_question_echoed_as_an_answer():
    """An unevaluated expression is no answer: the task's judge (reasoning-gym's score_answer) and the env refuse it."""
    env = make_env("problems:arithmetic")
    env.reset(0)
    expression = env.problem.metadata["expression"]
    assert not env.family_task.check_answer(env.problem, expression)
    assert env.parse_action(f"answer {expression}") is None
    assert env.parse_action("answer -3/4") == "answer -3/4"
