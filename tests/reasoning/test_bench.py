"""`reasonact search bench tiny` runs end to end and writes the report keys."""

from __future__ import annotations

import json

from reasonact.cli import main


def test_bench_tiny_writes_report(tmp_path) -> None:
    out = tmp_path / "search.json"
    main(["search", "bench", "tiny", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["prefix_reuse_speedup"] > 0 and report["outputs_identical_fraction"] == 1.0
    assert report["vs_vllm_ratio"] is None and "vllm=False" in report["vllm_error"]
    assert report["prm_scoring"]["steps_per_s"] > 0
    assert len(report["machine"]["loadavg_start"]) == 3 and len(report["machine"]["loadavg_end"]) == 3
