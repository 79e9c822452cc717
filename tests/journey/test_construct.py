"""The propose–critique loop with the real tiny policy: every verdict recorded, accepted paths are
right, rejected steps are never accepted later, the dialogue mode shows the policy the critic's replies."""

from __future__ import annotations

import pytest

from reasonact.journey.construct import ConstructConfig, JourneyTree, construct_trees
from reasonact.journey.critic import CheckerCritic, LMCritic, ScorerCritic
from reasonact.reasoning.backends.hf import HFBackend
from reasonact.reasoning.mdp import State
from reasonact.reasoning.scorers import OracleScorer
from reasonact.reasoning.tasks import make_task
from reasonact.training.sequences import resolve_policy


@pytest.fixture(scope="module")
def backend() -> HFBackend:
    return HFBackend.from_pretrained(resolve_policy("tiny", "arithmetic"), threads=1)


@pytest.fixture(scope="module")
def problems():
    return make_task("arithmetic", "easy").generate("train", 6, seed=21)


def test_checker_and_scorer_critics() -> None:
    task = make_task("arithmetic", "easy")
    problem = task.generate("val", 1, seed=5)[0]
    checker = CheckerCritic(task)
    states = [
        State(problem, problem.steps[:1]),
        State(problem, ("9 * 9 * 9",)),
        State(problem, problem.steps),
        State(problem, (*problem.steps[:-1], "Answer: 123456")),
    ]
    verdicts = checker.judge(states)
    assert [v.action for v in verdicts] == ["continue", "reflect", "terminate", "reflect"]
    assert verdicts[3].reason == "wrong answer '123456'"
    scorer = ScorerCritic(OracleScorer(task), threshold=0.5)
    assert [v.action for v in scorer.judge(states)] == ["continue", "backtrack", "terminate", "backtrack"]
    with pytest.raises(ValueError, match="threshold"):
        ScorerCritic(OracleScorer(task), threshold=2.0)


def test_lm_critic_counts_replies_it_cannot_read(backend) -> None:
    problem = make_task("arithmetic", "easy").generate("val", 1)[0]
    critic = LMCritic(backend, max_new_tokens=6)
    verdicts = critic.judge([State(problem, problem.steps[:1]), State(problem, ("1",))])
    assert len(verdicts) == 2
    unread = sum(v.action == "continue" for v in verdicts)
    assert critic.unparsed <= unread  # an arithmetic policy answers in digits: counted, treated as continue


@pytest.mark.parametrize("dialogue", [False, True])
def test_construct_trees(backend, problems, dialogue: bool) -> None:
    task = make_task("arithmetic", "easy")
    config = ConstructConfig(width=3, attempts=2, max_rounds=16, dialogue=dialogue, seed=1)
    trees = construct_trees(problems, backend, CheckerCritic(task), config)
    assert len(trees) == len(problems)
    assert any(v.accepts for t in trees for v in t.verdicts.values())
    if not dialogue:  # (the SFT policy never saw `Wait:` lines; in dialogue mode it solves fewer)
        assert any(t.answer_node is not None for t in trees)
    for jt in trees:
        judged = jt.tree.nodes[1:]
        assert sorted(jt.order) == [n.id for n in judged] and set(jt.verdicts) == {n.id for n in judged}
        for node in judged:
            assert node.score == (1.0 if jt.verdicts[node.id].accepts else 0.0)
            if jt.verdicts[node.id].accepts:  # the checker accepted it: the path to it is right
                assert task.check_steps(jt.tree.problem, jt.tree.steps(node.id))[-1].correct
        for node in jt.tree.nodes:  # a rejected step is never proposed-and-accepted again at that node
            steps = [jt.tree.nodes[c].step for c in node.children if jt.tree.nodes[c].failure is None]
            assert len(steps) == len(set(steps))
        if jt.answer_node is not None:
            assert task.check_answer(jt.tree.problem, jt.tree.nodes[jt.answer_node].answer)
        assert [s for s, _ in jt.dialogue[:2]] == ["policy", "critic"]
        back = JourneyTree.from_json(jt.to_json())
        assert back.verdicts == jt.verdicts and back.dead == jt.dead


def test_dialogue_mode_shows_the_critic_replies(problems) -> None:
    from reasonact.journey.construct import _Builder
    from reasonact.reasoning.backends.base import Generation

    task = make_task("arithmetic", "easy")
    builder = _Builder(problems[0], ConstructConfig(dialogue=True, width=1))
    builder.receive([Generation("1 + 1", (1,), (-1.0,), "stop")], CheckerCritic(task))
    assert builder.node == 0 and builder.context().steps == ("1 + 1", "Wait: value changed to 2.")
    builder.config = ConstructConfig(dialogue=False, width=1)
    assert builder.context().steps == ()


def test_a_final_answer_the_lm_critic_lets_continue_ends_the_tree(backend, problems) -> None:
    critic = LMCritic(backend, max_new_tokens=4)  # the arithmetic policy replies in digits: all `continue`
    trees = construct_trees(problems[:3], backend, critic, ConstructConfig(width=2, attempts=1, max_rounds=8))
    assert critic.unparsed > 0
    answered = [t for t in trees if t.answer_node is not None]
    assert answered  # without the rule the loop proposes past `Answer:` and no tree ever ends
    for jt in answered:
        assert jt.verdicts[jt.answer_node].action == "terminate" and jt.tree.nodes[jt.answer_node].answer
    for jt in trees:  # no accepted answer step is left open
        assert all(jt.verdicts[n.id].action != "continue" for n in jt.tree.nodes[1:] if n.answer is not None)
