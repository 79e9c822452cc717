"""The step-writing LM trained here from scratch: a character-level tokenizer (HF `tokenizers`, one
token per printable ASCII character) and a small Llama-architecture causal LM from `transformers`.
`training/policy_sft.py` trains it on reference solutions; `HFBackend` samples steps from it."""

from __future__ import annotations

import torch

SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]


def char_tokenizer():  # a transformers PreTrainedTokenizerFast (imported lazily)
    """Character-level fast tokenizer: printable ASCII + newline, specials for pad/bos/eos/unk."""
    from tokenizers import Tokenizer, decoders, models
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    chars = ["\n"] + [chr(c) for c in range(32, 127)]
    vocab = {tok: i for i, tok in enumerate(SPECIALS + chars)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    backend.post_processor = TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", unk_token="<unk>"
    )


def build_step_lm(hidden: int, layers: int, heads: int, vocab_size: int, seed: int = 0, context: int = 512):
    """A randomly initialised Llama causal LM (tied embeddings, MLP width 3·hidden) seeded by `seed`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    llama = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=3 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=context,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(llama)
