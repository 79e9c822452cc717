"""A sandboxed Python interpreter: user code runs in a separate, limited process.

Layers, each enforced independently (the security tests switch the audit hook off to show the
kernel layers hold on their own where namespaces are available):

* **namespaces** (when `unshare` works here, as root or with user namespaces): a fresh network
  namespace (only a downed loopback: no network at all), a mount namespace in which every mount
  is read-only except the scratch directory, and a pid namespace (`--kill-child`: killing the
  sandbox kills every process it started; host processes are invisible in its /proc);
* **an unprivileged uid** (65534) when started as root, so file permissions and RLIMIT_NPROC bind;
* **resource limits**: CPU seconds, address space, processes, file size, open files;
* **a clean environment** (PATH and LANG only: no host secrets), `python -I -S` (no site-packages,
  no PYTHON* variables), cwd = scratch;
* **an audit hook** (PEP 578) that refuses sockets, process creation, ctypes, writes outside scratch
  and other processes' /proc files with a readable `PermissionError` (audit hooks alone are not a
  security boundary; they turn what the layers above would stop into clear error messages);
* **host-side limits**: a wall-clock timeout and an output cap; either kills the whole sandbox.

Every failure comes back as an `ExecResult` with `ok=False` and an `error` line for the agent,
never as an exception in the host.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reasonact.agents import sandbox_runner

RUNNER = Path(sandbox_runner.__file__)
UNSHARE = ("--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc")
Isolation = Literal["auto", "namespaces", "process"]
Outcome = Literal["ok", "exception", "blocked", "memory", "cpu", "timeout", "output", "crash"]


@dataclass(frozen=True)
class SandboxConfig:
    cpu_seconds: int = 2  # RLIMIT_CPU of the interpreter (SIGXCPU, then SIGKILL a second later)
    wall_seconds: float = 5.0  # wall-clock limit; the whole sandbox is killed after it
    memory_mb: int = 256  # RLIMIT_AS (address space) of each sandbox process
    output_bytes: int = 16_384  # stdout + stderr kept; more kills the sandbox
    file_mb: int = 8  # RLIMIT_FSIZE: largest file the code may write in scratch
    max_processes: int = 4  # RLIMIT_NPROC for the unprivileged uid (all its processes on the host)
    max_code_chars: int = 65_536  # longer code is refused before anything starts
    isolation: Isolation = "auto"  # namespaces when a probe sandbox works here, else a plain limited process
    audit_hook: bool = True  # PEP 578 hook with readable refusals (off only to test the other layers)

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "wall_seconds", "memory_mb", "output_bytes", "file_mb", "max_processes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected > 0, received {getattr(self, name)}")
        if self.isolation not in ("auto", "namespaces", "process"):
            raise ValueError(f"isolation: expected auto|namespaces|process, received {self.isolation!r}")


@dataclass(frozen=True)
class ExecResult:
    outcome: Outcome  # ok, or why not
    stdout: str  # captured standard output (capped)
    stderr: str  # captured standard error (capped); the traceback of an uncaught exception
    error: str | None  # one line for the agent when outcome != ok
    returncode: int | None  # the interpreter's exit status (negative: killed by that signal)
    wall_s: float  # seconds from start to exit

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def observation(self) -> str:
        """What the agent sees: the output, or `error: …` and the output so far."""
        text = self.stdout.rstrip()
        if self.ok:
            return text or "(no output)"
        return f"error: {self.error}" + (f"\n{text}" if text else "")


@functools.cache
def namespaces_available() -> bool:
    """Does the namespaced sandbox work here? Tried once for real (`print(1)`): `unshare` must run and
    the runner must manage its mounts and uid change, which containers without privileges refuse."""
    if shutil.which("unshare") is None:
        return False
    try:
        probe = _sandbox("print(1)", SandboxConfig(wall_seconds=10.0), None, namespaces=True)
    except OSError:
        return False
    return probe.ok and probe.stdout == "1\n"


def isolation_layers(config: SandboxConfig, scratch: Path | None = None) -> dict[str, bool]:
    """Which layers a sandbox with `config` (and `scratch`, default a fresh /tmp directory) gets here."""
    namespaces = _use_namespaces(config)
    scratch_path = str(Path(scratch or tempfile.gettempdir()).resolve())
    return {
        "network_namespace": namespaces,
        "read_only_mounts": namespaces,
        "pid_namespace": namespaces,
        "unprivileged_uid": os.getuid() != 0 or sandbox_runner.can_drop_privileges(namespaces, scratch_path),
        "resource_limits": True,
        "clean_environment": True,
        "audit_hook": config.audit_hook,
    }


def _use_namespaces(config: SandboxConfig) -> bool:
    if config.isolation == "process":
        return False
    available = namespaces_available()
    if config.isolation == "namespaces" and not available:
        raise ValueError("isolation: 'namespaces' requested but a namespaced probe sandbox fails here; use auto")
    return available


def run_python(code: str, config: SandboxConfig | None = None, scratch: Path | None = None) -> ExecResult:
    """Run `code` in a fresh sandbox; `scratch` (default: a temporary directory removed afterwards)
    is the only writable directory and the working directory."""
    config = config or SandboxConfig()
    if not isinstance(code, str):
        return _refused(f"code: expected a string, received {type(code).__name__}")
    if len(code) > config.max_code_chars:
        return _refused(f"code: expected at most {config.max_code_chars} characters, received {len(code)}")
    return _sandbox(code, config, scratch, _use_namespaces(config))


def _sandbox(code: str, config: SandboxConfig, scratch: Path | None, namespaces: bool) -> ExecResult:
    with tempfile.TemporaryDirectory(prefix="reasonact-sandbox-") as temporary:
        root = Path(scratch or temporary).resolve()
        root.mkdir(parents=True, exist_ok=True)
        header = {
            "scratch": str(root),
            "namespaces": namespaces,
            "audit_hook": config.audit_hook,
            "cpu_seconds": config.cpu_seconds,
            "memory_bytes": config.memory_mb << 20,
            "file_bytes": config.file_mb << 20,
            "max_processes": config.max_processes,
        }
        command = [sys.executable, "-I", "-S", "-u", str(RUNNER), str(root)]  # scratch: names it in `ps`
        if namespaces:
            command = [str(shutil.which("unshare")), *UNSHARE, *command]
        return _execute(command, json.dumps(header) + "\n" + code, root, config)


def _refused(error: str) -> ExecResult:
    return ExecResult("exception", "", "", error, None, 0.0)


def _execute(command: list[str], stdin: str, cwd: Path, config: SandboxConfig) -> ExecResult:
    start = time.monotonic()
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        start_new_session=True,  # its own process group: one kill reaches everything it started
    )
    assert process.stdin and process.stdout and process.stderr
    try:
        process.stdin.write(stdin.encode())
        process.stdin.close()
    except BrokenPipeError:
        pass
    streams = {process.stdout.fileno(): bytearray(), process.stderr.fileno(): bytearray()}
    killed: Outcome | None = None
    with selectors.DefaultSelector() as selector:
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map() and killed is None:
            left = start + config.wall_seconds - time.monotonic()
            if left <= 0:
                killed = "timeout"
                break
            for key, _ in selector.select(timeout=left):
                chunk = os.read(key.fd, 65_536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                streams[key.fd] += chunk
                if sum(len(s) for s in streams.values()) > config.output_bytes:
                    killed = "output"
    if killed is not None:
        _kill(process)
    returncode, cpu = _reap(process, start + config.wall_seconds)
    if returncode is None:  # closed its pipes but kept running
        killed = "timeout"
        _kill(process)
        returncode, cpu = _reap(process, float("inf"))
    for pipe in (process.stdout, process.stderr):
        pipe.close()
    wall = time.monotonic() - start
    stdout, stderr = (bytes(s[: config.output_bytes]).decode(errors="replace") for s in streams.values())
    cpu_limited = returncode == -signal.SIGXCPU or cpu >= 0.9 * config.cpu_seconds  # tick-granular accounting
    if cpu_limited and returncode != 0 and killed is None:
        killed = "cpu"
    outcome, error = _classify(killed, returncode, stderr, config)
    return ExecResult(outcome, stdout, stderr, error, returncode, wall)


def _reap(process: subprocess.Popen, deadline: float) -> tuple[int | None, float]:
    """(exit status or None if still running at `deadline`, CPU seconds of the sandbox and of every
    process it waited for). `wait4` gives the CPU time even through `unshare --fork`, which reports
    a child killed by SIGXCPU/SIGKILL only as exit status 1."""
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage.ru_utime + usage.ru_stime
        if time.monotonic() >= deadline:
            return None, 0.0
        time.sleep(0.005)


def _kill(process: subprocess.Popen) -> None:
    """SIGKILL the sandbox's process group (with namespaces, its pid namespace dies with it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _classify(
    killed: Outcome | None, returncode: int | None, stderr: str, config: SandboxConfig
) -> tuple[Outcome, str | None]:
    if killed == "timeout":
        return "timeout", f"wall-clock limit of {config.wall_seconds:g} s exceeded; the code was stopped"
    if killed == "output":
        return "output", f"output exceeded {config.output_bytes} bytes; the code was stopped"
    if returncode == 0:
        return "ok", None
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if killed == "cpu":
        return "cpu", f"CPU time limit of {config.cpu_seconds} s exceeded; the code was stopped"
    if last.startswith("MemoryError"):
        return "memory", f"memory limit of {config.memory_mb} MB exceeded (MemoryError)"
    if "sandbox:" in last:
        return "blocked", last
    if returncode == 1 and last:
        return "exception", last
    return "crash", f"the interpreter died (exit status {returncode}){': ' + last if last else ''}"
