"""`reasonact vla bench --train`: our training step vs LeRobot pi05's, report keys and flag checks
(throughput goals are measured by the benchmark, not asserted here)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from benchmarks.peer_pi05_train import parse_args
from benchmarks.vla_inference import PRESETS, PeerConfig
from benchmarks.vla_train import peer_args, run, train_summary

from reasonact.cli import main


def _report(tmp_path, *flags: str) -> dict:
    out = tmp_path / "train.json"
    main(["vla", "bench", "train_tiny", *flags, "--out", str(out)])
    return json.loads(out.read_text())


def test_ours_alone_writes_the_keys_with_a_finite_mfu(tmp_path) -> None:
    report = _report(tmp_path, "--peer.no-enabled")
    assert report["train_vs_peer_throughput_ratio"] is None and report["peer_error"] == "disabled in this preset"
    assert 0 < report["train_mfu"] <= 1 and math.isfinite(report["train_mfu"])
    assert report["samples_per_s"]["ours"] > 0 and report["train_step_flops"] > 0
    assert len(report["rounds"]) == 1 and len(report["rounds"][0]["ours_step_s"]) == 2  # the preset's iters
    # warmup + timed steps + the counted one, all through train_on_batch: finite, and the model learns the batch
    losses = report["ours_losses"]
    assert len(losses) == 1 + 2 + 1 and all(map(math.isfinite, losses)) and losses[-1] < losses[0]
    assert report["dims"]["variant"] == "pi05" and report["batch"] == 2
    assert report["ours_optimizer"] == "fused" and report["peer_optimizer"] is None
    # benchmarks/device.sh's "train" entry: the headline of this report, or every key None with the error
    headline = train_summary(tmp_path / "train.json")
    assert headline["error"] is None and headline["train_mfu"] == report["train_mfu"]
    assert headline["ours_optimizer"] == "fused" and headline["params"] == report["params"]["ours"]
    missing = train_summary(tmp_path / "absent.json", "timed out after 240 s")
    assert set(missing) == set(headline) and missing["error"] == "timed out after 240 s"
    assert missing["train_mfu"] is None and missing["samples_per_s"] is None


def test_train_on_an_inference_preset_leaves_its_result_alone(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    main(["vla", "bench", "tiny", "--train", "--peer.no-enabled", "--iters", "1", "--rounds", "1"])
    assert json.loads((tmp_path / "runs/bench/vla_train.json").read_text())["train_mfu"] > 0
    assert not (tmp_path / "benchmarks").exists()  # tiny's inference report path was not written


def test_the_peer_is_told_our_dims() -> None:
    """Every dim of our model reaches the peer harness as the flag it parses (no lerobot needed to check)."""
    cfg = PRESETS["train"][1]
    m = dataclasses.replace(cfg.model, variant="pi05")
    a = parse_args(peer_args(cfg, m, "float32"))
    assert (a.vlm_width, a.vlm_depth, a.vlm_mlp, a.kv_heads, a.head_dim) == (
        m.lm.width, m.lm.depth, m.lm.mlp_dim, m.lm.kv_heads, m.lm.head_dim
    )  # fmt: skip
    assert (a.expert_width, a.expert_mlp) == (m.expert.width, m.expert.mlp_dim)
    v = m.vision
    assert (a.vision_width, a.vision_depth, a.vision_mlp, a.vision_heads, a.patch_size, a.image_size) == (
        v.width, v.depth, v.mlp_dim, v.heads, v.patch_size, v.image_size
    )  # fmt: skip
    assert (a.chunk, a.max_action_dim, a.prompt_tokens, a.n_cameras) == (
        m.horizon,
        m.action_dim,
        m.max_prompt_tokens,
        1,
    )
    assert (a.batch, a.threads, a.warmup, a.iters, a.dtype) == (
        cfg.batch,
        cfg.threads,
        cfg.warmup,
        cfg.iters,
        "float32",
    )


@pytest.mark.parametrize(
    ("flags", "named"),
    [(["--dtype", "float64"], "--dtype"), (["--device", "tpu"], "--device"), (["--batch", "0"], "--batch")],
)
def test_bad_flags_are_named(tmp_path, capsys, flags: list[str], named: str) -> None:
    with pytest.raises(SystemExit):
        _report(tmp_path, *flags)
    assert f"error: {named}:" in capsys.readouterr().err


def test_dims_the_peer_cannot_build_are_refused() -> None:
    cfg = PRESETS["train_tiny"][1]
    four_heads = dataclasses.replace(cfg.model, lm=dataclasses.replace(cfg.model.lm, heads=4))
    with pytest.raises(ValueError, match=r"model\.lm\.heads: .* 8 heads"):
        run(dataclasses.replace(cfg, model=four_heads))


@pytest.mark.slow
@pytest.mark.smoke
def test_side_by_side_with_the_lerobot_peer(tmp_path) -> None:
    """Both sides at tiny dims through the peer venv (~40 s): a finite ratio, the same work per step."""
    if not PeerConfig().python.exists():
        pytest.skip("no peer venv: bash ../shared/peers/lerobot_pi05/setup.sh .peer-venv/lerobot")
    report = _report(tmp_path)
    assert report["peer_error"] is None, report["peer_error"]
    ratio = report["train_vs_peer_throughput_ratio"]
    assert math.isfinite(ratio) and ratio > 0 and 0 < report["train_mfu"] <= 1
    assert report["ours_optimizer"] == "fused" and report["peer_optimizer"] == "for-loop"  # torch's CPU default
    assert len(report["rounds"]) == 2 and all(len(r["peer_step_s"]) == 2 for r in report["rounds"])
    # identical dims: the two training steps do the same matmul work within the layouts' small differences
    assert report["peer_train_step_flops"] == pytest.approx(report["train_step_flops"], rel=0.2)
