"""Tasks: reference solutions pass their own step checker; wrong steps are caught at the right index."""

from __future__ import annotations

import pytest

from reasonact.reasoning.tasks import TASKS, ArithmeticTask, CountdownTask, EquationsTask, make_task, split_seed
from reasonact.reasoning.tasks.base import problem_of
from reasonact.reasoning.tasks.countdown import reachable
from reasonact.reasoning.tasks.expressions import ExpressionError, count_operations, evaluate, reduce_once


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
    assert task.check_answer(p, str(answer)) and not task.check_answer(p, "seven")
    assert not task.check_answer(p, f"{x} = {answer}")  # reasoning-gym's format: the number alone


def test_countdown_step_must_keep_target_reachable() -> None:
    task = CountdownTask()
    p = task.generate("test", 1)[0]
    assert task.check_steps(p, p.steps)[0].correct
    a, b = p.metadata["numbers"][:2]
    checks = task.check_step(p, (), f"{a} + {b} = {a + b + 1}")
    assert not checks.correct and checks.reason == "wrong arithmetic"
    assert not task.check_step(p, (), "1000 * 1000 = 1000000").correct  # numbers not available
    assert reachable((2.0, 3.0, 4.0), 20.0) and not reachable((1.0, 1.0), 5.0)
    assert not reachable((7.0, 100.0), 100.0)  # 100 alone leaves the 7 unused: every number must be used


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


@pytest.mark.parametrize("family", sorted(TASKS))
def test_every_reference_solution_of_200_generator_entries_passes_its_checker(family: str) -> None:
    """The checkers accept their own generator's worked solutions at reasoning-gym's default
    difficulty (gsm: the generator's chain of thought; countdown: up to 6 numbers); entries the
    solver cannot split into checkable steps are counted and must stay rare."""
    import reasoning_gym

    task = make_task(family)
    entries = reasoning_gym.create_dataset(task.generator, size=200, seed=5, **task.options())
    solved = []
    for i, entry in enumerate(entries):
        try:
            solved.append(problem_of(task, entry, str(i)))
        except ExpressionError:
            continue
    assert len(solved) >= 195, f"{200 - len(solved)} of 200 {family} entries have no checkable steps"
    for p in solved:
        assert task.first_error(p, p.steps) == -1, (p.question, p.steps, task.check_steps(p, p.steps))
        assert task.check_answer(p, p.answer)
    if family == "countdown":
        assert max(len(p.metadata["numbers"]) for p in solved) == 6


def test_defaults_are_reasoning_gyms_and_levels_are_named() -> None:
    arithmetic = make_task("arithmetic")
    assert (arithmetic.min_terms, arithmetic.max_terms, arithmetic.max_digits) == (2, 6, 4)
    assert arithmetic.operators == ("+", "-", "*", "/") and arithmetic.parentheses
    countdown = make_task("countdown")
    assert (countdown.min_numbers, countdown.max_numbers, countdown.min_target, countdown.max_target) == (
        4,
        6,
        100,
        999,
    )
    assert make_task("arithmetic", "easy").max_digits == 1
    with pytest.raises(ValueError, match="difficulty"):
        make_task("gsm", "easy")


def test_answers_are_judged_by_reasoning_gym_not_evaluated() -> None:
    """The echo case: repeating the question's expression is not an answer (reasoning-gym scores 0)."""
    task = make_task("arithmetic")
    p = next(q for q in task.generate("test", 20) if count_operations(q.metadata["expression"]) >= 2)
    assert task.check_answer(p, p.answer)
    assert not task.check_answer(p, p.metadata["expression"])  # evaluates to the answer, but is no answer
    assert task.first_error(p, [*p.steps[:-1], f"Answer: {p.metadata['expression']}"]) == len(p.steps) - 1
    gsm = make_task("gsm").generate("test", 1)[0]
    assert make_task("gsm").check_answer(gsm, gsm.answer) and not make_task("gsm").check_answer(gsm, "")
    countdown = make_task("countdown")
    c = countdown.generate("test", 1)[0]
    assert countdown.check_answer(c, c.answer) and not countdown.check_answer(c, str(c.metadata["target"]))
    assert countdown.answer_key(c.answer) == countdown.answer_key(c.answer.replace(" ", ""))
    assert task.answer_key("6.0") == task.answer_key(" 6 ") == "6" and task.answer_key("x  y") == "x y"
