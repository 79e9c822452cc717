"""FAST tokenizer: round-trip bounds, ordering, compression, persistence, robustness, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonact.actions import BinningTokenizer, FastConfig, FastTokenizer
from reasonact.actions.fast import dct_dequantize, dct_quantize, flatten_low_frequency_first
from reasonact.data.trajectories import chunk_trajectories, smooth_trajectories


@pytest.fixture(scope="module")
def chunks() -> np.ndarray:
    return chunk_trajectories(smooth_trajectories(60, steps=80, dim=4, seed=1), horizon=20, stride=4)


@pytest.fixture(scope="module")
def tokenizer(chunks: np.ndarray) -> FastTokenizer:
    return FastTokenizer.fit(chunks, FastConfig(scale=10.0, vocab_size=512))


def _normalised_rmse(tok: FastTokenizer | BinningTokenizer, x: np.ndarray) -> float:
    decoded = tok.decode(tok.encode(x), x.shape[1])
    assert decoded.valid.all()
    return float(np.sqrt(np.mean((tok.normalizer.normalize(decoded.actions) - tok.normalizer.normalize(x)) ** 2)))


@settings(max_examples=40, deadline=None)
@given(
    scale=st.sampled_from([2.0, 5.0, 10.0, 40.0]),
    horizon=st.integers(2, 24),
    dim=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_dct_quantisation_error_is_bounded_by_half_step(scale: float, horizon: int, dim: int, seed: int) -> None:
    # Orthonormal DCT is an isometry, so per-coefficient rounding error ≤ 1/(2γ) bounds the RMSE.
    x = np.random.default_rng(seed).uniform(-1, 1, (3, horizon, dim))
    y = dct_dequantize(dct_quantize(x, scale), scale)
    rmse = np.sqrt(np.mean((x - y) ** 2))
    assert rmse <= 0.5 / scale + 1e-12


@settings(max_examples=15, deadline=None)
@given(scale=st.sampled_from([5.0, 10.0, 20.0, 50.0]), seed=st.integers(0, 1000))
def test_full_roundtrip_error_shrinks_with_scale(scale: float, seed: int) -> None:
    x = chunk_trajectories(smooth_trajectories(12, steps=30, dim=3, seed=seed), horizon=15, stride=5)
    tok = FastTokenizer.fit(x, FastConfig(scale=scale, vocab_size=2048, min_frequency=1))
    # BPE is lossless, clipping to [-1, 1] only moves values closer: the DCT bound holds end to end.
    assert _normalised_rmse(tok, x) <= 0.5 / scale + 1e-9


def test_flatten_is_low_frequency_first() -> None:
    q = np.arange(2 * 3 * 4).reshape(2, 3, 4)  # (b, H=3 frequencies, d=4)
    flat = flatten_low_frequency_first(q)
    assert flat.shape == (2, 12)
    # the first d entries are the DC coefficients of every dimension, then frequency 1, ...
    assert flat[0, :4].tolist() == q[0, 0].tolist()
    assert flat[1, 4:8].tolist() == q[1, 1].tolist()


def test_constant_chunk_puts_all_energy_in_the_first_d_coefficients() -> None:
    x = np.full((1, 16, 3), 0.5)
    flat = flatten_low_frequency_first(dct_quantize(x, 10.0))[0]
    assert (flat[:3] != 0).all() and (flat[3:] == 0).all()


def test_smooth_chunks_compress_better_than_noise(tokenizer: FastTokenizer, chunks: np.ndarray) -> None:
    noise = np.random.default_rng(0).uniform(-1, 1, chunks[:50].shape) * 0.5
    smooth_len = np.mean([len(t) for t in tokenizer.encode(chunks[:50])])
    noise_len = np.mean([len(t) for t in tokenizer.encode(noise)])
    assert smooth_len * 2 < noise_len
    assert smooth_len < chunks.shape[1] * chunks.shape[2] / 3  # far fewer than naive binning's H·d


def test_save_load_identity(tokenizer: FastTokenizer, chunks: np.ndarray, tmp_path) -> None:
    tokenizer.save(tmp_path / "tok")
    loaded = FastTokenizer.load(tmp_path / "tok")
    ids = tokenizer.encode(chunks)
    assert loaded.encode(chunks) == ids
    np.testing.assert_array_equal(loaded.decode(ids, 20).actions, tokenizer.decode(ids, 20).actions)
    assert loaded.vocab_size == tokenizer.vocab_size and loaded.config == tokenizer.config
    assert not list(tmp_path.glob(".*"))  # no temporary leftovers from the atomic write


def test_decode_fuzz_never_raises_and_is_finite(tokenizer: FastTokenizer) -> None:
    rng = np.random.default_rng(0)
    v = tokenizer.vocab_size
    seqs: list = [rng.integers(-5, v + 5, rng.integers(0, 80)).tolist() for _ in range(3000)]
    seqs += [[], [v], [-1], [0.5, 1.5], "abc", None, [[1, 2]], [True, False], 7]
    out = tokenizer.decode(seqs, horizon=20)
    assert out.actions.shape == (len(seqs), 20, tokenizer.dim)
    assert np.isfinite(out.actions).all()
    assert out.n_invalid > 0 and out.valid.dtype == bool


def test_decode_flags_truncated_and_overlong(tokenizer: FastTokenizer, chunks: np.ndarray) -> None:
    ids = tokenizer.encode(chunks[:3])
    out = tokenizer.decode([ids[0], ids[1][:-2], ids[2] + ids[2]], horizon=20)
    assert out.valid.tolist() == [True, False, False]
    np.testing.assert_allclose(out.actions[0], tokenizer.decode([ids[0]], 20).actions[0])


def test_batched_equals_per_chunk(tokenizer: FastTokenizer, chunks: np.ndarray) -> None:
    ids = tokenizer.encode(chunks[:20])
    assert ids == [tokenizer.encode(c[None])[0] for c in chunks[:20]]
    batched = tokenizer.decode(ids, 20).actions
    single = np.concatenate([tokenizer.decode([i], 20).actions for i in ids])
    np.testing.assert_array_equal(batched, single)


def test_naive_binning_costs_h_times_d_tokens(chunks: np.ndarray) -> None:
    tok = BinningTokenizer.fit(chunks, n_bins=256)
    ids = tok.encode(chunks[:5])
    assert all(len(t) == 20 * 4 for t in ids)
    assert _normalised_rmse(tok, chunks[:50]) <= 1 / 256 + 1e-9  # half a bin width of 2/256
    assert tok.decode([ids[0][:-1]], 20).valid.tolist() == [False]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((20, 4)), r"chunks: expected shape \(b, H, d\)"),
        (np.zeros((2, 20, 5)), r"chunks: expected d=4"),
        (np.full((1, 20, 4), np.nan), r"chunks: expected finite values, received 80 NaN/inf"),
        (np.zeros((1, 1, 20, 4)), r"chunks: expected rank 3"),
    ],
)
def test_encode_bad_input_names_the_argument(tokenizer: FastTokenizer, bad: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tokenizer.encode(bad)


def test_decode_bad_arguments(tokenizer: FastTokenizer) -> None:
    with pytest.raises(ValueError, match="horizon: expected an integer >= 1, received 0"):
        tokenizer.decode([[1]], horizon=0)
    with pytest.raises(ValueError, match="dim: expected 4"):
        tokenizer.decode([[1]], horizon=20, dim=7)
    with pytest.raises(ValueError, match="tokens: expected a batch"):
        tokenizer.decode("123", horizon=20)


def test_fit_rejects_vocab_smaller_than_alphabet(chunks: np.ndarray) -> None:
    with pytest.raises(ValueError, match="vocab_size: expected >= "):
        FastTokenizer.fit(chunks, FastConfig(scale=200.0, vocab_size=64))


def test_load_reports_corrupted_file(tokenizer: FastTokenizer, tmp_path) -> None:
    tokenizer.save(tmp_path / "tok")
    (tmp_path / "tok" / "fast.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"fast.json: corrupted JSON"):
        FastTokenizer.load(tmp_path / "tok")
