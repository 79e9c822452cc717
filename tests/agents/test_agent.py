"""The agent loop end to end: flows, memory, tools, communication, malformed calls, traces."""

from __future__ import annotations

import json

import pytest
import torch

from reasonact.agents.agent import FLOWS, Flow, run_episode
from reasonact.agents.envs import make_env
from reasonact.agents.policy import BackendLM, ScriptedLM
from reasonact.agents.trace import load_trace, sft_records


@pytest.mark.parametrize("flow", ["structured", "flat"])
def test_rule_lm_solves_problems_with_the_calculator(rule_lm, flow):
    env = make_env("problems:arithmetic")
    traces = [run_episode(env, FLOWS[flow], rule_lm, seed, flow) for seed in range(4)]
    assert all(t.success and t.ended == "success" for t in traces)
    assert all(sum(t.errors.values()) == 0 for t in traces)
    tool_calls = [e for t in traces for e in t.events if e.output.startswith("calculator:")]
    assert len(tool_calls) == 4  # one calculator call per problem, its value then answered


def test_structured_flow_calls_functions_in_order_and_writes_memory(rule_lm):
    trace = run_episode(make_env("problems"), FLOWS["structured"], rule_lm, 0, "structured")
    assert [e.function for e in trace.events] == ["plan", "think", "use_tool", "act"]
    plan, think, tool, act = trace.events
    assert "Plan: compute the value, then answer" in think.prompt  # plan's output is memory think reads
    assert "Thoughts:" not in plan.prompt and "Reflections:" not in act.prompt  # empty slots are left out
    assert "Thoughts: use the calculator" in tool.prompt
    assert f"-> {tool.observation}" in act.prompt and act.output == f"answer {tool.observation}"


def test_split_information_needs_communication(rule_lm):
    env = make_env("split")
    talking = [run_episode(env, FLOWS["structured"], rule_lm, seed, "structured") for seed in range(4)]
    assert all(t.success for t in talking)
    assert all(any(e.function == "communicate" for e in t.events) for t in talking)
    silent = Flow(start=("plan",), step=("think", "use_tool", "act"))
    mute = [run_episode(env, silent, rule_lm, seed, "silent") for seed in range(4)]
    assert not any(t.success for t in mute)  # neither agent knows every number
    flat = [run_episode(env, FLOWS["flat"], rule_lm, seed, "flat") for seed in range(4)]
    assert all(t.success for t in flat)  # ReAct agents talk through `message: …` actions


def test_split_env_divides_the_numbers():
    env = make_env("split")
    env.reset(3)
    alice, bob = env.known["alice"], env.known["bob"]
    assert alice and bob and not set(alice) & set(bob)
    assert all(name in env.formula for name in {**alice, **bob})
    assert "bob knows the other numbers" in env.task("alice")


@pytest.mark.parametrize(
    ("output", "kind"),
    [
        ("dance wildly", "unparseable"),
        ("teleport: 3", "unknown_function"),
        ("calculator: 1/0", "tool_error"),
        ("python:", "bad_arguments"),
        ("", "unparseable"),
    ],
)
def test_malformed_calls_become_counted_error_observations(output, kind):
    lm = ScriptedLM(lambda prompt: output, name="broken")
    trace = run_episode(make_env("problems"), FLOWS["flat"], lm, 0, "flat")
    assert not trace.success and trace.ended == "max_steps" and trace.steps == 0
    assert trace.errors[kind] == len(trace.events) == make_env("problems").max_steps
    assert all(e.observation.startswith("error:") for e in trace.events)
    assert trace.events[1].prompt.count("Observation: error:") == 1  # the agent sees its error next step


def test_too_many_errors_in_a_row_end_the_episode_cleanly():
    pytest.importorskip("minigrid")  # the `agents` extra
    lm = ScriptedLM(lambda prompt: "???", name="broken")
    trace = run_episode(make_env("babyai"), FLOWS["flat"], lm, 0, "flat")
    assert trace.ended == "errors" and len(trace.events) == 6 and trace.errors["unparseable"] == 6


def test_untrained_lm_through_a_real_backend_runs_clean_episodes():
    """A randomly initialised char-level Llama behind BackendLM: garbage out, errors counted, no crash."""
    from reasonact.reasoning.backends.hf import HFBackend
    from reasonact.reasoning.step_lm import build_step_lm, char_tokenizer

    torch.manual_seed(0)
    tokenizer = char_tokenizer()
    backend = HFBackend(build_step_lm(32, 1, 2, len(tokenizer)), tokenizer, threads=1)
    backend.max_context = 4096  # the prompt is long in characters; the tiny model's positions are rotary
    lm = BackendLM(backend, temperature=1.0, name="random-char-llama")
    trace = run_episode(make_env("problems"), FLOWS["flat"], lm, 0, "flat")
    assert trace.ended == "max_steps" and not trace.success and trace.steps == 0
    assert trace.errors["unparseable"] == trace.lm_calls == 4


def test_trace_json_round_trip_and_sft_records(rule_lm, tmp_path):
    good = run_episode(make_env("problems"), FLOWS["structured"], rule_lm, 0, "structured")
    bad = run_episode(make_env("problems"), FLOWS["flat"], ScriptedLM(lambda p: "answer 999999"), 0, "flat")
    good.save(tmp_path / "good.json")
    data = json.loads((tmp_path / "good.json").read_text())
    assert data["success"] and data["lm_calls"] == 4 and data["errors"]["unparseable"] == 0
    assert load_trace(tmp_path / "good.json") == good
    records = sft_records([good, bad])
    assert [r["function"] for r in records] == ["plan", "think", "use_tool", "act"]  # only the success
    assert all(r["prompt"] == e.prompt for r, e in zip(records, good.events, strict=True))


def test_flow_validation_names_the_problem():
    with pytest.raises(ValueError, match="received 'dream'"):
        Flow(step=("dream", "act"))
    with pytest.raises(ValueError, match="expected an extrinsic function"):
        Flow(step=("think",))
    with pytest.raises(ValueError, match="env: expected one of"):
        make_env("chess")


def test_python_tool_runs_sandboxed_inside_episodes():
    lm = ScriptedLM(
        lambda p: (
            "python: import os\\nprint(sum(range(5)))"
            if p.endswith("Tool call:") and "Tool results:" not in p
            else ("answer 10" if p.endswith("Action:") else "ok")
        )
    )
    trace = run_episode(make_env("problems"), FLOWS["structured"], lm, 0, "structured")
    tool = next(e for e in trace.events if e.function == "use_tool")
    assert tool.observation == "10" and tool.error is None


@pytest.mark.parametrize(
    ("text", "call"),
    [
        ("calculator: 3+4", ("calculator", "3+4")),
        ("Calculator(3 + 4)", ("calculator", "3 + 4")),
        ("python[print(1)]", ("python", "print(1)")),
        ("python: print(sum(range(5)))", ("python", "print(sum(range(5)))")),
        ("`calculator: 2*3`", ("calculator", "2*3")),
        ("move forward", None),
    ],
)
def test_tool_call_syntax(text, call):
    from reasonact.agents.tools import parse_call

    assert parse_call(text) == call


def test_zero_shot_study_cli_writes_the_report_keys(tmp_path):
    from reasonact.cli import main

    out = tmp_path / "agent_study.json"
    args = ["--envs", "problems:arithmetic", "--seeds", "1", "--out", str(out), "--traces", str(tmp_path / "traces")]
    main(["agent", "study", "zero-shot-tiny", *args])
    summary = json.loads(out.read_text())
    assert summary["seeds"] == [0] and summary["lm"] == "random-char-llama"
    assert summary["structured_minus_flat"] == summary["structured_success"] - summary["flat_success"]
    assert summary["pooled"]["structured"]["episodes"] == summary["pooled"]["flat"]["episodes"] == 1
    assert (tmp_path / "traces" / "problems_arithmetic" / "flat" / "seed_0.json").exists()
    assert "| problems:arithmetic | structured |" in out.with_suffix(".md").read_text()


def test_invalid_action_observation_is_one_line_naming_the_action_forms():
    lm = ScriptedLM(lambda prompt: "answer 2 + 2" if prompt.endswith("Action:") else "ok")
    trace = run_episode(make_env("problems"), FLOWS["structured"], lm, 0, "structured")
    act = next(e for e in trace.events if e.function == "act")
    assert act.error == "unparseable"
    assert act.observation == "error: 'answer 2 + 2' is not an action here; actions: answer <number>"


def test_intrinsic_failures_are_counted_but_only_actions_spend_the_error_budget():
    pytest.importorskip("minigrid")  # the `agents` extra
    lm = ScriptedLM(lambda prompt: "move forward" if prompt.endswith("Action:") else "")
    trace = run_episode(make_env("babyai"), FLOWS["structured"], lm, 0, "structured")
    assert trace.ended in ("max_steps", "success") and trace.steps >= 1
    assert trace.errors["unparseable"] == sum(e.function != "act" for e in trace.events) >= 3  # empty plan/think/…


def test_run_cli_takes_the_teacher_or_a_policy_directory_and_names_a_bad_lm(tmp_path, capsys):
    from reasonact.cli import main

    out = tmp_path / "trace.json"
    main(["agent", "run", "problems", "--lm", "teacher", "--out", str(out)])
    assert json.loads(out.read_text())["success"] is True
    with pytest.raises(SystemExit):
        main(["agent", "run", "problems", "--lm", "gpt9", "--out", str(out)])
    assert "'teacher' or a policy directory (with config.json), received 'gpt9'" in capsys.readouterr().err
