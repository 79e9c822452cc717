"""The load test: a short soak (32 concurrent clients) with every reply checked, the reply checker itself, and
`reasonact serve bench` end to end (server subprocesses, JSON report keys)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reasonact.serving import EchoPolicy, ServerConfig, serve_in_thread
from reasonact.serving.bench import BenchConfig, _malformed, measure
from reasonact.serving.policy import ECHO_SPEC


def test_short_soak_32_clients_zero_failed_or_malformed() -> None:
    with serve_in_thread(EchoPolicy(delay_s=0.01), ServerConfig(port=0, max_batch=32)) as url:
        report = measure(url, BenchConfig(duration_s=3.0, warmup_s=0.5), (32,))["32"]
    assert report["failed"] == 0 and report["malformed"] == 0, report["errors"]
    assert report["replies"] > 32 and report["p99_ms"] >= report["p50_ms"] > 0
    assert report["mean_batch"] > 1  # concurrent requests were batched


def test_reply_checker_flags_schema_breaks() -> None:
    spec = ECHO_SPEC.to_dict()
    good = {"actions": np.zeros((10, 7), np.float32), "timing": {}}
    assert not _malformed(good, spec)
    assert _malformed({**good, "actions": np.zeros((10, 6), np.float32)}, spec)
    assert _malformed({**good, "actions": np.zeros((10, 7), np.float64)}, spec)
    assert _malformed({**good, "actions": np.full((10, 7), np.nan, np.float32)}, spec)
    assert _malformed({"actions": good["actions"]}, spec) and _malformed([good], spec)


@pytest.mark.slow
@pytest.mark.smoke
def test_cli_bench_writes_the_report_keys(tmp_path: Path) -> None:
    out = tmp_path / "serve.json"
    args = ["serve", "bench", "--policy", "echo", "--clients", "1", "4", "--duration-s", "1", "--warmup-s", "0.5",
            "--direct-iters", "5", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "reasonact.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert set(report["clients"]) == {"1", "4"} and set(report["unbatched"]) == {"4"}
    for level in report["clients"].values():
        assert {"p50_ms", "p99_ms", "failed"} <= set(level) and level["failed"] == level["malformed"] == 0
        assert level["replies"] > 0
    assert report["batching_speedup"] > 0 and report["direct_infer_ms"] >= 0
    assert "batched" in done.stdout and "max_batch=1" in done.stdout


def test_cli_serve_refuses_a_path_that_is_no_checkpoint_with_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "reasonact.cli", "serve", str(tmp_path)], capture_output=True,
                          text=True, timeout=120, env=env)  # fmt: skip
    assert done.returncode == 2 and "reasonact serve: error: checkpoint:" in done.stderr
    assert "is neither a `reasonact vla train` run directory" in done.stderr
