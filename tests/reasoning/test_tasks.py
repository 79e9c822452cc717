"""Tasks: reference solutions pass their own step checker; wrong steps are caught at the right index."""

from __future__ import annotations

import pytest

from reasonact.reasoning.tasks import TASKS, ArithmeticTask, CountdownTask, EquationsTask, make_task, split_seed
from reasonact.reasoning.tasks.countdown import reachable
from reasonact.reasoning.tasks.expressions import ExpressionError, evaluate, reduce_once


@pytest.mark.parametrize("family", sorted(TASKS))
def test_reference_solutions_are_correct_step_by_step(family: str) -> None:
    task = make_task(family)
    problems = task.generate("val", 12, seed=1)
    assert len(problems) == 12
    for p in problems:
        assert p.steps[-1].startswith("Answer:")
        assert task.first_error(p, p.steps) == -1, (p.question, p.steps, task.check_steps(p, p.steps))


@pytest.mark.parametrize("family", sorted(TASKS))
def test_splits_are_disjoint_and_reproducible(family: str) -> None:
    task = make_task(family)
    train = task.generate("train", 10)
    assert [p.question for p in train] == [p.question for p in task.generate("train", 10)]
    test = task.generate("test", 10)
    assert {p.uid for p in train}.isdisjoint({p.uid for p in test})
    assert split_seed("train", 0) != split_seed("test", 0)


def test_arithmetic_checker_finds_earliest_wrong_step() -> None:
    task = ArithmeticTask()
    problem = next(p for p in task.generate("test", 20) if len(p.steps) >= 4)
    good = list(problem.steps)
    wrong_value = [good[0], "12345", *good[2:]]
    assert task.first_error(problem, wrong_value) == 1
    assert task.first_error(problem, [problem.metadata["expression"], *good]) == 0  # no progress
    assert task.first_error(problem, ["3 +* 4", *good]) == 0  # unparseable
    assert task.first_error(problem, ["", *good]) == 0  # empty
    assert task.first_error(problem, [*good[:-1], "Answer: 99999"]) == len(good) - 1
    checks = task.check_steps(problem, wrong_value)
    assert all(not c.correct for c in checks[1:]) and "value changed" in checks[1].reason


def test_equation_steps_are_judged_by_their_solution() -> None:
    task = EquationsTask()
    p = task.generate("test", 1)[0]
    x, answer = p.metadata["variable"], int(p.answer)
    assert task.check_step(p, (), f"2*{x} = {2 * answer}").correct
    assert not task.check_step(p, (), f"2*{x} = {2 * answer + 1}").correct
    assert not task.check_step(p, (), f"{x}*{x} = {answer * answer}").correct  # not linear
    assert task.check_answer(p, f"{x} = {answer}") and not task.check_answer(p, "seven")


def test_countdown_step_must_keep_target_reachable() -> None:
    task = CountdownTask()
    p = task.generate("test", 1)[0]
    assert task.check_steps(p, p.steps)[0].correct
    a, b = p.metadata["numbers"][:2]
    checks = task.check_step(p, (), f"{a} + {b} = {a + b + 1}")
    assert not checks.correct and checks.reason == "wrong arithmetic"
    assert not task.check_step(p, (), "1000 * 1000 = 1000000").correct  # numbers not available
    assert reachable((2, 3, 4), 20) and not reachable((1, 1), 5)


def test_expressions_refuse_unsafe_or_broken_input() -> None:
    for bad in ["__import__('os')", "1 / 0", "2 ** 8", "x + 1", "", "1" * 500]:
        with pytest.raises(ExpressionError):
            evaluate(bad)
    _, op, value = reduce_once(compile_expr("2 + 3 * 4"))
    assert value == 12 and op is not None


def compile_expr(text: str):
    from reasonact.reasoning.tasks.expressions import parse

    return parse(text)


def test_generate_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="split"):
        ArithmeticTask().generate("dev", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n:"):
        ArithmeticTask().generate("train", -1)
    with pytest.raises(ValueError, match="family"):
        make_task("chess")
