"""FAST: frequency-space action sequence tokenization (Pertsch et al., arXiv 2501.09747).

encode:  a (b, H, d) ─normalise→ [-1, 1] ─DCT-II over H (orthonormal)→ C (b, H, d)
         ─round(γ·C)→ integers ─flatten frequency-major→ (b, H·d) ─BPE→ token ids
decode:  ids ─BPE⁻¹→ integers ─pad/truncate to H·d→ (b, H, d) ─ /γ, DCT-III→ clip → unnormalise

Frequency-major flattening puts all d lowest-frequency coefficients first. For smooth chunks
the tail is long runs of zeros, which BPE merges into a few tokens; that is where the
compression comes from. The orthonormal DCT is an isometry, so rounding error per coefficient
≤ 1/(2γ) bounds the per-element round-trip RMSE (normalised units) by 1/(2γ).

Integers are written as characters (code point `_BASE + q - q_min`) so the HF `tokenizers`
BPE trains on them unchanged and stores the merges; encoding applies them with the compiled,
token-identical kernel in `reasonact.actions.bpe`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy.fft import dct, idct
from tokenizers import Tokenizer, models, trainers

from reasonact.actions.bpe import BpeMerges
from reasonact.actions.normalize import QuantileNormalizer
from reasonact.actions.tokenizer import Decoded, check_chunks, check_decode_args, flatten_ids, pack_ragged
from reasonact.atomic import atomic_directory, read_json
from reasonact.checks import check_range

_BASE = 0x100  # first code point used for integers: above ASCII/Latin-1, far below surrogates
_FORMAT = "reasonact.fast/1"


@dataclass(frozen=True)
class FastConfig:
    """FAST hyper-parameters (paper defaults)."""

    scale: float = 10.0  # γ: DCT coefficients are multiplied by γ before rounding
    vocab_size: int = 1024  # BPE vocabulary size (alphabet of integers + merges)
    quantile: float = 0.01  # normalisation maps the [q, 1-q] percentiles of each dim to [-1, 1]
    min_frequency: int = 2  # BPE merges a pair only if it occurs at least this often

    def __post_init__(self) -> None:
        check_range(self.scale, "scale (γ)", low=1e-3)
        check_range(self.vocab_size, "vocab_size", low=2)
        check_range(self.quantile, "quantile", 0.0, 0.5)
        check_range(self.min_frequency, "min_frequency", low=1)


def dct_quantize(x: np.ndarray, scale: float) -> np.ndarray:
    """(b, H, d) normalised chunks → (b, H, d) integer DCT-II coefficients round(γ·C)."""
    return np.rint(dct(x, type=2, axis=1, norm="ortho") * scale).astype(np.int64)


def dct_dequantize(q: np.ndarray, scale: float) -> np.ndarray:
    """(b, H, d) integer coefficients → (b, H, d) chunks via the inverse (DCT-III)."""
    return idct(q / scale, type=2, axis=1, norm="ortho")


def flatten_low_frequency_first(q: np.ndarray) -> np.ndarray:
    """(b, H, d) → (b, H·d) ordered [C(0,0), C(0,1), …, C(0,d-1), C(1,0), …]."""
    return q.reshape(q.shape[0], -1)


class FastTokenizer:
    """DCT + BPE action tokenizer. Build with `fit` or `load`; see the module docstring."""

    def __init__(
        self,
        config: FastConfig,
        normalizer: QuantileNormalizer,
        bpe: Tokenizer,
        q_min: int,
        q_max: int,
        horizon: int | None = None,
    ) -> None:
        self.config = config
        self.normalizer = normalizer
        self.q_min, self.q_max = q_min, q_max
        self.horizon = horizon  # H of the chunks it was fitted on (None: saved before it was recorded)
        self._bpe = bpe

    @property
    def dim(self) -> int:
        return self.normalizer.dim

    @property
    def vocab_size(self) -> int:
        return self._bpe.get_vocab_size()

    @classmethod
    def fit(cls, chunks: np.ndarray, config: FastConfig | None = None) -> FastTokenizer:
        """Fit normalisation, the integer alphabet and the BPE merges on chunks (b, H, d)."""
        config = config or FastConfig()
        chunks = check_chunks(chunks)
        normalizer = QuantileNormalizer.fit(chunks, config.quantile)
        q = dct_quantize(normalizer.normalize(chunks), config.scale)
        q_min, q_max = int(q.min()), int(q.max())
        n_symbols = q_max - q_min + 1
        if config.vocab_size < n_symbols:
            raise ValueError(
                f"vocab_size: expected >= {n_symbols} (the integer alphabet at scale γ={config.scale}), "
                f"received {config.vocab_size}; raise vocab_size or lower scale"
            )
        bpe = Tokenizer(models.BPE())
        trainer = trainers.BpeTrainer(
            vocab_size=config.vocab_size,
            min_frequency=config.min_frequency,
            initial_alphabet=[chr(_BASE + i) for i in range(n_symbols)],
            show_progress=False,
        )
        tokenizer = cls(config, normalizer, bpe, q_min, q_max, horizon=chunks.shape[1])
        bpe.train_from_iterator(tokenizer._to_strings(q), trainer=trainer)
        return tokenizer

    def _to_strings(self, q: np.ndarray) -> list[str]:
        codes = np.clip(flatten_low_frequency_first(q), self.q_min, self.q_max) - self.q_min + _BASE
        return [row.tobytes().decode("utf-32-le") for row in codes.astype("<u4")]

    def encode(self, chunks: np.ndarray) -> list[list[int]]:
        """Chunks (b, H, d) in raw action units → b token-id lists (lengths vary)."""
        chunks = check_chunks(chunks, self.dim)
        q = dct_quantize(self.normalizer.normalize(chunks), self.config.scale)
        merges, alphabet = self._merges
        symbols = alphabet[np.clip(flatten_low_frequency_first(q), self.q_min, self.q_max) - self.q_min]  # (b, H·d)
        return merges.encode(symbols)

    @cached_property
    def _merges(self) -> tuple[BpeMerges, np.ndarray]:
        """The trained merges as arrays, and the token id of each integer q_min … q_max."""
        merges = BpeMerges.from_tokenizer(self._bpe)
        return merges, merges.ids_of([chr(_BASE + i) for i in range(self.q_max - self.q_min + 1)])

    def decode(self, tokens: Sequence[Sequence[int]], horizon: int, dim: int | None = None) -> Decoded:
        """b token sequences → chunks (b, horizon, d). Never raises on token contents.

        Repairs, each flagging the sequence invalid: a sequence that is not a flat list of
        integers decodes as empty, ids outside the vocabulary are dropped, and the coefficient
        sequence is zero-padded or truncated to horizon·d. Vectorised over the whole batch.
        """
        check_decode_args(tokens, horizon, dim, self.dim)
        b, n = len(tokens), horizon * self.dim
        ids, seq, valid = flatten_ids(tokens)
        in_vocab = (ids >= 0) & (ids < self.vocab_size)
        valid[seq[~in_vocab]] = False
        ids, seq = ids[in_vocab], seq[in_vocab]
        spelled, starts, lengths = self._token_table
        counts = lengths[ids]  # (n_ids,) integers spelled by each token
        ends = np.cumsum(counts)
        gather = np.arange(ends[-1] if ends.size else 0) + np.repeat(starts[ids] - (ends - counts), counts)
        values = spelled[gather]  # (n_ints,) alphabet indices in sequence order
        q, n_ints = pack_ragged(values, np.repeat(seq, counts), b, n, fill=-self.q_min)
        valid &= n_ints == n
        x = dct_dequantize((q + self.q_min).reshape(b, horizon, self.dim), self.config.scale)
        return Decoded(self.normalizer.unnormalize(np.clip(x, -1.0, 1.0)), valid)

    @cached_property
    def _token_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every BPE token as the alphabet indices it spells, concatenated → (spelled, starts (V,), lengths (V,))."""
        tokens = [self._bpe.id_to_token(i) for i in range(self.vocab_size)]
        lengths = np.array([len(t) for t in tokens], dtype=np.int64)
        spelled = np.frombuffer("".join(tokens).encode("utf-32-le"), dtype="<u4").astype(np.int64) - _BASE
        return spelled, np.cumsum(lengths) - lengths, lengths

    def save(self, path: str | Path) -> None:
        """Write `fast.json` (config, normalisation, alphabet) and `bpe.json` atomically."""
        with atomic_directory(path) as tmp:
            meta = {
                "format": _FORMAT,
                "config": asdict(self.config),
                "normalizer": self.normalizer.to_json(),
                "q_min": self.q_min,
                "q_max": self.q_max,
                "horizon": self.horizon,
                "dim": self.dim,
            }
            (tmp / "fast.json").write_text(json.dumps(meta, indent=2) + "\n")
            self._bpe.save(str(tmp / "bpe.json"))

    @classmethod
    def load(cls, path: str | Path) -> FastTokenizer:
        path = Path(path)
        meta_path = path / "fast.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"path: expected a FAST tokenizer directory with fast.json, received {path}")
        meta = read_json(meta_path)
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{meta_path}: expected format {_FORMAT!r}, received {meta.get('format')!r}")
        bpe = Tokenizer.from_file(str(path / "bpe.json"))
        normalizer = QuantileNormalizer.from_json(meta["normalizer"])
        if meta.get("dim", normalizer.dim) != normalizer.dim:
            raise ValueError(f"{meta_path}: dim {meta['dim']} does not match its normaliser's {normalizer.dim} dims")
        return cls(FastConfig(**meta["config"]), normalizer, bpe, meta["q_min"], meta["q_max"], meta.get("horizon"))
