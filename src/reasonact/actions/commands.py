"""CLI verbs of `reasonact fast`: fit, encode, decode (bench lives in benchmarks/fast.py)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from reasonact.actions.fast import FastConfig, FastTokenizer
from reasonact.atomic import atomic_write_bytes, atomic_write_json, read_json
from reasonact.data.trajectories import (
    METAWORLD_DEFAULT_TASKS,
    chunk_trajectories,
    metaworld_expert_trajectories,
    smooth_trajectories,
)


@dataclass(frozen=True)
class ChunkSource:
    """Where action chunks come from."""

    kind: Literal["metaworld", "smooth", "npy"] = "metaworld"
    tasks: tuple[str, ...] = METAWORLD_DEFAULT_TASKS  # MetaWorld tasks whose scripted experts are rolled out
    episodes_per_task: int = 10  # expert episodes per task (metaworld)
    trajectories: int = 200  # number of synthetic trajectories (smooth)
    dim: int = 7  # action dimension of synthetic trajectories (smooth)
    steps: int = 150  # steps per trajectory
    horizon: int = 50  # H: chunk length
    stride: int = 5  # steps between consecutive chunk starts
    npy: Path | None = None  # a (b, H, d) array of chunks (npy)
    seed: int = 0

    def load(self, progress: bool = False, holdout_every: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
        """→ chunks (b, H, d), and held-out chunks from every `holdout_every`-th trajectory (if > 0).

        Holding out whole trajectories keeps overlapping windows of one episode on one side.
        """
        if self.kind == "npy":
            if self.npy is None:
                raise ValueError("npy: expected a path to a (b, H, d) .npy file when kind='npy', received None")
            chunks = np.load(self.npy)
            if holdout_every <= 0:
                return chunks, None
            held = np.arange(len(chunks)) % holdout_every == 0
            return chunks[~held], chunks[held]
        if self.kind == "metaworld":
            trajectories = metaworld_expert_trajectories(
                self.tasks, self.episodes_per_task, self.steps, self.seed, progress=progress
            )
        else:
            trajectories = smooth_trajectories(self.trajectories, self.steps, self.dim, self.seed)
        if holdout_every <= 0:
            return chunk_trajectories(trajectories, self.horizon, self.stride), None
        held = [t for i, t in enumerate(trajectories) if i % holdout_every == 0]
        kept = [t for i, t in enumerate(trajectories) if i % holdout_every != 0]
        return (
            chunk_trajectories(kept, self.horizon, self.stride),
            chunk_trajectories(held, self.horizon, self.stride),
        )

    def describe(self) -> str:
        if self.kind == "metaworld":
            return (
                f"MetaWorld scripted experts ({', '.join(self.tasks)}), {self.episodes_per_task} episodes/task "
                f"× {self.steps} steps, chunks H={self.horizon} stride {self.stride}"
            )
        if self.kind == "smooth":
            return (
                f"synthetic smooth trajectories (sum of sinusoids, reasonact.data.trajectories), "
                f"{self.trajectories} × {self.steps} steps × {self.dim} dims, chunks H={self.horizon}"
            )
        return f"chunks from {self.npy}"


@dataclass(frozen=True)
class FitConfig:
    source: ChunkSource = field(default_factory=ChunkSource)
    fast: FastConfig = field(default_factory=FastConfig)
    out: Path = Path("runs/fast_tokenizer")  # directory the tokenizer is saved to


FIT_PRESETS: dict[str, tuple[str, FitConfig]] = {
    "metaworld": ("MetaWorld expert chunks, H=50, γ=10, vocab 1024 (paper defaults).", FitConfig()),
    "smooth": (
        "Synthetic smooth 7-dim chunks, H=50, no simulator needed.",
        FitConfig(source=ChunkSource(kind="smooth")),
    ),
    "tiny": (
        "Seconds-long smoke: 20 synthetic trajectories, H=10, vocab 256.",
        FitConfig(
            source=ChunkSource(kind="smooth", trajectories=20, steps=30, horizon=10, dim=3),
            fast=FastConfig(vocab_size=256),
            out=Path("runs/fast_tokenizer_tiny"),
        ),
    ),
}


def fit(config: FitConfig) -> FastTokenizer:
    """Fit FAST on the configured chunks, save it to `config.out`, print a summary."""
    chunks, _ = config.source.load(progress=True)
    tokenizer = FastTokenizer.fit(chunks, config.fast)
    tokenizer.save(config.out)
    lengths = [len(t) for t in tokenizer.encode(chunks)]
    print(
        f"fitted FAST on {len(chunks)} chunks {chunks.shape[1:]} from {config.source.describe()}\n"
        f"vocab {tokenizer.vocab_size}, mean {np.mean(lengths):.1f} tokens/chunk "
        f"(naive binning: {chunks.shape[1] * chunks.shape[2]}) → saved to {config.out}"
    )
    return tokenizer


def encode(tokenizer: Path, chunks: Path, out: Path) -> None:
    """Encode a (b, H, d) .npy of action chunks to a JSON list of token-id lists.

    Args:
        tokenizer: directory written by `reasonact fast fit`.
        chunks: .npy file holding a float array (b, H, d).
        out: JSON file to write.
    """
    ids = FastTokenizer.load(tokenizer).encode(np.load(chunks))
    atomic_write_json(out, ids)
    print(f"encoded {len(ids)} chunks → {sum(map(len, ids))} tokens → {out}")


def decode(tokenizer: Path, tokens: Path, horizon: int, out: Path) -> None:
    """Decode a JSON list of token-id lists to a (b, horizon, d) .npy; reports repaired sequences.

    Args:
        tokenizer: directory written by `reasonact fast fit`.
        tokens: JSON file holding a list of token-id lists.
        horizon: H, the chunk length to decode to.
        out: .npy file to write.
    """
    result = FastTokenizer.load(tokenizer).decode(read_json(tokens), horizon)
    buffer = _npy_bytes(result.actions)
    atomic_write_bytes(out, buffer)
    print(f"decoded {len(result.valid)} chunks ({result.n_invalid} repaired) → {out}")


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
