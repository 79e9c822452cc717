"""The sandbox contains every escape attempt of the suite, tells the agent, and leaves the host alone."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from reasonact.agents.audit import CASES, SECRET_VARIABLE, run_case
from reasonact.agents.sandbox import SandboxConfig, isolation_layers, namespaces_available, run_python

FAST = SandboxConfig(cpu_seconds=1, wall_seconds=2.0, memory_mb=128)


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(SECRET_VARIABLE, "s3cr3t-value-4711")
    return "s3cr3t-value-4711"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_escape_attempt_is_contained_and_reported(case, secret):
    effect_absent, reported, result = run_case(case, FAST)
    assert effect_absent, f"{case.name}: the attempt worked ({result})"
    assert reported and result.observation().startswith("error: "), result
    assert secret not in result.stdout + result.stderr


@pytest.mark.skipif(not namespaces_available(), reason="no network/mount/pid namespaces on this machine")
@pytest.mark.parametrize(
    "name",
    ["network_socket", "write_outside_scratch", "fork_bomb", "secret_from_environment", "os_system", "signal_host"],
)
def test_kernel_layers_alone_stop_the_effect(name, secret):
    """With the audit hook off, namespaces + uid 65534 + rlimits still stop what matters."""
    case = next(c for c in CASES if c.name == name)
    effect_absent, _, result = run_case(case, replace(FAST, audit_hook=False))
    assert effect_absent, result


def test_normal_code_runs_and_prints_the_last_expression():
    result = run_python("x = 6 * 7\nprint('x is', x)\nx + 1", FAST)
    assert result.ok and result.stdout == "x is 42\n43\n" and result.error is None
    assert result.observation() == "x is 42\n43"


def test_scratch_is_writable_and_persists_between_calls(tmp_path: Path):
    first = run_python("open('notes.txt', 'w').write('kept')", FAST, scratch=tmp_path)
    second = run_python("print(open('notes.txt').read())", FAST, scratch=tmp_path)
    assert first.ok and second.stdout == "kept\n"
    assert (tmp_path / "notes.txt").read_text() == "kept"


def test_exceptions_come_back_as_the_last_traceback_line():
    result = run_python("def f():\n    return 1 / 0\nf()", FAST)
    assert result.outcome == "exception" and result.error == "ZeroDivisionError: division by zero"
    assert "line 2, in f" in result.stderr


def test_limits_come_back_as_named_outcomes():
    assert run_python("while True:\n    pass", FAST).outcome in ("cpu", "timeout")
    assert run_python("x = bytearray(1 << 30)", FAST).outcome == "memory"
    out = run_python("print('z' * 10**6)", replace(FAST, output_bytes=1000))
    assert out.outcome == "output" and len(out.stdout) <= 1000


def test_bad_code_and_config_are_refused_clearly():
    long = run_python("x" * 70_000, FAST)
    assert not long.ok and "code: expected at most 65536 characters, received 70000" in long.error
    with pytest.raises(ValueError, match="cpu_seconds: expected > 0, received 0"):
        SandboxConfig(cpu_seconds=0)
    with pytest.raises(ValueError, match="isolation"):
        SandboxConfig(isolation="docker")  # type: ignore[arg-type]


def test_process_isolation_fallback_still_contains_the_suite(secret):
    config = replace(FAST, isolation="process")
    assert not isolation_layers(config)["network_namespace"]
    for name in ("network_socket", "write_outside_scratch", "fork_bomb", "import_ctypes", "subprocess", "signal_host"):
        effect_absent, reported, result = run_case(next(c for c in CASES if c.name == name), config)
        assert effect_absent and reported, (name, result)


def test_sandbox_audit_cli_reports_every_case_contained_and_the_host_unaffected(tmp_path):
    import reasonact.agents.commands  # noqa: F401  (its imports may set variables such as MUJOCO_GL)
    from reasonact.cli import main

    environment, cwd = dict(os.environ), os.getcwd()
    out = tmp_path / "audit.json"
    main(["agent", "sandbox-audit", "--sandbox.cpu-seconds", "1", "--sandbox.wall-seconds", "2", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["tried"] == len(CASES) == len(report["cases"]) >= 15
    assert report["contained"] == report["tried"] and all(report["cases"].values())
    assert report["host_unaffected"] and dict(os.environ) == environment and os.getcwd() == cwd
    assert SECRET_VARIABLE not in os.environ
    if namespaces_available():  # the kernel layers alone stop every effect but the ctypes-level ones
        bare = report["without_audit_hook"]["effect_absent"]
        assert {name for name, absent in bare.items() if not absent} <= {"import_ctypes"}
