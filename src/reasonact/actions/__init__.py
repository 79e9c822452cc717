"""Action representations: FAST (DCT + BPE) and naive binning tokenizers, normalisation."""

from reasonact.actions.binning import BinningTokenizer
from reasonact.actions.fast import FastConfig, FastTokenizer
from reasonact.actions.normalize import QuantileNormalizer
from reasonact.actions.tokenizer import ActionTokenizer, Decoded

__all__ = ["ActionTokenizer", "BinningTokenizer", "Decoded", "FastConfig", "FastTokenizer", "QuantileNormalizer"]
