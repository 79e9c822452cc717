"""The step-writing LM trained here from scratch: a character-level tokenizer (HF `tokenizers`, one
token per printable ASCII character), a small Llama-architecture causal LM from `transformers`,
its recipe (`PolicySFTConfig`, presets) and where trained copies live (shipped with the package or
in the cache, named by `policy_key`). `training/policy_sft.py` trains it on reference solutions;
`HFBackend` samples steps from it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from reasonact.weights import cache_root

SHIPPED = Path(__file__).parent / "policies"  # trained policies shipped with the package
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


@dataclass(frozen=True)
class PolicySFTConfig:
    family: str = "arithmetic"  # task family the policy is trained on
    difficulty: str = "default"  # the family's named difficulty (reasonact.reasoning.tasks, Task.LEVELS)
    problems: int = 4000  # training problems (train split)
    hidden: int = 128  # model width
    layers: int = 4  # transformer blocks
    heads: int = 4  # attention heads
    context: int = 512  # longest question + solution in characters (tokens) the model is built for
    steps: int = 1500  # optimiser steps
    batch: int = 32  # sequences per step
    lr: float = 3e-3  # peak AdamW learning rate (cosine decay, 5% warm-up)
    seed: int = 0  # initialisation, data order and problem generation
    checkpoint_every: int = 200  # optimiser steps between checkpoints (resume point)
    threads: int | None = 1  # torch threads while training (1: fastest for these small models on a busy CPU)

    def __post_init__(self) -> None:
        for name in ("problems", "hidden", "layers", "heads", "context", "steps", "batch", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, received {getattr(self, name)}")


POLICY_PRESETS: dict[str, PolicySFTConfig] = {
    # ~5 min here; tests use it. Trained at the easy arithmetic level, shipped with the package.
    "tiny": PolicySFTConfig(difficulty="easy", problems=3000, hidden=96, layers=3, steps=600, batch=64),
    # ~30 min here at reasoning-gym's default difficulty
    "small": PolicySFTConfig(problems=8000, hidden=128, layers=4, context=1024, steps=3000, batch=64),
}


def policy_key(config: PolicySFTConfig) -> str:
    """`<family>-<hash of everything that determines the weights>` (not checkpoint cadence or threads)."""
    fields = dataclasses.asdict(config)
    fields.pop("checkpoint_every")
    fields.pop("threads")
    return f"{config.family}-{hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]}"


def find_policy(config: PolicySFTConfig) -> Path | None:
    """The trained policy of `config` if it exists: shipped with the package, or in the cache."""
    for root in (SHIPPED, cache_root() / "policies"):
        if (root / policy_key(config) / "train.json").exists():
            return root / policy_key(config)
    return None
