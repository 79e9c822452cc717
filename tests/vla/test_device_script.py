"""`benchmarks/device.sh --tiny` (issue 15's prepared device check) runs end to end on the CPU and writes the
summary keys the GPU run reports; a bad --device fails before any model is built."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path / "vla_device.json"), **env}
    return subprocess.run(
        ["bash", str(CHECKOUT / "benchmarks/device.sh"), *args], cwd=CHECKOUT, env=environment,
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_device_script_tiny_writes_the_summary(tmp_path: Path) -> None:
    done = _run(tmp_path, "--tiny")
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "vla_device.json").read_text())
    assert summary["device"] == "cpu" and summary["dtype"] == "float32" and summary["tiny"] is True
    for dims in ("paper", "pi05_300m"):
        numbers = summary[dims]
        assert numbers["sample_actions_ms"] > 0 and numbers["flow_vs_fast_ar_speedup"] > 0
        assert numbers["vs_peer_latency_ratio"] is None and numbers["peer_error"] == "disabled in this preset"
        assert numbers["fast_tokens_per_chunk"] > 1
        assert numbers["graph_captured_ms"] > 0  # this CPU has a C++ compiler: inductor compiles the expert step
        assert numbers["graph_captured_fast_ms"] > 0  # ... and the FAST decode step
        assert numbers["flow_vs_fast_ar_arms"] == "eager"  # the captured pair is the headline on a GPU only
        assert (
            numbers["flow_vs_fast_ar_speedup_captured"]
            == numbers["graph_captured_fast_ms"] / numbers["graph_captured_ms"]
        )
    # the training bench at tiny dims (train_tiny, ours alone) under "train", with each side's AdamW kernel
    train = summary["train"]
    assert train["error"] is None and train["device"] == "cpu" and train["dtype"] == "float32"
    assert 0 < train["train_mfu"] <= 1 and train["samples_per_s"]["ours"] > 0 and train["batch"] == 2
    assert train["train_vs_peer_throughput_ratio"] is None and train["peer_error"] == "disabled in this preset"
    assert train["ours_optimizer"] == "fused" and train["peer_optimizer"] is None


def test_device_script_refuses_a_bad_device_before_building(tmp_path: Path) -> None:
    done = _run(tmp_path, "--tiny", DEVICE="gpu")
    assert done.returncode != 0
    assert "--device: expected cpu, cuda, cuda:N or mps, received 'gpu'" in done.stderr
    assert "flow (cached prefix)" not in done.stdout and not (tmp_path / "vla_device.json").exists()
    assert _run(tmp_path, "--fast").returncode == 2
