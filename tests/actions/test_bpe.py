"""The compiled BPE kernel must produce exactly HF `tokenizers`' tokens (it replaces its encode)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, trainers

from reasonact.actions import FastConfig, FastTokenizer
from reasonact.actions.bpe import BpeMerges
from reasonact.actions.fast import _BASE, dct_quantize
from reasonact.data.trajectories import chunk_trajectories, smooth_trajectories


def _hf_encode(tokenizer: FastTokenizer, chunks: np.ndarray) -> list[list[int]]:
    q = dct_quantize(tokenizer.normalizer.normalize(chunks), tokenizer.config.scale)
    return [e.ids for e in tokenizer._bpe.encode_batch_fast(tokenizer._to_strings(q))]


@pytest.fixture(scope="module")
def fitted() -> tuple[FastTokenizer, np.ndarray]:
    chunks = chunk_trajectories(smooth_trajectories(80, steps=80, dim=4, seed=3), horizon=20, stride=4)
    return FastTokenizer.fit(chunks, FastConfig(scale=20.0, vocab_size=600)), chunks


def test_fast_encode_equals_hf_on_smooth_and_noisy_chunks(fitted) -> None:
    tokenizer, chunks = fitted
    noisy = chunks + np.random.default_rng(0).normal(0, 0.3, chunks.shape)  # unseen, poorly compressible words
    for x in (chunks, noisy):
        assert tokenizer.encode(x) == _hf_encode(tokenizer, x)
    merges, _ = tokenizer._merges
    assert len(merges.keys) <= 4 * len(merges.merged)  # the pair table grows with the merges, not vocab²


@settings(max_examples=30, deadline=None)
@given(words=st.lists(st.text(alphabet="abc", min_size=0, max_size=40), min_size=1, max_size=8))
def test_merges_equal_hf_on_arbitrary_words(words: list[str]) -> None:
    """Repeats and overlaps ("aaaa", "abab") are where a merge order could differ."""
    corpus = ["aaaaabab", "abcabcaa", "ccbaaab", "aaaa", "abababab"] * 5
    hf = Tokenizer(models.BPE())
    hf.train_from_iterator(
        corpus, trainers.BpeTrainer(vocab_size=30, initial_alphabet=list("abc"), show_progress=False)
    )
    merges = BpeMerges.from_tokenizer(hf)
    alphabet = merges.ids_of(list("abc"))
    for word in words:
        symbols = alphabet[np.array(["abc".index(c) for c in word], dtype=np.int64)][None]  # (1, n)
        assert merges.encode(symbols) == [hf.encode(word).ids if word else []]


def test_merges_reject_unknown_symbols_and_non_bpe_models() -> None:
    hf = Tokenizer(models.BPE())
    hf.train_from_iterator(["abab"], trainers.BpeTrainer(vocab_size=10, show_progress=False))
    with pytest.raises(ValueError, match="symbols"):
        BpeMerges.from_tokenizer(hf).ids_of([chr(_BASE)])
    with pytest.raises(ValueError, match="tokenizer: expected a BPE model"):
        BpeMerges.from_tokenizer(Tokenizer(models.WordLevel({"a": 0}, unk_token="a")))
