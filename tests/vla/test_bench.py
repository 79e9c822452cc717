"""`reasonact vla bench tiny` runs end to end and writes every report key (speed goals are not asserted here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from benchmarks.vla_inference import BenchConfig, PeerConfig, measure_peer

from reasonact.cli import main


@pytest.mark.slow
def test_bench_tiny_writes_the_report_keys(tmp_path) -> None:
    out = tmp_path / "vla_inference.json"
    main(["vla", "bench", "tiny", "--iters", "1", "--second-dtype", "bfloat16", "--out", str(out)])
    report = json.loads(out.read_text())
    for key in ("flow_vs_fast_ar_speedup", "prefix_cache_speedup", "peer", "mfu", "loadavg_start", "loadavg_end"):
        assert key in report, key
    assert report["vs_peer_latency_ratio"] is None and report["peer_error"] == "disabled in this preset"
    assert report["prefix_cache_speedup"] > 0 and 0 < report["mfu"] < 1
    assert report["ours"]["sample_actions_flops"] > 0 and report["ours"]["fast_tokens_per_chunk"] > 1
    arm = report["second_arm"]  # our sample_actions again in bf16; no peer in this preset, so no ratio
    assert arm["dtype"] == "bfloat16" and arm["ours_prefix_s"] > 0 and 0 < arm["mfu"] < 1
    assert arm["vs_peer_latency_ratio"] is None and report["vs_peer_latency_ratio_bf16"] is None


def test_the_peer_runs_on_our_device_with_its_own_packages_first(tmp_path) -> None:
    """The command line handed to the peer harness: same device and dtype, `--peer.site` first on its path."""
    echo = tmp_path / "echo_peer.py"  # stands in for bench_pi05_device.py: prints its arguments as one JSON line
    echo.write_text("import json, os, sys\nprint(json.dumps({'argv': sys.argv[1:], 'path': os.environ['PYTHONPATH']}))")
    site = tmp_path / "peer_site"
    peer = PeerConfig(python=Path(sys.executable), script=echo, site=site, compile_mode="max-autotune")
    record, error = measure_peer(BenchConfig(peer=peer), "bfloat16", torch.device("cpu"))
    assert error is None
    argv = record["argv"]
    assert argv[argv.index("--device") + 1] == "cpu" and argv[argv.index("--dtype") + 1] == "bfloat16"
    assert argv[argv.index("--compile-mode") + 1] == "max-autotune"
    assert record["path"].split(":")[0] == str(site)


def test_fast_is_fitted_on_the_padded_action_dims_the_model_expects() -> None:
    """pi05_300m dims: 7 real action dims padded to the model's 32 (a 7-dim tokenizer is refused by KIVLA)."""
    import dataclasses

    from benchmarks.vla_inference import PRESETS, _fit_fast

    from reasonact.vla.model import check_fast_tokenizer

    cfg = dataclasses.replace(PRESETS["default"][1], fast_trajectories=3)
    fast, chunks = _fit_fast(cfg, cfg.model.horizon)
    assert chunks.shape[1:] == (cfg.model.horizon, 32) and fast.dim == 32
    assert (chunks[..., cfg.fast_dim :] == 0).all() and chunks[..., : cfg.fast_dim].std() > 0
    check_fast_tokenizer(fast, cfg.model)  # raises if it does not fit
