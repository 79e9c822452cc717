"""Gemma-architecture building blocks shared by the VLM backbone and the action expert.

RMSNorm with Gemma's (1 + w) scale, adaptive RMSNorm (π0.5 / KI: scale, shift and gate from the flow-time
embedding), RoPE (rotate-half convention, as in Gemma / HF), GeGLU MLP, and one decoder `Block` whose
attention is split in two halves — `project` (norm → Q, K, V, RoPE) and `finish` (output projection,
gated residual, MLP) — so that the caller can run ONE attention over the keys and values of several
streams between them (the mixture-of-transformers of π0: each stream has its own weights).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reasonact.vla.config import LMConfig


class RMSNorm(nn.Module):
    """x / rms(x) · (1 + w), w initialised to 0 (Gemma); computed in float32."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:  # (..., d) → (..., d)
        y = F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps)
        return (y * (1.0 + self.weight.float())).to(x.dtype)


class AdaRMSNorm(nn.Module):
    """Adaptive RMSNorm: y = x̂ · (1 + scale(c)) + shift(c) and a residual gate(c), all linear in the condition c.

    The modulation is zero-initialised (adaLN-Zero, as in π0.5): at init scale = shift = gate = 0, so every
    expert residual branch starts closed. `modulation(c)` is separate from `forward` so that inference can
    compute it for all Euler steps at once (it depends on τ only).
    """

    def __init__(self, dim: int, cond_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.modulation = nn.Linear(cond_dim, 3 * dim)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: Tensor, modulation: Tensor) -> tuple[Tensor, Tensor]:  # (b, s, d), (b, 3d) → (b, s, d) ×2
        y = F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps)
        scale, shift, gate = modulation[:, None, :].chunk(3, dim=-1)  # (b, 1, d) each
        return torch.addcmul(shift, y, 1.0 + scale).to(x.dtype), gate


def rope_table(positions: Tensor, head_dim: int, theta: float) -> tuple[Tensor, Tensor]:
    """positions (b, s) → cos, sin (b, 1, s, head_dim) for `apply_rope`."""
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim)
    freqs = positions.float()[..., None] * inv_freq  # (b, s, head_dim/2)
    angles = torch.cat([freqs, freqs], dim=-1)[:, None]  # (b, 1, s, head_dim)
    return angles.cos(), angles.sin()


def apply_rope(x: Tensor, table: tuple[Tensor, Tensor]) -> Tensor:
    """Rotate (b, h, s, hd) by the angles of `table` (rotate-half pairing i ↔ i + hd/2):
    x·cos + [−x₂, x₁]·sin, written into the two halves without materialising [−x₂, x₁]."""
    cos, sin = table
    xf = x.float()  # (b, h, s, hd)
    x1, x2 = xf.chunk(2, dim=-1)
    sin1, sin2 = sin.chunk(2, dim=-1)
    half = x.shape[-1] // 2
    out = xf * cos
    out[..., :half].addcmul_(x2, sin1, value=-1.0)
    out[..., half:].addcmul_(x1, sin2)
    return out.to(x.dtype)


class GeGLU(nn.Module):
    """down(gelu_tanh(gate(x)) · up(x)) — Gemma's MLP; gate and up are one (2·hidden, d) matmul."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.gate_up = nn.Linear(width, 2 * hidden, bias=False)  # rows [gate; up]
        self.down = nn.Linear(hidden, width, bias=False)

    def forward(self, x: Tensor) -> Tensor:  # (b, s, d) → (b, s, d)
        gate, up = self.gate_up(x).chunk(2, dim=-1)  # (b, s, hidden) each
        return self.down(F.gelu(gate, approximate="tanh") * up)


class Block(nn.Module):
    """One decoder layer of one stream. `cond_dim` set → adaptive norms (the action expert)."""

    def __init__(self, width: int, mlp_dim: int, lm: LMConfig, cond_dim: int | None = None) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = lm.heads, lm.kv_heads, lm.head_dim
        self.adaptive = cond_dim is not None

        def pre_norm() -> nn.Module:
            return AdaRMSNorm(width, cond_dim, lm.norm_eps) if cond_dim is not None else RMSNorm(width, lm.norm_eps)

        self.attn_norm, self.mlp_norm = pre_norm(), pre_norm()
        self.qkv = nn.Linear(width, (lm.heads + 2 * lm.kv_heads) * lm.head_dim, bias=False)  # rows [q; k; v]
        self.o = nn.Linear(lm.heads * lm.head_dim, width, bias=False)
        self.q_norm = RMSNorm(lm.head_dim, lm.norm_eps) if lm.qk_norm else None
        self.k_norm = RMSNorm(lm.head_dim, lm.norm_eps) if lm.qk_norm else None
        self.post_attn_norm = RMSNorm(width, lm.norm_eps) if lm.sandwich_norm else None
        self.post_mlp_norm = RMSNorm(width, lm.norm_eps) if lm.sandwich_norm else None
        self.mlp = GeGLU(width, mlp_dim)

    def modulations(self, cond: Tensor) -> tuple[Tensor, Tensor]:
        """Condition (n, c) → (scale, shift, gate) of the attention and MLP adaptive norms, (n, 3d) each."""
        return self.attn_norm.modulation(cond), self.mlp_norm.modulation(cond)

    def _norm(self, norm: nn.Module, x: Tensor, modulation: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return norm(x, modulation) if self.adaptive else (norm(x), None)

    def project(
        self, x: Tensor, rope: tuple[Tensor, Tensor], modulation: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """x (b, s, d) → q (b, heads, s, hd), k, v (b, kv_heads, s, hd), attention-residual gate (b, 1, d) | None.

        `modulation` (b, 3d): the attention norm's (scale, shift, gate) of an adaptive block."""
        b, s, _ = x.shape
        h, gate = self._norm(self.attn_norm, x, modulation)
        heads = self.qkv(h).view(b, s, self.heads + 2 * self.kv_heads, self.head_dim).transpose(1, 2)
        q, k, v = heads.split([self.heads, self.kv_heads, self.kv_heads], dim=1)  # (b, *, s, hd)
        if self.q_norm is not None and self.k_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        return apply_rope(q, rope), apply_rope(k, rope), v, gate

    def finish(self, x: Tensor, attn: Tensor, gate: Tensor | None, modulation: Tensor | None = None) -> Tensor:
        """Residual stream x (b, s, d) + attention output (b, heads, s, hd) → next residual stream (b, s, d).

        `modulation` (b, 3d): the MLP norm's (scale, shift, gate) of an adaptive block."""
        b, _, s, _ = attn.shape
        y = self.o(attn.transpose(1, 2).reshape(b, s, self.heads * self.head_dim))
        if self.post_attn_norm is not None:
            y = self.post_attn_norm(y)
        x = x + (y if gate is None else y * gate)
        h, gate = self._norm(self.mlp_norm, x, modulation)
        y = self.mlp(h)
        if self.post_mlp_norm is not None:
            y = self.post_mlp_norm(y)
        return x + (y if gate is None else y * gate)


def attention_scale(lm: LMConfig) -> float:
    """Softmax temperature: query_scale**-0.5 (Gemma 3: query_pre_attn_scalar), default head_dim**-0.5."""
    return 1.0 / math.sqrt(lm.query_scale or lm.head_dim)
