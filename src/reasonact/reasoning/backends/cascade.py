"""Shared-prefix ("cascade") attention: a prompt's sampled siblings read its KV once per decode step.

In a search round each node's prompt (few-shot header + question + steps) is decoded by its n siblings
at once. Plain batched attention gives every sibling its own copy of the prompt's keys and values and
reads all n copies at every step (22% of a long-prefix round's CPU time, docs/reasoning.md). Here each of
the P prompts keeps one copy, (P, kv_heads, Lp, d). At a decode step the queries of a prompt's G
siblings (G · heads rows) attend to that copy in one batched product. Each sibling also attends to its
own generated suffix ((R = P·G, kv_heads, Ls, d)). The two partial attentions are merged exactly through
their log-sum-exps: the "merge state" identity of FlashInfer's cascade inference (Ye et al. 2024):

    o = (e^{lse_p} o_p + e^{lse_s} o_s) / (e^{lse_p} + e^{lse_s}),    lse = log Σ_j exp(q·k_j · scale),

where (o_p, lse_p) is softmax attention and its log-normaliser over the prefix keys alone and
(o_s, lse_s) over the suffix keys alone; o is softmax attention over [prefix; suffix].

`SharedPrefixCache` is the transformers `Cache` holding one prefix per prompt (the prefill's own tensors:
no per-sibling copy is ever made) and a preallocated suffix buffer per row (`reasonact.kv_cache.KVBuffer`,
written in place). `cascade_attention` is a transformers attention function, registered as `ATTENTION`,
that uses that cache when the forward call passes `cascade=<the cache>`. Without it, the function is
transformers' own SDPA (prefill, training, `generate`). The masks are transformers' own (padding, causal,
Gemma 3's sliding window). A prompt's siblings share its prefix columns, so one mask row per prompt serves
all G of them.
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers import AttentionInterface, DynamicCache
from transformers.cache_utils import Cache
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from reasonact.kv_cache import KVBuffer
from reasonact.reasoning.backends.buffer_cache import BufferLayer
from reasonact.reasoning.backends.kv_store import LayerKV

ATTENTION = "reasonact_cascade"  # the attention implementation name registered with transformers


def merge_states(out_a: Tensor, lse_a: Tensor, out_b: Tensor, lse_b: Tensor) -> tuple[Tensor, Tensor]:
    """Attention over the union of two disjoint key sets, from each set's attention and log-normaliser
    (the merge identity above). A set with no allowed key has lse −inf and weighs nothing.

    out_a, out_b (..., d), lse_a, lse_b (...) → (out (..., d), lse (...))"""
    lse = torch.logaddexp(lse_a, lse_b)  # (...)
    finite = torch.where(torch.isfinite(lse), lse, 0.0)  # rows where neither set has a key: weights 0, not NaN
    weight_a, weight_b = (lse_a - finite).exp()[..., None], (lse_b - finite).exp()[..., None]  # (..., 1)
    return weight_a * out_a + weight_b * out_b, lse


def partial_attention(
    query: Tensor, keys: Tensor, values: Tensor, allowed: Tensor, scaling: float, softcap: float | None = None
) -> tuple[Tensor, Tensor]:
    """Softmax attention of query rows over one block of keys, with its log-normaliser (one half of a merge).

    On the CPU: torch's fused flash-attention kernel, which returns the log-sum-exp (float32 accumulation,
    as SDPA's). Elsewhere, or with soft-capped logits: float32 matmuls.

    query (b, h, m, d), keys/values (b, h, L, d), allowed (b, 1, m or 1, L) bool (True: attend; 1: every row) →
    (out (b, h, m, d) float32, lse (b, h, m) float32; a row with no allowed key: out 0, lse −inf)"""
    if query.device.type == "cpu" and softcap is None:
        additive = torch.zeros(allowed.shape, dtype=query.dtype).masked_fill_(~allowed, float("-inf"))  # like allowed
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            query, keys, values, 0.0, False, attn_mask=additive, scale=scaling
        )  # (b, h, m, d), (b, h, m)
        lse = torch.where(allowed.any(-1), lse, float("-inf"))  # the kernel reports 0 for a fully masked row
        return out.float(), lse
    scores = torch.matmul(query.float(), keys.float().transpose(-1, -2)) * scaling  # (b, h, m, L)
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    scores = scores.masked_fill(~allowed, float("-inf"))
    lse = torch.logsumexp(scores, -1)  # (b, h, m)
    weights = (scores - torch.where(torch.isfinite(lse), lse, 0.0)[..., None]).exp()  # (b, h, m, L) normalised
    return torch.matmul(weights, values.float()), lse


def _per_row(allowed: Tensor, copies: int) -> Tensor:
    """A mask for query rows ordered (copy, query token): (b, 1, q, L) → (b, 1, copies·q, L), or as it is
    (broadcast over the rows, nothing materialised) when q = 1, as in every decode step."""
    b, _, q, length = allowed.shape
    return allowed if q == 1 else allowed[:, :, None].expand(b, 1, copies, q, length).reshape(b, 1, -1, length)


def shared_prefix_attention(
    query: Tensor,
    prefix: tuple[Tensor, Tensor],
    suffix: tuple[Tensor, Tensor],
    allowed: Tensor,
    scaling: float,
    softcap: float | None = None,
) -> Tensor:
    """Attention of R = P·G rows (G consecutive rows per prompt) over their prompt's shared prefix KV and
    their own suffix KV, merged by log-sum-exp: equal to plain attention over [prefix; suffix] per row.

    GQA: each of the kv_heads serves heads / kv_heads query heads, and in the prefix product all G·that
    many query rows of a prompt share one read of its keys and values.

    query (R, heads, q, d), prefix keys/values (P, kv_heads, Lp, d), suffix keys/values (R, kv_heads, Ls, d),
    allowed (R or 1, 1, q, Lp + Ls) bool → out (R, q, heads, d) in the query's dtype (transformers' layout)"""
    rows, heads, q, d = query.shape
    prompts, kv_heads, prefix_len, _ = prefix[0].shape
    groups, rep = rows // prompts, heads // kv_heads
    allowed = allowed.expand(rows, 1, q, allowed.shape[-1])
    by_head = query.reshape(rows, kv_heads, rep * q, d)  # (R, kvh, rep·q, d): head = kv head · rep + r
    # prefix: one block of G·rep·q query rows per prompt and kv head
    shared = by_head.reshape(prompts, groups, kv_heads, rep * q, d).transpose(1, 2).reshape(prompts, kv_heads, -1, d)
    shared_allowed = allowed[::groups, :, :, :prefix_len]  # (P, 1, q, Lp): a prompt's siblings share these columns
    out, lse = partial_attention(
        shared, *prefix, _per_row(shared_allowed, groups * rep), scaling, softcap
    )  # (P, kvh, G·rep·q, d), (P, kvh, G·rep·q)
    out = out.view(prompts, kv_heads, groups, rep * q, d).transpose(1, 2).reshape(rows, kv_heads, rep * q, d)
    lse = lse.view(prompts, kv_heads, groups, rep * q).transpose(1, 2).reshape(rows, kv_heads, rep * q)
    suffix_len = suffix[0].shape[2]
    if suffix_len:
        own, own_lse = partial_attention(
            by_head, *suffix, _per_row(allowed[..., prefix_len:], rep), scaling, softcap
        )  # (R, kvh, rep·q, d), (R, kvh, rep·q)
        out, lse = merge_states(out, lse, own, own_lse)
    return out.reshape(rows, heads, q, d).transpose(1, 2).to(query.dtype).contiguous()


class SharedPrefixLayer(BufferLayer):
    """One layer: the prompts' prefix KV (P, kv_heads, Lp, d), kept as is, and the rows' suffix columns in
    a `KVBuffer` (`update` writes there and returns the suffix views (R, kv_heads, Ls, d))."""

    def __init__(self, prefix_keys: Tensor, prefix_values: Tensor, buffer: KVBuffer, layer: int) -> None:
        self.prefix_keys, self.prefix_values = prefix_keys, prefix_values
        super().__init__(buffer, layer, 0)

    def get_seq_length(self) -> int:
        """Columns a row sees: the prefix, then its suffix (what transformers sizes masks and positions by)."""
        return self.prefix_keys.shape[2] + self.length


class SharedPrefixCache(Cache):
    """A decode cache for `groups` sampled rows per prefilled prompt: one prefix copy per prompt, a
    suffix buffer of `new_tokens` columns per row. Pass it as `cache=` and `cascade=` to the model."""

    def __init__(self, prefill: DynamicCache, groups: int, new_tokens: int) -> None:
        first = prefill.layers[0].keys  # (P, kvh, Lp, d)
        prompts, kv_heads, _, head_dim = first.shape
        suffix = KVBuffer(
            len(prefill.layers), prompts * groups, kv_heads, new_tokens, head_dim, first.dtype, first.device
        )
        super().__init__(layers=[SharedPrefixLayer(x.keys, x.values, suffix, i) for i, x in enumerate(prefill.layers)])
        self.groups = groups  # rows per prompt (consecutive)

    def prefix(self, layer: int) -> tuple[Tensor, Tensor]:
        """The prompts' keys and values of `layer`.  # (P, kvh, Lp, d) each"""
        return self.layers[layer].prefix_keys, self.layers[layer].prefix_values

    def row(self, row: int) -> LayerKV:
        """Row `row`'s whole KV per layer: its prompt's prefix, then its suffix (a fresh copy).

        → per layer keys, values (1, kvh, Lp + Ls, d)"""
        prompt = row // self.groups
        return [
            (
                torch.cat([x.prefix_keys[prompt : prompt + 1], x.keys[row : row + 1]], 2),
                torch.cat([x.prefix_values[prompt : prompt + 1], x.values[row : row + 1]], 2),
            )
            for x in self.layers
        ]


def cascade_attention(
    module: torch.nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    cascade: SharedPrefixCache | None = None,
    **kwargs,
) -> tuple[Tensor, None]:
    """transformers' attention-function signature. With `cascade` (the model was called with `cascade=cache`),
    `key`/`value` are the suffix views that cache returned and the prefix comes from it; otherwise SDPA.

    query (R, heads, q, d), key/value (R, kv_heads, Ls, d), attention_mask (R, 1, q, Lp + Ls) bool or None
    → ((R, q, heads, d), None)"""
    if cascade is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    if attention_mask is None:  # transformers skipped the mask: causal, nothing padded or out of a window
        q, total = query.shape[2], cascade.layers[module.layer_idx].get_seq_length()
        attention_mask = (
            torch.arange(total, device=query.device) <= torch.arange(total - q, total, device=query.device)[:, None]
        )
        attention_mask = attention_mask[None, None]  # (1, 1, q, Lp + Ls)
    prefix = cascade.prefix(module.layer_idx)
    out = shared_prefix_attention(query, prefix, (key, value), attention_mask, scaling, kwargs.get("softcap"))
    return out, None


AttentionInterface.register(ATTENTION, cascade_attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)  # the masks SDPA gets, so the fallback is SDPA exactly


def enable(model: torch.nn.Module) -> bool:
    """Switch a transformers model from SDPA to `cascade_attention` (identical until a call passes `cascade=`)
    → whether the model runs it now (a model on another attention implementation is left as it is)."""
    current = model.config._attn_implementation
    if current == "sdpa":
        model.set_attn_implementation(ATTENTION)
    return model.config._attn_implementation == ATTENTION
