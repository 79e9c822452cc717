"""STaR: kept rationales are correct, failures are rationalised with the hint, rounds resume, and a round
with nothing to keep is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonact.reasoning.step_lm import build_step_lm, char_tokenizer
from reasonact.reasoning.tasks import make_task
from reasonact.runs import Run
from reasonact.training.run_loop import OptimConfig
from reasonact.training.sequences import resolve_policy, save_policy
from reasonact.training.star import STaRConfig, collect, hinted, train_star


def test_hint_carries_the_answer() -> None:
    problem = make_task("arithmetic", "easy").generate("train", 1)[0]
    assert hinted(problem).question.endswith(f"(the answer is {problem.answer})")
    assert hinted(problem).uid == problem.uid


def test_kept_rationales_reach_the_right_answer() -> None:
    task = make_task("arithmetic", "easy")
    config = STaRConfig(problems=12, samples=2)
    problems = task.generate("train", 12, seed=4)
    examples, counts = collect(config, resolve_policy("tiny", "arithmetic"), problems, seed=0)
    assert counts["kept_direct"] + counts["kept_rationalised"] == len(examples) > 0
    by_question = {f"Question: {p.question}\n": p for p in problems}
    for ex in examples:
        steps = ex.completion.rstrip("\n").split("\n")
        assert "the answer is" not in ex.prompt  # rationalised examples are trained without the hint
        assert task.check_answer(by_question[ex.prompt], steps[-1].removeprefix("Answer:").strip())


def test_star_rounds_and_resume(tmp_path: Path) -> None:
    config = STaRConfig(rounds=2, problems=12, sft=OptimConfig(steps=2, lr=5e-4), root=tmp_path)
    final = train_star(config)
    assert final == tmp_path / "star" / "round_2" / "policy"
    rounds = Run(tmp_path / "star").metrics()
    assert [m["step"] for m in rounds] == [1, 2] and all(m["examples"] > 0 for m in rounds)
    assert train_star(config) == final  # finished rounds are not redone
    assert [m["step"] for m in Run(tmp_path / "star").metrics()] == [1, 2]


def test_a_round_without_correct_rationales_is_an_error(tmp_path: Path) -> None:
    tokenizer = char_tokenizer()
    untrained = save_policy(build_step_lm(32, 1, 2, len(tokenizer)), tokenizer, tmp_path / "m")
    config = STaRConfig(
        init=str(untrained), rounds=1, problems=3, samples=1, max_steps=2, max_step_tokens=4, root=tmp_path
    )
    with pytest.raises(ValueError, match="round 1: no rationale reached the right answer on 3 problems"):
        train_star(config)
