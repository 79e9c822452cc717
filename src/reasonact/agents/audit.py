"""The sandbox's security suite: escape attempts, each judged contained or not.

A case is contained when (1) the attempt's effect did not happen, checked from the host where it
can be (no file outside scratch, no secret in the output, no connection, no surviving process,
bounded output, wall time within the limit), (2) the agent was told: the result is an error with
a message, and (3) the host is unaffected: after the whole suite, the host still runs a normal
sandbox and its own environment and working directory are unchanged.
`reasonact agent sandbox-audit --out PATH` writes {tried, contained, cases, …}.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from reasonact.agents.sandbox import RUNNER, ExecResult, SandboxConfig, isolation_layers, run_python

SECRET_VARIABLE = "REASONACT_AUDIT_SECRET"  # set in the host for the duration of the suite
ESCAPE_DIR = Path("/tmp")  # world-writable on the host: writes here must still fail


@dataclass(frozen=True)
class Case:
    name: str
    code: str  # the attempt; `{secret}`, `{escape}` are filled per run
    effect_absent: Callable[[ExecResult, dict[str, str]], bool]  # host-side check that it did not work


def _no_file(result: ExecResult, context: dict[str, str]) -> bool:
    return not Path(context["escape"]).exists()


def _no_marker(result: ExecResult, context: dict[str, str]) -> bool:
    return "ESCAPED" not in result.stdout


def _no_secret(result: ExecResult, context: dict[str, str]) -> bool:
    return context["secret"] not in result.stdout + result.stderr


_signals_received: list[int] = []  # SIGUSR1 deliveries to the host during the suite


def _host_not_signalled(result: ExecResult, context: dict[str, str]) -> bool:
    time.sleep(0.05)  # a queued signal runs its handler at the host's next bytecode
    return not _signals_received


def _no_survivor(result: ExecResult, context: dict[str, str]) -> bool:
    """No process of this sandbox is left on the host (its command line names the runner and scratch)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes()
            if RUNNER.name.encode() in text and context["scratch"].encode() in text:
                return False
        except OSError:  # the process ended while we looked
            continue
    return True


def _no_fork(result: ExecResult, context: dict[str, str]) -> bool:
    return _no_marker(result, context) and _no_survivor(result, context)


def _stopped(result: ExecResult, context: dict[str, str]) -> bool:
    stopped = result.outcome in ("cpu", "timeout", "memory", "output")
    return stopped and "ESCAPED" not in result.stdout and _no_survivor(result, context)


CASES: tuple[Case, ...] = (
    Case(
        "network_socket",
        "import socket\ns = socket.create_connection(('1.1.1.1', 80), timeout=2)\nprint('ESCAPED')",
        _no_marker,
    ),
    Case(
        "network_dns",
        "import socket\nprint(socket.gethostbyname('example.com'))\nprint('ESCAPED')",
        _no_marker,
    ),
    Case("write_outside_scratch", "open({escape!r}, 'w').write('x')", _no_file),
    Case("os_open_outside_scratch", "import os\nos.close(os.open({escape!r}, os.O_WRONLY | os.O_CREAT))", _no_file),
    Case(
        "symlink_out_of_scratch",
        "import os\nos.symlink({escape!r}, 'link')\nopen('link', 'w').write('x')",
        _no_file,
    ),
    Case(
        "secret_from_environment",
        "import os\nvalue = os.environ.get({variable!r})\nprint(value)\nassert value is not None, 'no secret'",
        _no_secret,
    ),
    Case(
        "secret_from_parent_proc",
        "print(open('/proc/1/environ').read())\nprint(open('/proc/{host_pid}/environ').read())",
        _no_secret,
    ),
    Case("fork_bomb", "import os\nwhile True:\n    os.fork()", _no_fork),
    Case("memory_bomb", "blocks = []\nwhile True:\n    blocks.append(bytearray(50 << 20))", _stopped),
    Case("memory_single_allocation", "x = bytearray(64 << 30)\nprint('ESCAPED')", _stopped),
    Case("infinite_loop", "while True:\n    pass", _stopped),
    Case("sleep_forever", "import time\ntime.sleep(10**6)", _stopped),
    Case("huge_output", "while True:\n    print('x' * 100_000)", _stopped),
    Case("huge_output_raw_fd", "import os\nwhile True:\n    os.write(1, b'y' * 100_000)", _stopped),
    Case("import_ctypes", "import ctypes\nctypes.CDLL(None).system(b'touch {escape}')", _no_file),
    Case("os_system", "import os\nassert os.system('touch {escape}') == 0", _no_file),
    Case(
        "subprocess",
        "import subprocess\nsubprocess.run(['touch', {escape!r}], check=True)",
        _no_file,
    ),
    Case("os_exec", "import os\nos.execv('/bin/sh', ['sh', '-c', 'touch {escape}'])", _no_file),
    Case("signal_host", "import os, signal\nos.kill({host_pid}, signal.SIGUSR1)", _host_not_signalled),
)


def run_case(case: Case, config: SandboxConfig) -> tuple[bool, bool, ExecResult]:
    """(the effect did not happen, the agent got an error, the result)."""
    escape = str(ESCAPE_DIR / f"reasonact-escape-{uuid.uuid4().hex}")
    context = {
        "escape": escape,
        "secret": os.environ[SECRET_VARIABLE],
        "variable": SECRET_VARIABLE,
        "host_pid": str(os.getpid()),
    }
    _signals_received.clear()
    previous = signal.signal(signal.SIGUSR1, lambda number, frame: _signals_received.append(number))
    try:
        with tempfile.TemporaryDirectory(prefix="reasonact-audit-") as scratch:
            context["scratch"] = str(Path(scratch).resolve())
            result = run_python(case.code.format(**context), config, Path(scratch))
            effect_absent = case.effect_absent(result, context)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    if Path(escape).exists():
        Path(escape).unlink()
    return effect_absent, not result.ok and bool(result.error), result


def run_suite(config: SandboxConfig) -> tuple[dict[str, tuple[bool, bool]], dict[str, dict]]:
    """name → (effect absent, reported as an error), and name → outcome details."""
    verdicts, outcomes = {}, {}
    os.environ[SECRET_VARIABLE] = uuid.uuid4().hex
    try:
        for case in CASES:
            effect_absent, reported, result = run_case(case, config)
            verdicts[case.name] = (effect_absent, reported)
            outcomes[case.name] = {"outcome": result.outcome, "error": result.error, "wall_s": round(result.wall_s, 3)}
    finally:
        del os.environ[SECRET_VARIABLE]
    return verdicts, outcomes


def sandbox_audit(config: SandboxConfig | None = None, kernel_layers: bool = True) -> dict:
    """Every case under `config`: {tried, contained, cases: name → contained, host_unaffected,
    outcomes, layers}; with `kernel_layers` (and namespaces here) the suite again without the audit
    hook, to show which attempts the kernel layers stop on their own (`without_audit_hook`)."""
    config = config or SandboxConfig(wall_seconds=4.0)
    before = (dict(os.environ), os.getcwd())
    verdicts, outcomes = run_suite(config)
    healthy = run_python("print(sum(range(10)))", config)
    host_unaffected = healthy.ok and healthy.stdout.strip() == "45" and (dict(os.environ), os.getcwd()) == before
    cases = {name: absent and reported and host_unaffected for name, (absent, reported) in verdicts.items()}
    report = {
        "tried": len(cases),
        "contained": sum(cases.values()),
        "cases": cases,
        "host_unaffected": host_unaffected,
        "outcomes": outcomes,
        "layers": isolation_layers(config),
        "config": dict(vars(config)),
    }
    if kernel_layers and config.audit_hook and isolation_layers(config)["network_namespace"]:
        bare, bare_outcomes = run_suite(replace(config, audit_hook=False))
        report["without_audit_hook"] = {
            "effect_absent": {name: absent for name, (absent, _) in bare.items()},
            "reported_as_error": {name: reported for name, (_, reported) in bare.items()},
            "outcomes": bare_outcomes,
        }
    return report
