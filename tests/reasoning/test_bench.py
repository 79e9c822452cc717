"""`reasonact search bench tiny` runs end to end and writes the report keys; the arms alternate round
by round with equal threads."""

from __future__ import annotations

import json
import statistics
from dataclasses import replace

import pytest
import torch
from benchmarks.search import PRESETS, vllm_threads_bind

from reasonact.cli import main


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "search.json"
    main(["search", "bench", "tiny", "--out", str(out)])
    return json.loads(out.read_text())


def test_bench_tiny_writes_report(report) -> None:
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
        "--second-dtype fp8": "--second-dtype: expected one of float32, bfloat16, float16, received 'fp8'",
        "--threads 2 --vllm-threads-bind 0-3": "--vllm-threads-bind: expected 'auto' or a core list",
    }
    if not torch.cuda.is_available():
        bad["--device cuda"] = "--device: 'cuda' needs a CUDA GPU, but torch sees none on this machine"
    for flags, message in bad.items():
        with pytest.raises(SystemExit):
            main(["search", "bench", "tiny", *flags.split(), "--out", str(out)])
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_bench_tiny_alternates_arms_round_by_round(report) -> None:
    config = PRESETS["tiny"][1]
    order = ["ours", "ours_without_cascade", "ours_without_kv_store", "ours_second_dtype"]
    assert report["alternation"] == {"order": order, "rounds": 2, "statistic": "median round"}
    arms = {name: report[name] for name in order[:3]}
    arms["ours_second_dtype"] = report["second_arm"]
    for arm in arms.values():
        rates = [r["tokens_per_s"] for r in arm["rounds"]]
        assert len(rates) == 2 and arm["tokens_per_s"] == statistics.median(rates)
        assert arm["best_tokens_per_s"] == max(rates)
        for r in arm["rounds"]:
            assert r["tokens"] == config.nodes * config.n * config.max_new_tokens and len(r["loadavg"]) == 3
    starts = [arms[name]["rounds"][r]["started"] for r in range(2) for name in order]
    assert starts == sorted(starts)  # round 0 of every arm, then round 1 of every arm
    assert report["ours"]["threads"] == config.threads == 1 and report["ours"]["dtype"] == "float32"
    assert (
        report["second_arm"]["dtype"] == "bfloat16" and 0 <= report["second_arm"]["identical_to_headline_fraction"] <= 1
    )
    assert report["ours"]["mean_logprob"] < 0 and report["second_arm"]["mean_logprob"] < 0
    assert report["ours"]["cascade"] and report["ours_without_cascade"]["identical_to_ours_fraction"] == 1.0  # fp32
    pairs = zip(arms["ours"]["rounds"], arms["ours_without_cascade"]["rounds"], strict=True)
    ratios = [a["tokens_per_s"] / b["tokens_per_s"] for a, b in pairs]
    assert report["cascade_speedup_rounds"] == ratios and report["cascade_speedup"] > 0


def test_vllm_gets_as_many_cores_as_ours() -> None:
    config = PRESETS["long-prefix"][1]
    assert config.dtype == "bfloat16" and config.second_dtype == "float32"  # the headline is like for like
    assert config.threads == 1 and vllm_threads_bind(config) == "0"  # one core each, as ours is fastest here
    assert vllm_threads_bind(replace(config, threads=2)) == "0-1"
    assert vllm_threads_bind(replace(config, threads=2, vllm_threads_bind="0,3")) == "0,3"
    for bind in ("0-3", "0", "cores"):
        with pytest.raises(ValueError, match=f"--vllm-threads-bind: .* naming --threads \\(2\\) cores.*{bind!r}"):
            vllm_threads_bind(replace(config, threads=2, vllm_threads_bind=bind))
