"""`reasonact fast bench`: FAST vs naive binning on real robot action chunks.

Reports, side by side in one process run:
* tokens per chunk for FAST and for naive binning (H·d) → `compression_ratio`;
* round-trip RMSE in normalised units ([-1, 1] per dimension) for both, and a sweep over γ;
* encode+decode chunks/s for one batched call vs one call per chunk → `batched_speedup`.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from reasonact.actions import BinningTokenizer, FastConfig, FastTokenizer
from reasonact.actions.commands import ChunkSource
from reasonact.atomic import atomic_write_json


@dataclass(frozen=True)
class FastBenchConfig:
    source: ChunkSource = field(default_factory=ChunkSource)  # chunks; fit on a split, evaluated on the rest
    fast: FastConfig = field(default_factory=lambda: FastConfig(scale=20.0))  # the reported operating point
    scales: tuple[float, ...] = (5.0, 10.0, 20.0, 30.0, 50.0)  # γ sweep: tokens vs error trade-off
    n_bins: int = 256  # naive binning resolution
    holdout_every: int = 5  # every 5th trajectory is held out: the tokenizer is fitted on the rest
    speed_chunks: int = 512  # chunks per timing trial
    repeats: int = 5  # timing rounds (batched and per-chunk interleaved); the best of each is reported
    out: Path = Path("benchmarks/results/fast.json")


PRESETS: dict[str, tuple[str, FastBenchConfig]] = {
    "default": ("MetaWorld expert chunks at H=50 (the issue's figures).", FastBenchConfig()),
    "tiny": (
        "Seconds-long smoke on synthetic chunks (no simulator).",
        FastBenchConfig(
            source=ChunkSource(kind="smooth", trajectories=40, steps=60, horizon=20, dim=3),
            fast=FastConfig(scale=30.0, vocab_size=512),
            scales=(10.0, 30.0),
            speed_chunks=64,
            repeats=1,
            out=Path("benchmarks/results/fast_tiny.json"),
        ),
    ),
}


def _rmse_normalised(tokenizer: FastTokenizer | BinningTokenizer, chunks: np.ndarray) -> tuple[float, int]:
    decoded = tokenizer.decode(tokenizer.encode(chunks), chunks.shape[1])
    norm = tokenizer.normalizer
    error = norm.normalize(decoded.actions) - norm.normalize(chunks)
    return float(np.sqrt(np.mean(error**2))), decoded.n_invalid


def _mean_tokens(tokenizer: FastTokenizer | BinningTokenizer, chunks: np.ndarray) -> float:
    return float(np.mean([len(ids) for ids in tokenizer.encode(chunks)]))


def _best_seconds(fns, repeats: int) -> list[float]:
    """Best wall time of each function over `repeats` rounds, the functions interleaved within a
    round so that a machine getting busier or quieter mid-run affects all of them alike."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def _speed(tokenizer: FastTokenizer, chunks: np.ndarray, repeats: int) -> dict[str, float]:
    horizon = chunks.shape[1]

    def batched() -> None:
        tokenizer.decode(tokenizer.encode(chunks), horizon)

    def per_chunk() -> None:
        for chunk in chunks:
            tokenizer.decode(tokenizer.encode(chunk[None]), horizon)

    t_batched, t_single = _best_seconds([batched, per_chunk], repeats)
    return {
        "batched_chunks_per_s": len(chunks) / t_batched,
        "per_chunk_chunks_per_s": len(chunks) / t_single,
        "batched_speedup": t_single / t_batched,
    }


def run(config: FastBenchConfig) -> dict:
    load_start = os.getloadavg()
    train, test = config.source.load(progress=True, holdout_every=config.holdout_every)
    horizon, dim = train.shape[1:]

    fast = FastTokenizer.fit(train, config.fast)
    naive = BinningTokenizer.fit(train, config.n_bins, config.fast.quantile)
    fast_tokens, naive_tokens = _mean_tokens(fast, test), float(horizon * dim)
    fast_rmse, fast_invalid = _rmse_normalised(fast, test)
    naive_rmse, _ = _rmse_normalised(naive, test)
    sweep = []
    for scale in config.scales:
        tok = FastTokenizer.fit(train, replace(config.fast, scale=scale))
        rmse, _ = _rmse_normalised(tok, test)
        sweep.append({"scale": scale, "tokens_per_chunk": _mean_tokens(tok, test), "roundtrip_rmse": rmse})
    speed_chunks = test[np.arange(config.speed_chunks) % len(test)]
    speed = _speed(fast, speed_chunks, config.repeats)

    report = {
        "benchmark": "fast",
        "data_source": config.source.describe(),
        "n_chunks": {"fit": len(train), "eval": len(test)},
        "horizon": int(horizon),
        "action_dim": int(dim),
        "fast": {"scale": config.fast.scale, "vocab_size": fast.vocab_size, "tokens_per_chunk": fast_tokens},
        "naive": {"n_bins": config.n_bins, "tokens_per_chunk": naive_tokens, "roundtrip_rmse": naive_rmse},
        "compression_ratio": naive_tokens / fast_tokens,
        "roundtrip_rmse": fast_rmse,
        "roundtrip_invalid": fast_invalid,
        "scale_sweep": sweep,
        **speed,
        "targets": {
            "compression_ratio>=5": naive_tokens / fast_tokens >= 5,
            "roundtrip_rmse<=0.01": fast_rmse <= 0.01,
            "batched_speedup>=5": speed["batched_speedup"] >= 5,
        },
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "loadavg_1m": {"start": load_start[0], "end": os.getloadavg()[0]},
    }
    atomic_write_json(config.out, report)
    print(
        f"FAST vs naive binning on {report['data_source']}\n"
        f"  tokens/chunk   FAST {fast_tokens:.1f} (γ={config.fast.scale:g}) vs naive {naive_tokens:.0f}"
        f"  → compression ×{report['compression_ratio']:.2f}\n"
        f"  round-trip RMSE (normalised)  FAST {fast_rmse:.4f}   naive {naive_rmse:.4f}\n"
        f"  encode+decode chunks/s  batched {speed['batched_chunks_per_s']:.0f} vs per-chunk "
        f"{speed['per_chunk_chunks_per_s']:.0f}  → ×{speed['batched_speedup']:.1f}\n"
        + "".join(
            f"  γ={s['scale']:>5g}: {s['tokens_per_chunk']:6.1f} tokens, RMSE {s['roundtrip_rmse']:.4f}\n"
            for s in sweep
        )
        + f"→ {config.out}"
    )
    return report
