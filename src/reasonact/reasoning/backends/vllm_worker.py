"""Run generation requests through `VLLMBackend` in the vLLM venv, and the parent's end of that pipe.

Two modes, both started under the vLLM venv's interpreter:

    .venv-vllm/bin/python -m reasonact.reasoning.backends.vllm_worker request.json result.json
    .venv-vllm/bin/python -m reasonact.reasoning.backends.vllm_worker --serve request.json

request: {"model", "header", "rounds": [[prompt, …], …], "n", "max_new_tokens", "temperature",
"seed", "stop", "engine": {…}}. The file mode times each listed round after one untimed warm-up
prompt and writes {"load_seconds", "rounds": [{"seconds", "generations"}]} (the slow test uses it).
The serve mode loads the engine once, warms up on `rounds[0]`, replies {"load_seconds"}, then
answers one JSON line of prompts on stdin with one JSON line {"seconds", "generations"} on stdout
until stdin closes: the benchmark's `Worker` sends it one round at a time, so vLLM's rounds
alternate with ours in time and a change of machine load hits both engines alike. vLLM's own
logging goes to stderr in this mode, so stdout carries only replies.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO


def _engine(request: dict[str, Any]):
    """Build the backend from a request and run its untimed warm-up → (backend, load seconds, sampling args)."""
    from reasonact.reasoning.backends.vllm import VLLMBackend

    started = time.perf_counter()
    backend = VLLMBackend(request["model"], header=request.get("header", ""), **request.get("engine", {}))
    load_seconds = time.perf_counter() - started
    args = (request["n"], request["max_new_tokens"], request["temperature"], request["seed"], request["stop"])
    backend.generate_texts(request["rounds"][0][:1], *args)  # warm-up: first-call overheads, not the workload
    return backend, load_seconds, args


def _round(backend, prompts: list[str], args: tuple) -> dict[str, Any]:
    """One timed `generate_texts` call → {"seconds", "generations": [[Generation as dict]]}."""
    start = time.perf_counter()
    generations = backend.generate_texts(prompts, *args)
    return {"seconds": time.perf_counter() - start, "generations": [[asdict(g) for g in gs] for gs in generations]}


def main(request_path: str, result_path: str) -> None:
    """File mode: every round of the request, timed, into `result_path`."""
    with open(request_path) as f:
        request = json.load(f)
    backend, load_seconds, args = _engine(request)
    rounds = [_round(backend, prompts, args) for prompts in request["rounds"]]
    with open(result_path, "w") as f:
        json.dump({"load_seconds": load_seconds, "rounds": rounds}, f)


def serve(request_path: str, replies: TextIO, requests: TextIO) -> None:
    """Serve mode: load once, then one reply line per request line until `requests` closes."""
    with open(request_path) as f:
        request = json.load(f)
    backend, load_seconds, args = _engine(request)
    replies.write(json.dumps({"load_seconds": load_seconds}) + "\n")
    replies.flush()
    for line in requests:
        replies.write(json.dumps(_round(backend, json.loads(line), args)) + "\n")
        replies.flush()


class Worker:
    """The parent's end of a serve-mode worker: start it, send rounds one at a time, close it.

    `python` is the vLLM venv's interpreter, `env` the worker's environment (thread binding,
    KV space), `log` a file for the worker's stderr (vLLM's logs; its tail goes into errors)."""

    def __init__(self, python: Path, request: dict[str, Any], env: dict[str, str], log: Path, timeout_s: float):
        self.timeout_s = timeout_s  # longest wait for any one reply (engine load included)
        self.log = log
        request_path = log.with_suffix(".request.json")
        request_path.write_text(json.dumps(request))
        module = "reasonact.reasoning.backends.vllm_worker"
        with open(log, "w") as err:
            self.process = subprocess.Popen(
                [str(python), "-m", module, "--serve", str(request_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=env,
            )
        self.load_seconds = self._reply()["load_seconds"]  # blocks until the engine is up and warm

    def round(self, prompts: list[str]) -> dict[str, Any]:
        """One timed round on the worker → {"seconds", "generations"}."""
        self.process.stdin.write(json.dumps(prompts) + "\n")
        self.process.stdin.flush()
        return self._reply()

    def _reply(self) -> dict[str, Any]:
        ready, _, _ = select.select([self.process.stdout], [], [], self.timeout_s)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.close()
            why = f"exited {self.process.returncode}" if ready else f"gave no reply within {self.timeout_s:.0f} s"
            raise RuntimeError(f"vLLM worker {why}: {self.log.read_text()[-1500:]}")
        return json.loads(line)

    def close(self) -> None:
        """Close its stdin (it exits), wait a minute, then kill it."""
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")  # the real stdout carries replies only …
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # … everything else printed goes to stderr
        sys.stdout = sys.stderr
        serve(sys.argv[2], replies, sys.stdin)
    else:
        main(sys.argv[1], sys.argv[2])
