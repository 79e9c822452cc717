"""The flow-matching action expert: a second transformer stream with its own weights (π0 / KI, SPEC §2.2).

Same depth, heads and head_dim as the backbone LM, its own width and MLP. Per layer, expert queries attend
to the backbone's keys/values of the prefix (from a `KVCache`) and to the expert's own keys/values; that
attention is the only place the two streams meet. Knowledge insulation = the prefix keys/values are
detached here, so L_flow cannot reach any backbone weight.

π0.5 / KI style (adaptive time):

    noisy chunk a^τ (b, H, d) ─linear→ (b, H, w_e)
    τ (b,) ─φ (sinusoidal)→ ─W1→ swish ─W2→ swish → c (b, w_e) ─→ adaptive RMSNorm in every layer + final
    expert output ─adaptive RMSNorm(c)→ ─linear→ velocity v (b, H, d)

π0 style (`pi0=True`, arXiv 2410.24164 App. B): no adaptive norms; each action token is
W3·swish(W2·[W1·a^τ ; φ(τ)]), and a continuous state token q ─linear→ (b, 1, w_e) precedes them in the suffix
(block `SUFFIX_STATE`: it sees the prefix and itself; the action tokens see it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reasonact.vla.attention import EXPERT, PREFIX, SUFFIX_STATE, KVCache, attend, attention_mask
from reasonact.vla.backbone import layer_masks, layer_theta, rope_tables
from reasonact.vla.config import ExpertConfig, LMConfig
from reasonact.vla.layers import AdaRMSNorm, Block, RMSNorm, attention_scale


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
    masks: list[Tensor]  # per layer (b, n, s + n): suffix queries over [cache, suffix] keys
    ropes: dict[float, tuple[Tensor, Tensor]]  # RoPE base → cos, sin (b, 1, n, hd) of the suffix positions
    state: Tensor | None  # π0: the state token (b, 1, w_e) that starts the suffix; None for π0.5 style


class ActionExpert(nn.Module):
    """v_θ(a^τ, τ | prefix K/V): the velocity of the flow (see `flow.py` for the time convention).

    `forward` = `velocity(x_t, conditions(τ), context(prefix, state))`. The pieces are public so that
    inference builds the context once and the τ terms of all N Euler steps in one batched matmul (they depend
    on τ only: the adaptive-norm modulations, or π0's φ(τ)), and each step runs just the expert layers.
    """

    def __init__(self, cfg: ExpertConfig, lm: LMConfig, action_dim: int, state_dim: int, pi0: bool = False) -> None:
        super().__init__()
        self.lm, self.width, self.pi0 = lm, cfg.width, pi0
        self.action_in = nn.Linear(action_dim, cfg.width)
        if pi0:
            self.state_in = nn.Linear(state_dim, cfg.width)
            self.action_time_in = nn.Linear(2 * cfg.width, cfg.width)  # W2 of [W1·a^τ ; φ(τ)]
            self.action_time_out = nn.Linear(cfg.width, cfg.width)  # W3
            self.norm: nn.Module = RMSNorm(cfg.width, lm.norm_eps)
        else:
            self.time = TimeEmbedding(cfg.width)
            self.norm = AdaRMSNorm(cfg.width, cfg.width, lm.norm_eps)  # time-conditioned, as openpi / LeRobot
        cond = None if pi0 else cfg.width
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.mlp_dim, lm, cond_dim=cond) for _ in range(lm.depth))
        self.action_out = nn.Linear(cfg.width, action_dim)
        self.scale = attention_scale(lm)

    def forward(
        self, x_t: Tensor, tau: Tensor, prefix: KVCache, stop_gradient: bool, state: Tensor | None = None
    ) -> Tensor:
        """Noisy chunk x_t (b, H, d), τ (b,), the backbone cache (π0: state (b, s)) → velocity v_t (b, H, d)."""
        context = self.context(prefix, x_t.shape[1], stop_gradient, state)
        return self.velocity(x_t, self.conditions(tau), context)

    def conditions(self, tau: Tensor) -> Tensor:
        """τ (n,) → what each step needs of τ. π0.5: the modulations (n, 2·depth + 1, 3·w_e) of [layer 0
        attention norm, layer 0 MLP norm, …, final norm] (scale|shift|gate); π0: φ(τ) (n, w_e)."""
        if self.pi0:
            return sinusoidal_embedding(tau, self.width).to(self.action_in.weight.dtype)
        cond = self.time(tau)  # (n, w_e)
        mods = [m for block in self.blocks for m in block.modulations(cond)] + [self.norm.modulation(cond)]
        return torch.stack(mods, dim=1)

    def context(self, prefix: KVCache, horizon: int, stop_gradient: bool, state: Tensor | None = None) -> ExpertContext:
        """The backbone cache (detached if `stop_gradient`) + masks and RoPE of the suffix after it: H action
        tokens, preceded by the state token for π0 (`state` (b, state_dim) is then required).

        Suffix tokens get RoPE positions right after the valid prefix tokens; the cache may also hold
        autoregressive (FAST/text) tokens, which the mask hides from the expert.
        """
        cache = prefix.detached() if stop_gradient else prefix
        b, device = cache.blocks.shape[0], cache.blocks.device
        blocks = torch.full((b, horizon), EXPERT, dtype=cache.blocks.dtype, device=device)
        state_token = None
        if self.pi0:
            if state is None:
                raise ValueError("state: the π0 expert needs the state (b, state_dim) for its suffix token")
            state_token = self.state_in(state.to(self.state_in.weight.dtype))[:, None]  # (b, 1, w_e)
            blocks = torch.cat([torch.full_like(blocks[:, :1], SUFFIX_STATE), blocks], dim=1)  # (b, 1 + H)
        start = (cache.valid & (cache.blocks == PREFIX)).sum(dim=1, keepdim=True)  # (b, 1)
        positions = start + torch.arange(blocks.shape[1], device=device)  # (b, n)
        k_blocks = torch.cat([cache.blocks, blocks], dim=1)  # (b, s + n)
        k_valid = torch.cat([cache.valid, torch.ones_like(blocks, dtype=torch.bool)], dim=1)
        k_positions = torch.cat([cache.positions, positions], dim=1)
        masks = layer_masks(self.lm, attention_mask(blocks, k_blocks, k_valid), positions, k_positions)
        return ExpertContext(cache.keys, cache.values, masks, rope_tables(self.lm, positions), state_token)

    def embed_suffix(self, x_t: Tensor, conditions: Tensor, context: ExpertContext) -> Tensor:
        """x_t (b, H, d) → suffix embeddings (b, n, w_e): action tokens (π0: time-fused, after the state token)."""
        h = self.action_in(x_t)  # (b, H, w_e)
        if not self.pi0:
            return h
        phi = conditions[:, None].expand_as(h)  # (b, H, w_e)
        h = self.action_time_out(F.silu(self.action_time_in(torch.cat([h, phi], dim=-1))))
        return torch.cat([context.state, h], dim=1)  # type: ignore[list-item]

    def velocity(self, x_t: Tensor, conditions: Tensor, context: ExpertContext) -> Tensor:
        """x_t (b, H, d), `conditions` of b τ values, a context → velocity (b, H, d)."""
        h = self.embed_suffix(x_t, conditions, context)  # (b, n, w_e)
        mods = [None] * (2 * len(self.blocks) + 1) if self.pi0 else conditions.unbind(1)  # (b, 3·w_e) each
        for i, block in enumerate(self.blocks):
            q, k, v, gate = block.project(h, context.ropes[layer_theta(self.lm, i)], mods[2 * i])
            k = torch.cat([context.keys[i], k], dim=2)  # (b, kv_heads, s + n, hd)
            v = torch.cat([context.values[i], v], dim=2)
            h = block.finish(h, attend(q, k, v, context.masks[i], self.scale), gate, mods[2 * i + 1])
        h = self.norm(h) if self.pi0 else self.norm(h, mods[-1])[0]
        return self.action_out(h[:, -x_t.shape[1] :])
