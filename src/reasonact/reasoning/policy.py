"""Tiny and small step-writing policies trained here from scratch by SFT.

A character-level tokenizer (HF `tokenizers`, one token per printable ASCII character) and a
Llama-architecture causal LM from `transformers`, trained with cross-entropy on the solution
tokens only (the question is context) of step-formatted reference solutions:

    Question: Calculate 3 + 4 * 2 - 5.\\n3 + 8 - 5\\n11 - 5\\n6\\nAnswer: 6\\n<eos>

A few minutes of training gives a policy that is right often but not always: the regime where
verifiers and search matter. The result is a normal HF model directory (`HFBackend.from_pretrained`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from reasonact.reasoning.mdp import render, solution_text
from reasonact.reasoning.tasks import make_task

CACHE = Path.home() / ".cache" / "reasonact" / "policies"
SHIPPED = Path(__file__).parent / "policies"  # trained policies shipped with the package (tiny)
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]


@dataclass(frozen=True)
class PolicyConfig:
    family: str = "arithmetic"  # task family the policy is trained on
    problems: int = 4000  # training problems (train split)
    hidden: int = 128  # model width
    layers: int = 4  # transformer blocks
    heads: int = 4  # attention heads
    steps: int = 1500  # optimiser steps
    batch: int = 32  # sequences per step
    lr: float = 3e-3  # peak AdamW learning rate (cosine decay, 5% warm-up)
    seed: int = 0  # initialisation, data order and problem generation


POLICY_PRESETS: dict[str, PolicyConfig] = {
    "tiny": PolicyConfig(problems=3000, hidden=96, layers=3, steps=600, batch=64),  # ~5 min here; tests use it
    "small": PolicyConfig(problems=8000, hidden=128, layers=4, steps=3000, batch=64),  # ~30 min here
}


def char_tokenizer():
    """Character-level fast tokenizer: printable ASCII + newline, specials for pad/bos/eos/unk."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    chars = ["\n"] + [chr(c) for c in range(32, 127)]
    vocab = {tok: i for i, tok in enumerate(SPECIALS + chars)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    from tokenizers.processors import TemplateProcessing

    backend.post_processor = TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", unk_token="<unk>"
    )


def build_model(config: PolicyConfig, vocab_size: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(config.seed)
    llama = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=config.hidden,
        intermediate_size=3 * config.hidden,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.heads,
        max_position_embeddings=512,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(llama)


def sft_batches(config: PolicyConfig, tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """All training sequences → input ids (N, s) and labels (N, s) with the question masked (-100)."""
    problems = make_task(config.family).generate("train", config.problems, seed=config.seed)
    rows = []
    for p in problems:
        context = tokenizer(render(p))["input_ids"]
        target = tokenizer(solution_text(p.steps), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append((context, target))
    width = max(len(c) + len(t) for c, t in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    for i, (context, target) in enumerate(rows):
        ids[i, : len(context) + len(target)] = torch.tensor(context + target)
        labels[i, len(context) : len(context) + len(target)] = torch.tensor(target)
    return ids, labels


def train_policy(config: PolicyConfig, out: Path, progress: bool = False) -> Path:
    """SFT from scratch; saves model + tokenizer + `train.json` (config, final loss) to `out`."""
    from reasonact.atomic import atomic_directory

    tokenizer = char_tokenizer()
    model = build_model(config, len(tokenizer))
    ids, labels = sft_batches(config, tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    warmup = max(1, config.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / config.steps))),
    )
    generator = torch.Generator().manual_seed(config.seed)
    model.train()
    loss = torch.tensor(float("nan"))
    for step in range(config.steps):
        pick = torch.randint(0, len(ids), (config.batch,), generator=generator)
        batch_ids, batch_labels = ids[pick], labels[pick]  # (b, s)
        width = int((batch_ids != tokenizer.pad_token_id).sum(-1).max())
        loss = model(input_ids=batch_ids[:, :width], labels=batch_labels[:, :width]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if progress and step % 100 == 0:
            print(f"step {step} loss {loss.item():.4f}")
    model.eval()
    with atomic_directory(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "train.json").write_text(json.dumps({"config": asdict(config), "final_loss": loss.item()}, indent=1))
    return out


def cached_policy(config: PolicyConfig, progress: bool = False) -> Path:
    """The trained policy for `config`: shipped with the package, or trained once into ~/.cache/reasonact."""
    key = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:12]
    name = f"{config.family}-{key}"
    if (SHIPPED / name / "train.json").exists():
        return SHIPPED / name
    if not (CACHE / name / "train.json").exists():
        train_policy(config, CACHE / name, progress)
    return CACHE / name
