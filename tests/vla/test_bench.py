"""`reasonact vla bench tiny` runs end to end and writes every report key (speed goals are not asserted here)."""

from __future__ import annotations

import json

import pytest

from reasonact.cli import main


@pytest.mark.slow
def test_bench_tiny_writes_the_report_keys(tmp_path) -> None:
    out = tmp_path / "vla_inference.json"
    main(["vla", "bench", "tiny", "--iters", "1", "--out", str(out)])
    report = json.loads(out.read_text())
    for key in ("flow_vs_fast_ar_speedup", "prefix_cache_speedup", "peer", "mfu", "loadavg_start", "loadavg_end"):
        assert key in report, key
    assert report["vs_peer_latency_ratio"] is None and report["peer_error"] == "disabled in this preset"
    assert report["prefix_cache_speedup"] > 0 and 0 < report["mfu"] < 1
    assert report["ours"]["sample_actions_flops"] > 0 and report["ours"]["fast_tokens_per_chunk"] > 1
