"""PRMs: row validation, metrics on hand-made cases, Math-Shepherd labels with the real tiny
policy, training of the three kinds with exact resume, and a learned PRM guiding every search."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from reasonact.reasoning.mdp import State
from reasonact.reasoning.prm.data import checker_rows, read_rows, validate_row
from reasonact.reasoning.prm.metrics import prm_metrics
from reasonact.reasoning.prm.model import LearnedScorer
from reasonact.reasoning.prm.montecarlo import RolloutConfig, monte_carlo_labels
from reasonact.reasoning.search import SEARCHES, SearchConfig
from reasonact.reasoning.tasks import make_task
from reasonact.training.prm import PRMTrainConfig, train_prm

TASK = make_task("arithmetic", "easy")


def corrupted(steps: tuple[str, ...], at: int) -> tuple[str, ...]:
    return (*steps[:at], "12345", *steps[at + 1 :])


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory):
    """Reference solutions (all steps right) and copies with one wrong step, checker-labelled."""
    problems = TASK.generate("train", 24)
    solutions = [[p.steps, corrupted(p.steps, i % len(p.steps))] for i, p in enumerate(problems)]
    path = tmp_path_factory.mktemp("prm") / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in checker_rows(TASK, problems, solutions)))
    return path


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ({"prompt": "q", "completions": ["a", "b"], "labels": [True]}, "one length"),
        ({"prompt": "q", "completions": ["a", " "], "labels": [True, False]}, r"completions\[1\] is empty"),
        ({"prompt": "q", "completions": ["a"], "labels": [1.5]}, r"labels\[0\] must be"),
        ({"prompt": "q", "completions": ["a"], "labels": [1], "mc_labels": [0.5, 1]}, "mc_labels has 2"),
        ({"prompt": "q"}, "expected an object"),
    ],
)
def test_bad_rows_are_refused_naming_the_row(row, match) -> None:
    with pytest.raises(ValueError, match=f"rows.jsonl:7.*{match}|{match}"):
        validate_row(row, "rows.jsonl:7")


def test_partial_last_line_is_ignored_and_bad_lines_named(tmp_path, rows_file) -> None:
    text = rows_file.read_text()
    (tmp_path / "cut.jsonl").write_text(text + text.splitlines()[0][:40])  # interrupted mid-row
    assert len(read_rows(tmp_path / "cut.jsonl")) == len(text.splitlines())
    (tmp_path / "bad.jsonl").write_text("{oops\n" + text)
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        read_rows(tmp_path / "bad.jsonl")


def test_metrics_on_a_worked_example() -> None:
    labels = [[True, True, False], [True, True], [True, False]]
    scores = [[0.9, 0.8, 0.2], [0.9, 0.3], [0.7, 0.6]]  # right, false alarm at 1, missed error at 1
    m = prm_metrics(scores, labels)
    assert m["step_precision"] == 0.5 and m["step_recall"] == 0.5 and m["step_f1"] == 0.5
    assert m["earliest_error_acc_erroneous"] == 0.5 and m["earliest_error_acc_correct"] == 0.0
    assert m["earliest_error_f1"] == 0.0
    perfect = prm_metrics([[float(y) for y in ys] for ys in labels], labels)
    assert perfect["step_f1"] == perfect["earliest_error_f1"] == 1.0 and perfect["ece"] == 0.0


def test_monte_carlo_labels_match_the_checker_on_reference_and_broken_solutions(trained_backend) -> None:
    p = TASK.generate("test", 1)[0]
    broken = (*p.steps[:-1], "Answer: 99999")
    rollouts = RolloutConfig(k=4, max_steps=6, max_step_tokens=24)
    good, bad = monte_carlo_labels(TASK, p, [p.steps, broken], trained_backend, rollouts)
    assert good[-1] == 1.0 and bad[-1] == 0.0  # answer steps are labelled by their outcome
    assert all(0 <= y <= 1 for y in good + bad) and len(good) == len(p.steps)


def test_prm_training_resumes_exactly(tmp_path, rows_file) -> None:
    config = PRMTrainConfig(data=rows_file, kind="value", steps=4, batch=8, checkpoint_every=2, root=tmp_path, name="a")
    whole = train_prm(config)
    split = dataclasses.replace(config, name="b")
    train_prm(split, stop_after=3)  # "interrupted" after 3 of 4 steps
    resumed = train_prm(split)
    a, b = load_file(whole / "prm.safetensors"), load_file(resumed / "prm.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a" / "metrics.jsonl").read_text() == (tmp_path / "b" / "metrics.jsonl").read_text()


@pytest.mark.slow
def test_every_prm_kind_learns_its_target(tmp_path, rows_file) -> None:
    """A few steps on reference vs corrupted solutions: the classifier scores the reference
    solution's steps above the wrong step, the ORM and the value function the correct answer above
    the wrong one."""
    problems = TASK.generate("val", 6)
    states = [(State(p, p.steps), State(p, corrupted(p.steps, len(p.steps) - 1))) for p in problems]
    for kind in ("classifier", "value", "orm"):
        config = PRMTrainConfig(data=rows_file, kind=kind, steps=40, batch=16, lr=3e-3, root=tmp_path, name=kind)
        scorer = LearnedScorer(train_prm(config))
        scores = scorer.score([s for pair in states for s in pair])
        right, wrong = scores[0::2], scores[1::2]
        margin = sum(r[-1] - w[-1] for r, w in zip(right, wrong, strict=True)) / len(problems)
        assert margin > 0.05, (kind, margin)
        assert all(0 < x < 1 for row in scores for x in row)


def test_a_learned_prm_guides_every_search_method(tmp_path, rows_file, random_backend) -> None:
    prm = train_prm(PRMTrainConfig(data=rows_file, steps=2, batch=4, root=tmp_path, name="p"))
    scorer = LearnedScorer(prm)
    p = TASK.generate("test", 1)[0]
    config = SearchConfig(n=4, width=2, max_steps=3, max_step_tokens=8, simulations=3)
    for method in sorted(SEARCHES):
        result = SEARCHES[method](p, config, random_backend, scorer)
        assert all(n.score is not None for n in result.tree.nodes[1:]), method


def test_prm_training_refuses_missing_mc_labels_and_bad_gamma(tmp_path, rows_file) -> None:
    with pytest.raises(ValueError, match="mc_labels"):
        train_prm(PRMTrainConfig(data=rows_file, labels="mc_hard", steps=1, root=tmp_path))
    with pytest.raises(ValueError, match="gamma"):
        PRMTrainConfig(gamma=1.5)


@pytest.mark.slow
@pytest.mark.smoke
def test_verifier_study_writes_the_report_keys(tmp_path, rows_file) -> None:
    from reasonact.reasoning.verifier_study import VerifierStudyConfig, run

    prm = train_prm(PRMTrainConfig(data=rows_file, steps=2, batch=4, root=tmp_path, name="p"))
    config = VerifierStudyConfig(
        prm=str(prm),
        methods=("best_of_n:majority", "beam"),
        budgets=(1, 2),
        count=2,
        search=SearchConfig(max_steps=5, max_step_tokens=24),
        labels=tmp_path / "none.json",
        root=tmp_path,
        out=tmp_path / "report",
    )
    report = run(config)
    saved = json.loads((tmp_path / "report.json").read_text())
    for key in ("curves", "beam_minus_majority_at_equal_budget", "mc_label_agreement", "prm_earliest_error_f1",
                "oracle_upper_bound", "gemma270m"):  # fmt: skip
        assert key in saved, key
    points = saved["curves"]["arithmetic"]["beam"]
    assert [p["budget"] for p in points] == [1, 2] and all(p["ci"][0] <= p["accuracy"] <= p["ci"][1] for p in points)
    assert report["oracle_upper_bound"]["arithmetic"] >= 0 and (tmp_path / "report.md").read_text().startswith("# ")
    assert (tmp_path / "report.png").exists()


def test_labelling_resumes_without_redoing_finished_problems(tmp_path) -> None:
    from reasonact.reasoning.prm.commands import LabelConfig, label

    config = LabelConfig(
        train_problems=2, test_problems=0, samples=2, chunk=1, rollouts=RolloutConfig(k=2, max_steps=4), out=tmp_path
    )
    label(config)
    first = (tmp_path / "train.jsonl").read_text()
    (tmp_path / "train.jsonl").write_text(first + first.splitlines()[0][:30])  # a write cut mid-row
    report = label(dataclasses.replace(config, train_problems=3))
    rows = read_rows(tmp_path / "train.jsonl")
    assert (tmp_path / "train.jsonl").read_text().startswith(first)  # finished problems untouched
    assert len({r["uid"] for r in rows}) == 3 and all(len(r["mc_labels"]) == len(r["labels"]) for r in rows)
    assert report["steps"] == sum(len(r["labels"]) for r in rows) and 0 <= report["agreement"] <= 1


def test_label_agreement_reports_chance_corrected_kappa() -> None:
    from reasonact.reasoning.prm.commands import agreement

    # 9 of 10 steps wrong under each label, the two positives disagree: 80% raw agreement, no skill
    rows = [{"labels": [0] * 9 + [1], "mc_labels": [0.0] * 8 + [0.5, 0.0]}]
    report = agreement(rows)
    assert report["agreement"] == 0.8 and report["checker_positive_rate"] == 0.1 and report["mc_positive_rate"] == 0.1
    assert report["kappa"] == pytest.approx((0.8 - 0.82) / (1 - 0.82))  # below 0: worse than chance
    perfect = agreement([{"labels": [0, 1, 1], "mc_labels": [0.0, 1.0, 0.25]}])
    assert perfect["agreement"] == 1 and perfect["kappa"] == 1
    assert agreement([{"labels": [0, 0], "mc_labels": [0.0, 0.0]}])["kappa"] is None  # constant raters: undefined


def test_gemma_arm_of_the_verifier_study_runs_end_to_end(tmp_path, rows_file) -> None:
    """The Gemma arm with a tiny random Gemma 3 (char tokenizer) in place of the real weights: its
    own run directory, the study's first problems, every (method, N, problem) unit with its tokens,
    the report key, the page section and the plot panel; a rerun resumes instead of redoing units."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from reasonact.reasoning.step_lm import char_tokenizer
    from reasonact.reasoning.verifier_study import VerifierStudyConfig, run

    tokenizer = char_tokenizer()
    torch.manual_seed(0)
    gemma_config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=64,
        layer_types=["sliding_attention", "full_attention"], max_position_embeddings=2048,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    model = Gemma3ForCausalLM(gemma_config)
    model.save_pretrained(tmp_path / "gemma")
    tokenizer.save_pretrained(tmp_path / "gemma")
    prm = train_prm(PRMTrainConfig(data=rows_file, steps=2, batch=4, root=tmp_path, name="p"))
    config = VerifierStudyConfig(
        prm=str(prm),
        methods=("best_of_n:majority",),
        budgets=(1,),
        count=3,
        search=SearchConfig(max_steps=2, max_step_tokens=16),
        labels=tmp_path / "none.json",
        gemma_count=2,
        gemma_budgets=(1, 2),
        gemma_policy=f"gemma:{tmp_path / 'gemma'}",
        root=tmp_path,
        out=tmp_path / "report",
    )
    report = run(config)
    gemma = json.loads((tmp_path / "report.json").read_text())["gemma270m"]
    assert gemma == json.loads(json.dumps(report["gemma270m"])) and gemma["problems"] == 2
    records = [json.loads(line) for line in (tmp_path / "search_study_arithmetic_gemma" / "metrics.jsonl").open()]
    main = [json.loads(line) for line in (tmp_path / "search_study_arithmetic_prm" / "metrics.jsonl").open()]
    assert {r["uid"] for r in records} == {r["uid"] for r in main[:2]}  # the study's first problems
    assert sorted((r["method"], r["budget"]) for r in records) == sorted(
        (m, n) for m in ("best_of_n:majority", "beam") for n in (1, 2) for _ in range(2)
    )
    assert all(r["tokens"] > 0 and "error" not in r for r in records)
    for method, points in gemma["curves"].items():
        for p in points:
            unit = [r for r in records if r["method"] == method and r["budget"] == p["budget"]]
            assert p["tokens"] == sum(r["tokens"] for r in unit) / 2
            assert p["accuracy"] == sum(r["correct"] for r in unit) / 2
    assert [d["method"] for d in gemma["beam_minus_majority_at_equal_budget"]] == ["beam", "beam"]
    page = (tmp_path / "report.md").read_text()
    assert "## Gemma 3 270M" in page and "| PRM | beam | 2 |" in page
    run(config)  # resumes: nothing redone
    assert len((tmp_path / "search_study_arithmetic_gemma" / "metrics.jsonl").read_text().splitlines()) == 8


def test_gemma_policy_must_name_a_gemma_directory() -> None:
    from reasonact.reasoning.study import load_backend
    from reasonact.reasoning.verifier_study import VerifierStudyConfig

    with pytest.raises(ValueError, match=r"gemma:<model directory>.*nowhere"):
        load_backend("gemma:/nowhere", "arithmetic")
    with pytest.raises(ValueError, match=r"gemma_policy.*'small'"):
        VerifierStudyConfig(gemma_policy="small")
