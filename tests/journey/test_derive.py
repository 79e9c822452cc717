"""Shortcut and journey derivation from a hand-built tree, and reading a long thought back."""

from __future__ import annotations

import pytest
import torch

from reasonact.journey.construct import JourneyTree
from reasonact.journey.critic import CheckerCritic, Verdict
from reasonact.journey.derive import journey, parse_thought, shortcut, to_example
from reasonact.reasoning.tasks import make_task
from reasonact.reasoning.tree import Tree
from reasonact.training.sequences import IGNORE, encode, load_policy, resolve_policy


def judged_tree() -> JourneyTree:
    """Reference path with a rejected sibling before its first and second steps, judged by the checker."""
    task = make_task("arithmetic", "easy")
    problem = next(p for p in task.generate("val", 20, seed=2) if len(p.steps) >= 3)
    jt = JourneyTree(Tree(problem))
    critic = CheckerCritic(task)
    node = 0
    for i, step in enumerate(problem.steps):
        if i < 2:
            wrong = jt.tree.add(node, "7 * 7 * 7", [], -3.0)
            jt.verdicts[wrong.id] = critic.judge([jt.tree.state(wrong.id)])[0]
            jt.order.append(wrong.id)
        right = jt.tree.add(node, step, [], -1.0)
        jt.verdicts[right.id] = critic.judge([jt.tree.state(right.id)])[0]
        jt.order.append(right.id)
        node = right.id
    jt.answer_node = node
    return jt


def test_shortcut_is_the_correct_path() -> None:
    jt = judged_tree()
    assert shortcut(jt) == list(jt.tree.problem.steps)
    assert jt.verdicts[jt.answer_node].action == "terminate"


def test_journey_visits_wrong_branches_reflects_and_returns() -> None:
    jt = judged_tree()
    steps = list(jt.tree.problem.steps)
    one = journey(jt, detours=1, seed=0)
    assert len(one) == len(steps) + 2 and "7 * 7 * 7" in one
    wrong_at = one.index("7 * 7 * 7")
    assert one[wrong_at + 1] in ("Wait: value changed to 343.", "Wait: no progress.")  # the checker's reason
    capped = journey(jt, detours=5)  # only 2 places have a wrong sibling
    assert len(capped) == len(steps) + 4 and capped[0] == capped[3] == "7 * 7 * 7"
    assert capped[1] == "Wait: value changed to 343." and capped[2] == steps[0] and capped[4].startswith("Wait: ")
    assert journey(jt, detours=0) == steps
    thought = parse_thought(journey(jt, detours=2))
    assert list(thought.steps) == steps and thought.reflections == 2
    assert [w for _, w in thought.withdrawn] == ["7 * 7 * 7", "7 * 7 * 7"]
    example = to_example(jt, one)
    assert example.prompt == f"Question: {jt.tree.problem.question}\n" and example.completion.count("\n") == len(one)


def test_a_tree_without_a_correct_answer_yields_no_thought() -> None:
    jt = judged_tree()
    jt.answer_node = None
    with pytest.raises(ValueError, match="has no correct answer node"):
        shortcut(jt)
    with pytest.raises(ValueError, match="detours"):
        journey(judged_tree(), detours=-1)


def test_json_round_trip() -> None:
    jt = judged_tree()
    jt.dialogue = [("policy", "x"), ("critic", "reflect: y")]
    back = JourneyTree.from_json(jt.to_json())
    assert back.verdicts == jt.verdicts and back.order == jt.order and back.answer_node == jt.answer_node
    assert back.dialogue == jt.dialogue and journey(back, 2) == journey(jt, 2)
    assert Verdict("continue").accepts and not Verdict("reflect", "x").accepts


def test_masked_journey_trains_the_reflection_not_the_wrong_step() -> None:
    """The withdrawn wrong steps (and their newline) are context without loss; everything else,
    the `Wait:` lines and the end of sequence included, keeps its label."""
    jt = judged_tree()
    steps = journey(jt, detours=2)
    plain, masked = to_example(jt, steps), to_example(jt, steps, mask_withdrawn=True)
    assert plain.no_loss == () and masked.completion == plain.completion
    assert [masked.completion[a:b] for a, b in masked.no_loss] == ["7 * 7 * 7\n", "7 * 7 * 7\n"]
    _, tokenizer = load_policy(resolve_policy("tiny", "arithmetic"))
    (ids_p, ids_m), (labels_p, labels_m) = zip(*(encode(tokenizer, [e]) for e in (plain, masked)), strict=True)
    assert torch.equal(ids_p, ids_m)  # the same text in the context
    dropped = (labels_p != IGNORE) & (labels_m == IGNORE)
    assert tokenizer.decode(ids_p[dropped]) == "7 * 7 * 7\n7 * 7 * 7\n"
    assert torch.equal(labels_m[labels_m != IGNORE], labels_p[(labels_p != IGNORE) & ~dropped])
