"""MDP transitions, the shared tree type (JSON round trip) and scorers on real task problems."""

from __future__ import annotations

import json

import pytest

from reasonact.reasoning.mdp import State, few_shot_header
from reasonact.reasoning.scorers import OracleScorer, OutcomeScorer, aggregate
from reasonact.reasoning.tasks import ArithmeticTask
from reasonact.reasoning.tree import Tree


@pytest.fixture(scope="module")
def problem():
    return ArithmeticTask().generate("test", 1)[0]


def test_state_transitions_and_prompt(problem) -> None:
    s = State(problem)
    assert not s.terminal and s.prompt() == f"Question: {problem.question}\n"
    for step in problem.steps:
        s = s.step(step)
    assert s.terminal and s.answer == problem.answer
    assert s.prompt().endswith(f"Answer: {problem.answer}\n")
    with pytest.raises(ValueError, match="already ended"):
        s.step("1")
    with pytest.raises(ValueError, match="action"):
        State(problem).step("1\n2")
    assert few_shot_header([problem]).count("Question:") == 1


def test_tree_round_trips_through_json(tmp_path, problem) -> None:
    tree = Tree(problem)
    a = tree.add(0, problem.steps[0], [5, 6, 4], -1.5)
    b = tree.add(a.id, problem.steps[1], [7, 4], -0.5)
    tree.add(0, "", [2], -3.0, failure="empty")
    a.score, a.visits, a.value_sum, a.kv = 1.0, 3, 2.0, object()
    tree.save(tmp_path / "t.json")
    back = Tree.load(tmp_path / "t.json")
    assert json.loads((tmp_path / "t.json").read_text())["nodes"][1]["visits"] == 3
    assert back.steps(b.id) == problem.steps[:2] and back.nodes[1].q == pytest.approx(2 / 3)
    assert back.nodes[1].kv is None and back.generated_tokens() == 6
    assert back.nodes[3].terminal and back.problem == problem


def test_oracle_and_outcome_scorers(problem) -> None:
    task = ArithmeticTask()
    wrong = State(problem, (problem.steps[0], "424242"))
    right = State(problem, problem.steps)
    assert OracleScorer(task).score([wrong, right]) == [[1.0, 0.0], [1.0] * len(problem.steps)]
    outcome = OutcomeScorer(task).score([right, State(problem, ("Answer: 424242",))])
    assert outcome == [[1.0] * len(problem.steps), [0.0]]
    assert aggregate([1.0, 0.5, 0.8], "min") == 0.5 and aggregate([1.0, 0.5], "prod") == 0.5
    assert aggregate([0.2, 0.9], "last") == 0.9 and aggregate([], "last") == 0.0
    with pytest.raises(ValueError, match="how"):
        aggregate([1.0], "mean")  # type: ignore[arg-type]
