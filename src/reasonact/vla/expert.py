"""The flow-matching action expert: a second transformer stream with its own weights (π0 / KI, SPEC §2.2).

Same depth, heads and head_dim as the backbone LM, its own width and MLP. Per layer, expert queries attend
to the backbone's keys/values of the prefix (from a `KVCache`) and to the expert's own keys/values; that
attention is the only place the two streams meet. Knowledge insulation = the prefix keys/values are
detached here, so L_flow cannot reach any backbone weight.

    noisy chunk a^τ (b, H, d) ─linear→ (b, H, w_e)
    τ (b,) ─φ (sinusoidal)→ ─W1→ swish ─W2→ swish → c (b, w_e) ─→ adaptive RMSNorm in every layer
    expert output ─RMSNorm→ ─linear→ velocity v (b, H, d)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reasonact.vla.attention import EXPERT, PREFIX, KVCache, attend, attention_mask
from reasonact.vla.backbone import layer_masks, layer_theta, rope_tables
from reasonact.vla.config import ExpertConfig, LMConfig
from reasonact.vla.layers import Block, RMSNorm, attention_scale


def sinusoidal_embedding(tau: Tensor, dim: int, min_period: float = 4e-3, max_period: float = 4.0) -> Tensor:
    """φ(τ): τ (b,) → (b, dim) = [sin(2πτ/p_i), cos(2πτ/p_i)], periods p_i log-spaced in [min, max] (π0)."""
    fraction = torch.linspace(0.0, 1.0, dim // 2, dtype=torch.float32, device=tau.device)
    period = min_period * (max_period / min_period) ** fraction  # (dim/2,)
    angle = tau.float()[:, None] * (2 * math.pi / period)  # (b, dim/2)
    return torch.cat([angle.sin(), angle.cos()], dim=-1).to(tau.dtype)


class TimeEmbedding(nn.Module):
    """c = swish(W2 · swish(W1 · φ(τ))): the condition of every adaptive RMSNorm."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.w1, self.w2 = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, tau: Tensor) -> Tensor:  # (b,) → (b, width)
        phi = sinusoidal_embedding(tau, self.width).to(self.w1.weight.dtype)  # (b, width)
        return F.silu(self.w2(F.silu(self.w1(phi))))


@dataclass
class ExpertContext:
    """What every flow step shares: the backbone's per-layer keys/values and the expert's masks and RoPE."""

    keys: list[Tensor]  # per layer (b, kv_heads, s, hd): the backbone cache (detached under KI)
    values: list[Tensor]  # per layer (b, kv_heads, s, hd)
    masks: list[Tensor | None]  # per layer (b, H, s + H): expert queries over [cache, expert] keys; None: all
    ropes: dict[float, tuple[Tensor, Tensor]]  # RoPE base → cos, sin (b, 1, H, hd) of the expert positions


class ActionExpert(nn.Module):
    """v_θ(a^τ, τ | prefix K/V): the velocity of the flow (see `flow.py` for the time convention).

    `forward` = `velocity(x_t, conditions(τ), context(prefix))`. The pieces are public so that inference
    builds the context once and the adaptive-norm modulations of all N Euler steps in one batched matmul
    per norm (they depend on τ only), and each step runs just the expert layers.
    """

    def __init__(self, cfg: ExpertConfig, lm: LMConfig, action_dim: int) -> None:
        super().__init__()
        self.lm = lm
        self.action_in = nn.Linear(action_dim, cfg.width)
        self.time = TimeEmbedding(cfg.width)
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.mlp_dim, lm, cond_dim=cfg.width) for _ in range(lm.depth))
        self.norm = RMSNorm(cfg.width, lm.norm_eps)
        self.action_out = nn.Linear(cfg.width, action_dim)
        self.scale = attention_scale(lm)

    def forward(self, x_t: Tensor, tau: Tensor, prefix: KVCache, stop_gradient: bool) -> Tensor:
        """Noisy chunk x_t (b, H, d), τ (b,), the backbone cache → velocity v_t (b, H, d)."""
        return self.velocity(x_t, self.conditions(tau), self.context(prefix, x_t.shape[1], stop_gradient))

    def conditions(self, tau: Tensor) -> Tensor:
        """τ (n,) → adaptive-norm modulations (depth, 2, n, 3·w_e): [layer, attention/MLP norm, scale|shift|gate]."""
        cond = self.time(tau)  # (n, w_e)
        return torch.stack([torch.stack(block.modulations(cond)) for block in self.blocks])

    def context(self, prefix: KVCache, horizon: int, stop_gradient: bool) -> ExpertContext:
        """The backbone cache (detached if `stop_gradient`) + masks and RoPE of H expert tokens after it.

        Expert tokens get RoPE positions right after the valid prefix tokens; the cache may also hold
        autoregressive (FAST/text) tokens, which the mask hides from the expert.
        """
        cache = prefix.detached() if stop_gradient else prefix
        b, device = cache.blocks.shape[0], cache.blocks.device
        start = (cache.valid & (cache.blocks == PREFIX)).sum(dim=1, keepdim=True)  # (b, 1)
        positions = start + torch.arange(horizon, device=device)  # (b, H)
        blocks = torch.full((b, horizon), EXPERT, dtype=cache.blocks.dtype, device=device)
        k_blocks = torch.cat([cache.blocks, blocks], dim=1)  # (b, s + H)
        k_valid = torch.cat([cache.valid, torch.ones_like(blocks, dtype=torch.bool)], dim=1)
        k_positions = torch.cat([cache.positions, positions], dim=1)
        masks = layer_masks(self.lm, attention_mask(blocks, k_blocks, k_valid), positions, k_positions)
        return ExpertContext(cache.keys, cache.values, masks, rope_tables(self.lm, positions))

    def velocity(self, x_t: Tensor, conditions: Tensor, context: ExpertContext) -> Tensor:
        """x_t (b, H, d), modulations (depth, 2, b, 3·w_e) of `conditions`, a context → velocity (b, H, d)."""
        h = self.action_in(x_t)  # (b, H, w_e)
        for i, block in enumerate(self.blocks):
            q, k, v, gate = block.project(h, context.ropes[layer_theta(self.lm, i)], conditions[i, 0])
            k = torch.cat([context.keys[i], k], dim=2)  # (b, kv_heads, s + H, hd)
            v = torch.cat([context.values[i], v], dim=2)
            h = block.finish(h, attend(q, k, v, context.masks[i], self.scale), gate, conditions[i, 1])
        return self.action_out(self.norm(h))
