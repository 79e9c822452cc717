"""The study's statistics, its CLI, and (slow) the tiny study and benchmark end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reasonact.journey.study import ARMS, bootstrap

CHECKOUT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path = CHECKOUT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reasonact.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=900
    )


def test_bootstrap_intervals() -> None:
    assert bootstrap([[True] * 10, [True] * 5]) == [1.0, 1.0]
    lo, hi = bootstrap([[True, False] * 20])
    assert 0.3 < lo < 0.5 < hi < 0.7
    same = [[True, False, True, False]]
    assert bootstrap(same, same) == [0.0, 0.0]  # paired: identical arms differ by exactly 0
    lo, hi = bootstrap([[True] * 30 + [False] * 10], [[True] * 10 + [False] * 30])
    assert lo > 0.3 and hi < 0.7  # a 0.5 difference


def test_cli_lists_the_journey_commands() -> None:
    family = _cli("journey", "--help")
    assert family.returncode == 0 and "study" in family.stdout and "bench" in family.stdout
    study = _cli("journey", "study", "tiny", "--help")
    assert study.returncode == 0 and "--detours" in study.stdout and "--grpo.beta" in study.stdout
    train = _cli("train", "--help")
    assert train.returncode == 0 and "grpo" in train.stdout and "star" in train.stdout
    grpo = _cli("train", "grpo", "tiny", "--help")
    assert grpo.returncode == 0 and "--epsilon" in grpo.stdout and "--reward" in grpo.stdout


@pytest.mark.slow
@pytest.mark.smoke
def test_tiny_study_end_to_end_and_resumes(tmp_path: Path) -> None:
    out = _cli("journey", "study", "tiny", "--root", str(tmp_path), "--out", str(tmp_path / "report"))
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads((tmp_path / "report.json").read_text())
    for key in ("shortcut_acc", "journey_acc", "journey_minus_shortcut", "ci", "grpo_gain", "star_gain", "seeds"):
        assert key in summary
    assert set(summary["arms"]) == set(ARMS) and summary["seeds"] == [0]
    assert summary["journey_minus_shortcut"] == pytest.approx(summary["journey_acc"] - summary["shortcut_acc"])
    assert (tmp_path / "report.md").exists() and (tmp_path / "report.png").exists()
    again = _cli("journey", "study", "tiny", "--root", str(tmp_path), "--out", str(tmp_path / "report"))
    assert again.returncode == 0 and "step 1/" not in again.stdout  # nothing retrained, nothing re-evaluated
    assert json.loads((tmp_path / "report.json").read_text())["arms"] == summary["arms"]


@pytest.mark.slow
def test_bench_tiny_writes_the_ratio(tmp_path: Path) -> None:
    out = _cli("journey", "bench", "tiny", "--out", str(tmp_path / "bench.json"))
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["vs_trl_grpo_throughput_ratio"] > 0
    for arm in ("ours", "trl"):
        assert 0 < result[arm]["generate_s"] < result[arm]["step_s"]
