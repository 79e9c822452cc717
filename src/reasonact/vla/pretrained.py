"""The real pretrained Gemma 3 270M LM loaded into our decoder (`vla.backbone.GemmaLM`): HF parameter
names mapped onto ours, q/k/v and gate/up fused. The weights come from the shared cache
(`reasonact.weights`, which converts the packaged GGUF once)."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from reasonact.atomic import read_json
from reasonact.vla.backbone import GemmaLM
from reasonact.weights import gemma3_270m_dir

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
