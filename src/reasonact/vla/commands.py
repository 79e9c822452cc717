"""CLI verbs of `reasonact vla`: params (bench lives in benchmarks/vla_inference.py)."""

from __future__ import annotations

from reasonact.vla.config import SIZES, VLAConfig

PARAMS_PRESETS: dict[str, tuple[str, VLAConfig]] = SIZES


def parameter_counts(config: VLAConfig) -> dict[str, int]:
    """Parameters per part of a model built on the `meta` device (no memory, any size)."""
    from reasonact.vla.model import build_model

    model = build_model(config, device="meta")
    parts = {"vision": model.vision, "projector": model.projector, "lm_embedding": model.lm.embed}
    counts = {name: sum(p.numel() for p in module.parameters()) for name, module in parts.items()}
    counts["lm_layers"] = sum(p.numel() for p in model.lm.parameters()) - counts["lm_embedding"]
    counts["state_proj"] = sum(p.numel() for p in model.state_proj.parameters()) if model.state_proj else 0
    counts["expert"] = sum(p.numel() for p in model.expert.parameters()) if model.expert else 0
    counts["backbone"] = sum(counts[k] for k in ("vision", "projector", "lm_embedding", "lm_layers", "state_proj"))
    counts["total"] = counts["backbone"] + counts["expert"]
    return counts


def params(config: VLAConfig) -> dict[str, int]:
    """Print the parameter counts of backbone (vision, projector, LM) and action expert."""
    counts = parameter_counts(config)
    print(f"KI-VLA {config.variant}: LM width {config.lm.width} × depth {config.lm.depth}, heads {config.lm.heads} "
          f"(kv {config.lm.kv_heads}) × {config.lm.head_dim}; expert width {config.expert.width}, "
          f"mlp {config.expert.mlp_dim}")  # fmt: skip
    for name, n in counts.items():
        print(f"  {name:<13} {n:>15,d}  ({n / 1e6:,.1f} M)")
    return counts
