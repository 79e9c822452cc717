"""The `reasonact` console script: help, did-you-mean, and a tiny fit → encode → decode round trip."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reasonact.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_help_lists_families_and_verbs() -> None:
    top = _cli("--help")
    assert top.returncode == 0 and "fast" in top.stdout and "demo" in top.stdout
    fast = _cli("fast", "--help")
    assert fast.returncode == 0 and all(v in fast.stdout for v in ("fit", "encode", "decode", "bench"))
    fit = _cli("fast", "fit", "tiny", "--help")
    assert fit.returncode == 0 and "--fast.scale" in fit.stdout


def test_default_preset_may_be_left_out_and_config_commands_take_flags() -> None:
    bench = _cli("fast", "bench", "--fast.scale", "20", "--help")  # = fast bench default --fast.scale 20
    assert bench.returncode == 0 and "--holdout-every" in bench.stdout and "{default,tiny}" not in bench.stdout
    named = _cli("fast", "bench", "--out", "x.json", "--preset", "tiny", "--help")  # = fast bench tiny --out x.json
    assert named.returncode == 0 and "usage: reasonact fast bench tiny" in named.stdout
    demo = _cli("demo", "--help")
    assert demo.returncode == 0 and "--acting.train-steps" in demo.stdout and "--config." not in demo.stdout


def test_typo_gets_a_suggestion() -> None:
    out = _cli("fsat")
    assert out.returncode == 2 and "Did you mean 'fast'?" in out.stderr


def test_fit_encode_decode_roundtrip(tmp_path) -> None:
    tok = tmp_path / "tok"
    fit = _cli("fast", "fit", "tiny", "--out", str(tok), "--fast.scale", "50", "--fast.vocab-size", "1024")
    assert fit.returncode == 0, fit.stderr
    chunks = np.random.default_rng(0).uniform(-0.5, 0.5, (4, 10, 3)).cumsum(1) / 10  # smooth-ish (b, H, d)
    np.save(tmp_path / "chunks.npy", chunks)
    enc = _cli(
        "fast",
        "encode",
        "--tokenizer",
        str(tok),
        "--chunks",
        str(tmp_path / "chunks.npy"),
        "--out",
        str(tmp_path / "ids.json"),
    )
    assert enc.returncode == 0, enc.stderr
    ids = json.loads((tmp_path / "ids.json").read_text())
    assert len(ids) == 4 and all(isinstance(i, int) for seq in ids for i in seq)
    dec = _cli(
        "fast",
        "decode",
        "--tokenizer",
        str(tok),
        "--tokens",
        str(tmp_path / "ids.json"),
        "--horizon",
        "10",
        "--out",
        str(tmp_path / "back.npy"),
    )
    assert dec.returncode == 0, dec.stderr
    back = np.load(tmp_path / "back.npy")
    assert back.shape == chunks.shape and np.isfinite(back).all()


def test_bench_tiny_writes_report_keys(tmp_path) -> None:
    out = tmp_path / "fast.json"
    res = _cli("fast", "bench", "tiny", "--out", str(out))
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    for key in ("compression_ratio", "roundtrip_rmse", "batched_speedup", "data_source"):
        assert key in report
    assert report["compression_ratio"] > 1 and 0 < report["roundtrip_rmse"] < 0.05


def test_every_command_target_and_preset_table_resolves() -> None:
    """Each `module:function` (and `module:PRESETS`) in the command table imports and exists."""
    from reasonact.cli import COMMANDS, Command, _resolve

    def commands(table):
        for entry in table.values():
            yield from [entry] if isinstance(entry, Command) else commands(entry)

    for command in commands(COMMANDS):
        assert callable(_resolve(command.target)), command.target
        if command.presets is not None:
            presets = _resolve(command.presets)
            assert isinstance(presets, dict) and presets, command.presets
            assert all(isinstance(v, tuple) and len(v) == 2 for v in presets.values()), command.presets
