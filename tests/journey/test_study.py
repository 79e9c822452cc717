"""The study's statistics, its CLI, and (slow) the tiny study and benchmark end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reasonact.journey.construct import ConstructConfig
from reasonact.journey.derive import journey, parse_thought, shortcut, to_example
from reasonact.journey.study import ARMS, JourneyStudyConfig, bootstrap, trees_for

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


def test_dialogue_trees_derive_into_journeys_and_keep_their_transcript(tmp_path: Path) -> None:
    config = JourneyStudyConfig(
        seeds=(0,), problems=12, construct=ConstructConfig(width=3, attempts=2, max_rounds=12), construction="dialogue"
    )
    path = tmp_path / "trees.json"
    trees = trees_for(config, 0, path)
    solved = [t for t in trees if t.answer_node is not None]
    assert len(trees) == 12 and solved  # the tiny policy with the checker critic solves some (2 of 12)
    assert any(len(journey(t, 2, 0)) > len(shortcut(t)) for t in solved)  # a wrong branch is visited
    for t in solved:
        thought = journey(t, detours=2, seed=0)
        assert parse_thought(thought).steps == tuple(shortcut(t))  # the detours read back into the shortcut
        assert to_example(t, thought).completion.rstrip("\n").endswith(t.tree.nodes[t.answer_node].step)
    text = (tmp_path / "dialogue.md").read_text()
    assert text.startswith("# Tree construction: dialogue, critic checker")
    assert text.count("    policy: ") == sum(len(t.order) for t in trees)  # one line per judged proposal
    assert [t.to_json() for t in trees_for(config, 0, path)] == [t.to_json() for t in trees]  # read back, not rebuilt
    with pytest.raises(ValueError, match="--construction dialogue"):
        JourneyStudyConfig(construct=ConstructConfig(dialogue=True))
    with pytest.raises(ValueError, match="critic: expected 'checker', 'lm'"):
        trees_for(JourneyStudyConfig(critic="nope"), 0, tmp_path / "other.json")


def test_cli_lists_the_journey_commands() -> None:
    family = _cli("journey", "--help")
    assert family.returncode == 0 and "study" in family.stdout and "bench" in family.stdout
    study = _cli("journey", "study", "tiny", "--help")
    assert study.returncode == 0 and "--detours" in study.stdout and "--grpo.beta" in study.stdout
    assert "--construction" in study.stdout and "--critic" in study.stdout
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
def test_tiny_study_with_dialogue_trees(tmp_path: Path) -> None:
    args = ("--construction", "dialogue", "--critic", "oracle", "--root", str(tmp_path), "--out", str(tmp_path / "r"))
    out = _cli("journey", "study", "tiny", *args)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads((tmp_path / "r.json").read_text())
    for key in ("shortcut_acc", "journey_acc", "journey_minus_shortcut", "ci", "grpo_gain", "star_gain", "seeds"):
        assert key in summary
    assert summary["construction"] == "dialogue" and summary["critic"] == "oracle"
    assert summary["config"]["construction"] == "dialogue"
    assert summary["data"]["0"]["solved_trees"] > 0 and summary["data"]["0"]["journey_detours"] > 0
    assert "critic: backtrack: scored 0.00" in (tmp_path / "journey_study_tiny" / "seed_0" / "dialogue.md").read_text()


@pytest.mark.slow
def test_bench_tiny_writes_the_ratio(tmp_path: Path) -> None:
    out = _cli("journey", "bench", "tiny", "--out", str(tmp_path / "bench.json"))
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["vs_trl_grpo_throughput_ratio"] > 0
    for arm in ("ours", "trl"):
        assert 0 < result[arm]["generate_s"] < result[arm]["step_s"]
