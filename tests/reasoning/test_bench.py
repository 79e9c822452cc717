"""`reasonact search bench tiny` runs end to end and writes the report keys."""

from __future__ import annotations

import json

import pytest
import torch

from reasonact.cli import main


def test_bench_tiny_writes_report(tmp_path) -> None:
    out = tmp_path / "search.json"
    main(["search", "bench", "tiny", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["prefix_reuse_speedup"] > 0 and report["outputs_identical_fraction"] == 1.0
    assert report["vs_vllm_ratio"] is None and "vllm=False" in report["vllm_error"]
    assert report["prm_scoring"]["steps_per_s"] > 0
    assert len(report["machine"]["loadavg_start"]) == 3 and len(report["machine"]["loadavg_end"]) == 3


def test_bench_refuses_a_bad_device_or_dtype_before_building(tmp_path, monkeypatch, capsys) -> None:
    import benchmarks.search as bench

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(bench, "_backend", no_model)
    out = tmp_path / "search.json"
    bad = {
        "--device gpu": "--device: expected cpu, cuda, cuda:N or mps, received 'gpu'",
        "--dtype fp8": "--dtype: expected one of float32, bfloat16, float16, received 'fp8'",
    }
    if not torch.cuda.is_available():
        bad["--device cuda"] = "--device: 'cuda' needs a CUDA GPU, but torch sees none on this machine"
    for flags, message in bad.items():
        with pytest.raises(SystemExit):
            main(["search", "bench", "tiny", *flags.split(), "--out", str(out)])
        assert message in capsys.readouterr().err
    assert not out.exists()
