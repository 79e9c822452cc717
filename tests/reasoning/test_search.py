"""Search methods: shared contract, budgets, failure records (fast, random policy) and the
correctness check that PRM-guided search beats majority voting at equal tokens (slow, SFT policy)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from reasonact.reasoning.scorers import OracleScorer
from reasonact.reasoning.search import SEARCHES, SearchConfig
from reasonact.reasoning.study import StudyConfig, run_study, unit_config, versus_majority
from reasonact.reasoning.tasks import ArithmeticTask, make_task
from reasonact.reasoning.tree import Tree

TASK = ArithmeticTask()
SMALL = SearchConfig(n=4, width=2, max_steps=3, max_step_tokens=8, simulations=3)
STUDY = dataclasses.replace(SMALL, max_step_tokens=160)  # fits every reference step (gsm's are long)


@pytest.fixture(scope="module")
def problem():
    return TASK.generate("test", 1)[0]


@pytest.mark.parametrize("method", sorted(SEARCHES))
def test_every_search_returns_tree_and_token_count(method, problem, random_backend) -> None:
    result = SEARCHES[method](problem, SMALL, random_backend, OracleScorer(TASK))
    tree = Tree.from_json(result.tree.to_json())
    assert result.tokens == tree.generated_tokens() > 0 and result.calls >= 1
    assert len(tree.nodes) > 1 and all(n.score is not None for n in tree.nodes[1:])
    assert all(tree.depth(n.id) <= SMALL.max_steps for n in tree.nodes)
    failures = [n for n in tree.nodes if n.failure is not None]
    assert failures  # a random policy's output is mostly junk: it is recorded in the tree, not raised
    for node in failures:  # ... and a failed step is a dead end: never expanded
        assert node.failure in ("empty", "length", "too_long", "max_steps") and not node.children
    if result.answer_node is not None:
        assert tree.nodes[result.answer_node].answer == result.answer


@pytest.mark.parametrize("method", ["beam", "tree_dfs"])
def test_level_searches_sample_n_at_the_root_then_m_per_node(method, problem, random_backend) -> None:
    tree = SEARCHES[method](problem, SMALL, random_backend, OracleScorer(TASK)).tree
    assert len(tree.root.children) == SMALL.n  # the root stands for all N / M beams
    for node in tree.nodes[1:]:
        assert len(node.children) in (0, SMALL.width)


def test_budgets_and_bad_configs(problem, random_backend) -> None:
    for budget in (5, 30):  # 5 < max_step_tokens: not even one step fits
        capped = dataclasses.replace(SMALL, token_budget=budget, n=8, simulations=8)
        for method in sorted(SEARCHES):
            result = SEARCHES[method](problem, capped, random_backend, OracleScorer(TASK))
            assert result.tokens <= budget, (method, budget, result.tokens)
            assert (result.calls == 0) == (budget < SMALL.max_step_tokens), (method, budget)
    for field, value in [("n", 0), ("token_budget", 0), ("max_steps", 0), ("threshold", 2.0)]:
        with pytest.raises(ValueError, match=field):
            SearchConfig(**{field: value})
    with pytest.raises(ValueError, match="scorer"):
        SEARCHES["beam"](problem, SMALL, random_backend, None)


def test_study_records_units_and_resumes(tmp_path, random_backend) -> None:
    config = StudyConfig(
        methods=("greedy", "beam"), budgets=(2,), count=2, search=STUDY, root=tmp_path, out=tmp_path / "study"
    )
    summary = run_study(config, backend=random_backend)
    assert {(r["method"], r["problems"]) for r in summary["rows"]} == {("greedy", 2), ("beam", 2)}
    metrics = (tmp_path / "search_study" / "metrics.jsonl").read_text().splitlines()
    (tmp_path / "search_study" / "metrics.jsonl").write_text("\n".join(metrics[:2]) + "\n")  # "interrupted"
    run_study(config, backend=random_backend)
    assert len((tmp_path / "search_study" / "metrics.jsonl").read_text().splitlines()) == 4
    assert (tmp_path / "search_study" / "plots" / "accuracy_vs_tokens.png").exists()
    exported = json.loads((tmp_path / "study.json").read_text())
    assert exported["config"]["methods"] == ["greedy", "beam"] and len(exported["rows"]) == 2
    assert (tmp_path / "study.png").exists() and len(exported["loadavg"]) == 3
    assert unit_config("mcts", 7, SMALL).simulations == 7
    with pytest.raises(ValueError, match=r"search\.max_step_tokens: 8 cannot hold"):
        run_study(dataclasses.replace(config, search=SMALL, name="short"), backend=random_backend)
    assert unit_config("best_of_n:majority", 4, SMALL).selection == "majority"
    for bad in ("nope", "best_of_n:mode"):
        with pytest.raises(ValueError, match="methods"):
            run_study(dataclasses.replace(config, methods=(bad,)), backend=random_backend)


def test_versus_majority_compares_at_equal_or_lower_majority_cost() -> None:
    rows = [
        {"method": "best_of_n:majority", "budget": 2, "mean_tokens": 50.0, "accuracy": 0.10},
        {"method": "best_of_n:majority", "budget": 4, "mean_tokens": 100.0, "accuracy": 0.20},
        {"method": "mcts", "budget": 2, "mean_tokens": 20.0, "accuracy": 0.05},  # cheaper than any majority point
        {"method": "mcts", "budget": 4, "mean_tokens": 60.0, "accuracy": 0.15},  # vs N=2 only
        {"method": "beam", "budget": 4, "mean_tokens": 98.0, "accuracy": 0.15},  # vs N=4 (within 5 %)
    ]
    got = {(r["method"], r["budget"]): (r["majority_accuracy"], r["beats_majority"]) for r in versus_majority(rows)}
    assert got == {("mcts", 2): (None, None), ("mcts", 4): (0.10, True), ("beam", 4): (0.20, False)}


def test_mcts_rollouts_stop_at_dead_ends_and_widen_only_dead_nodes(problem, random_backend) -> None:
    config = dataclasses.replace(SMALL, simulations=7, max_steps=4)
    result = SEARCHES["mcts"](problem, config, random_backend, OracleScorer(TASK))
    tree = result.tree
    assert result.extra["simulations"] == 7 == tree.root.visits  # one backed-up rollout per simulation

    def dead(node) -> bool:
        return node.terminal or node.score < config.threshold

    for node in tree.nodes:
        if node.parent is not None and dead(node):
            assert not node.children, "a rollout continued past a dead end"
        assert node.visits == sum(tree.nodes[c].visits for c in node.children) + (not node.children)
    widened = 0
    for node_id, first_new, why in result.extra["branched"]:
        earlier = [tree.nodes[c] for c in tree.nodes[node_id].children if c < first_new]
        assert why == ("leaf" if not earlier else "dead" if all(dead(c) for c in earlier) else "low_value")
        widened += bool(earlier)
    assert widened  # the random policy's steps die fast: some node must have been widened


class StepsPassAnswersFail(OracleScorer):
    """A PRM with false positives: every step passes, every answer fails."""

    def score(self, states):
        return [[0.0 if s.startswith("Answer:") else 1.0 for s in state.steps] for state in states]


def test_mcts_widens_a_node_whose_live_children_have_low_value(trained_backend) -> None:
    easy = make_task("arithmetic", "easy")
    config = SearchConfig(width=2, max_steps=5, max_step_tokens=24, simulations=12, max_children=4)
    result = SEARCHES["mcts"](easy.generate("test", 1)[0], config, trained_backend, StepsPassAnswersFail(easy))
    whys = [why for _, _, why in result.extra["branched"]]
    assert "low_value" in whys, whys
    assert all(len(n.children) <= config.max_children for n in result.tree.nodes)


@pytest.mark.slow
@pytest.mark.smoke
def test_prm_guided_search_beats_majority_vote_at_equal_tokens(trained_backend) -> None:
    """With the oracle PRM, beam search and MCTS must out-score majority-vote best-of-N while
    generating no more tokens (a correctness check of the search code, not of the policy).
    The shipped tiny policy gets ~25% of these right greedily: wrong steps are common."""
    task = ArithmeticTask(min_terms=3, max_terms=3, max_digits=1, operators=("+", "-"), parentheses=False)
    problems = task.generate("test", 16)
    scorer = OracleScorer(task)
    base = SearchConfig(n=8, width=4, max_steps=6, max_step_tokens=24, simulations=6, selection="argmax")
    stats = {}
    for name, method, config in [
        ("majority", "best_of_n", dataclasses.replace(base, selection="majority")),
        ("beam", "beam", base),
        ("mcts", "mcts", base),
    ]:
        results = [SEARCHES[method](p, config, trained_backend, scorer) for p in problems]
        right = [
            r.answer is not None and task.check_answer(p, r.answer) for p, r in zip(problems, results, strict=True)
        ]
        stats[name] = (sum(right) / len(problems), sum(r.tokens for r in results) / len(problems))
    majority_accuracy, majority_tokens = stats["majority"]
    for name in ("beam", "mcts"):
        accuracy, tokens = stats[name]
        assert accuracy > majority_accuracy and tokens <= majority_tokens * 1.05, stats


def _entries(name: str, n: int, **options) -> list[dict]:
    import reasoning_gym

    return [dict(e) for e in reasoning_gym.create_dataset(name, size=n, seed=7, **options)]


def test_study_runs_outside_problems_and_reports_unsupported_rows(tmp_path, random_backend) -> None:
    rows = [*_entries("basic_arithmetic", 2), *_entries("gsm_symbolic", 1), *_entries("leg_counting", 2)]
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = StudyConfig(
        methods=("greedy",), budgets=(1,), problems=path, search=STUDY, root=tmp_path, out=tmp_path / "report"
    )
    summary = run_study(config, backend=random_backend)
    assert summary["unsupported"] == 2 and {u["source"] for u in summary["unsupported_rows"]} == {"leg_counting"}
    records = [json.loads(line) for line in (tmp_path / "search_study" / "metrics.jsonl").read_text().splitlines()]
    assert sorted(r["family"] for r in records) == ["arithmetic", "arithmetic", "gsm"]
    assert {r["uid"] for r in records} == {"problems.jsonl:1", "problems.jsonl:2", "problems.jsonl:3"}
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["accuracy"]) == {"greedy"} and set(report["accuracy"]["greedy"]) == {"1"}
    assert report["unsupported"] == 2


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("not json", r"problems.jsonl:2 is not JSON"),
        ('{"question": "q"}', r"problems.jsonl:2 expected a reasoning-gym"),
    ],
)
def test_malformed_problem_files_name_the_line(tmp_path, line, match) -> None:
    from reasonact.reasoning.tasks.problem_files import load_problems

    path = tmp_path / "problems.jsonl"
    path.write_text(json.dumps(_entries("basic_arithmetic", 1)[0]) + "\n" + line + "\n")
    with pytest.raises(ValueError, match=match):
        load_problems(path)
    path.write_text("".join(json.dumps(r) + "\n" for r in _entries("leg_counting", 2)))
    with pytest.raises(ValueError, match="no supported row"):
        run_study(StudyConfig(problems=path, root=tmp_path))


def test_an_untrained_policy_is_refused_with_the_command_that_trains_it(tmp_path, monkeypatch) -> None:
    from reasonact.reasoning.study import load_backend

    monkeypatch.setenv("REASONACT_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match=r"reasonact search train-policy small --policy\.family gsm"):
        load_backend("small", "gsm", "default")
    with pytest.raises(ValueError, match="policy"):
        load_backend("no-such-policy", "gsm")
