"""KI-VLA: the VLM backbone + flow-matching action expert of "Knowledge Insulating VLA Models" (Driess et al.
2025), and with other variants (`config.py`) its baselines π0, π0.5, π0-FAST and frozen backbone.

Training sequence and loss (SPEC §2.3–2.4):

    [prefix: images, prompt, state (block 0)] [targets, BOA, FAST…, EOA (blocks 1, 2, …)] [expert (block −1)]
    L = 1/b Σ_i [ CE_i(targets + BOA + FAST + EOA | causal) + α · m_i · ‖v_θ(a^τ, τ) − (a − ω)‖²_i ]

CE_i is sample i's mean over its autoregressive tokens (openpi's per-sample averaging), the first of them
predicted from the last valid prefix position; m_i says whether sample i carries actions (a mixed batch
holds robot samples and VLM samples with text targets only). The backbone runs over prefix +
autoregressive tokens, then the expert over its cache (see `attention.py` for why that equals one shared
attention per layer). Knowledge insulation detaches that cache for the expert. Inference: the prefix is
encoded once; the N Euler steps reuse its keys/values (`sample_actions`); π0-FAST decodes FAST tokens
autoregressively over the same cache (`sample_fast`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reasonact.actions import Decoded, FastTokenizer
from reasonact.checks import check_shape
from reasonact.kv_cache import KVBuffer, reuse_or_allocate
from reasonact.vla.attention import PREFIX, KVCache, StaticKVCache
from reasonact.vla.backbone import GemmaLM, VisionEncoder
from reasonact.vla.config import VLAConfig
from reasonact.vla.contract import BasePolicy, Observation, check_actions, check_observation, images_to_float
from reasonact.vla.expert import ActionExpert, ExpertContext
from reasonact.vla.flow import euler_integrate, euler_times, noisy_actions, sample_time, target_velocity


@dataclass
class FastDecodeState:
    """What a π0-FAST decode step reads and updates in place (fixed addresses: a captured graph replays on them)."""

    cache: StaticKVCache  # prefix K/V + one column per generated token
    prefix: int  # P: the column of the first generated token
    start: Tensor  # (b, 1) RoPE position of the first generated token
    token: Tensor  # (b, 1) the token fed to the next step (BOA first)
    done: Tensor  # (b, 1) bool: EOA emitted
    ids: Tensor  # (b, n) generated ids (EOA where not generated yet)


class KIVLA(BasePolicy):
    """Mixture-of-transformers VLA. `fast` is the fitted FAST tokenizer (needed by variants with FAST)."""

    def __init__(self, config: VLAConfig, fast: FastTokenizer | None = None) -> None:
        super().__init__()
        check_fast_tokenizer(fast, config)
        self.config = config
        self.fast = fast
        self.vision = VisionEncoder(config.vision, len(config.cameras))
        self.projector = nn.Linear(config.vision.width, config.lm.width)
        self.lm = GemmaLM(config.lm, config.embed_vocab)
        continuous = config.prefix_state == "continuous"
        self.state_proj = nn.Linear(config.state_dim, config.lm.width) if continuous else None
        self.expert = (
            ActionExpert(config.expert, config.lm, config.action_dim, config.state_dim, config.pi0_expert)
            if config.has_expert
            else None
        )
        self.compiled_velocity: Callable[..., Tensor] | None = None  # set by compile_expert
        self.compiled_fast_step: Callable[..., None] | None = None  # set by compile_fast_decode
        self._fast_buffer: KVBuffer | None = None  # the FAST decode's preallocated K/V, reused per shape
        if config.freeze_backbone:
            for p in self.backbone_parameters():
                p.requires_grad_(False)

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter of the VLM (vision, projector, LM, state projection): all but the expert's."""
        for name, p in self.named_parameters():
            if not name.startswith("expert."):
                yield p

    def fit_pixel_statistics(self, images: Mapping[str, Iterable[Tensor]]) -> None:
        """Model camera → batches of its training images (n, S, S, 3) uint8 → the vision tower's per-camera
        pixel statistics (`backbone.PixelNorm`; nothing to fit when `vision.dataset_norm` is off)."""
        if self.vision.pixels is None:
            return
        unknown = sorted(set(images) - set(self.config.cameras))
        if unknown:
            raise ValueError(f"images: cameras {unknown} are not model cameras {list(self.config.cameras)}")
        for camera, batches in images.items():
            self.vision.pixels.fit(self.config.cameras.index(camera), (images_to_float(x) for x in batches))

    def compile_expert(self, mode: str | None = None) -> None:
        """Optional: run the Euler steps through `torch.compile(expert.velocity)` (inductor; needs a C++
        compiler). Weights stay shared with `self.expert`; `compute_loss` keeps using the eager module."""
        if self.expert is None:
            raise ValueError(f"variant: {self.config.variant!r} has no action expert to compile")
        self.compiled_velocity = torch.compile(self.expert.velocity, mode=mode, dynamic=False)

    def compile_fast_decode(self, mode: str | None = None) -> None:
        """Optional: run each π0-FAST decode step through `torch.compile` (`mode="reduce-overhead"`: one CUDA
        graph per shape on a GPU, replayed per token — possible because the step writes a preallocated cache
        in place). On a CPU inductor compiles the step (needs a C++ compiler); tokens stay those of the eager step."""
        self.compiled_fast_step = torch.compile(self._fast_step, mode=mode, dynamic=False)

    # ---- prefix -------------------------------------------------------------------------------------------

    def embed_prefix(self, obs: Observation) -> tuple[Tensor, Tensor]:
        """→ embeddings (b, P, w) of [images per camera, prompt, continuous state] and validity (b, P)."""
        dtype = self.projector.weight.dtype  # float32, or bfloat16 after `model.to(torch.bfloat16)`
        parts = [self.projector(self.vision(images_to_float(obs.images[c]).to(dtype), i))
                 for i, c in enumerate(self.config.cameras)]  # fmt: skip
        valid = [torch.ones(p.shape[:2], dtype=torch.bool, device=p.device) for p in parts]
        parts.append(self.lm.embed_tokens(obs.tokens))
        valid.append(obs.token_mask)
        if self.state_proj is not None:
            parts.append(self.state_proj(obs.state.to(parts[0].dtype))[:, None])
            valid.append(valid[0][:, :1])
        return torch.cat(parts, dim=1), torch.cat(valid, dim=1)

    def encode_prefix(self, obs: Observation) -> KVCache:
        """Run the backbone over the prefix once → its per-layer keys/values."""
        h, valid = self.embed_prefix(obs)
        positions = (valid.cumsum(dim=1) - 1).clamp(min=0)  # (b, P): padding does not advance positions
        blocks = torch.full_like(positions, PREFIX)
        return self.lm(h, blocks, positions, valid, kv_only=True)[1]

    # ---- training -----------------------------------------------------------------------------------------

    def fast_ids(self, actions: Tensor) -> list[list[int]]:
        """Chunks (b, H, d) → FAST ids in the embedding's id range, truncated to max_fast_tokens."""
        if self.fast is None:
            raise ValueError(f"fast: variant {self.config.variant!r} needs a fitted FastTokenizer, received None")
        ids = self.fast.encode(actions.detach().double().cpu().numpy())
        return [[self.config.fast_offset + t for t in seq[: self.config.max_fast_tokens]] for seq in ids]

    def ar_sequences(
        self, obs: Observation, actions: Tensor | None, action_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor] | None:
        """The autoregressive segment per sample: targets, then (samples with actions) BOA FAST… EOA
        → ids, valid (b, T), or None when no sample has any autoregressive token."""
        cfg = self.config
        rows: list[list[int]] = [[] for _ in range(obs.batch_size)]
        if obs.targets is not None and obs.target_mask is not None and not cfg.freeze_backbone:
            rows = [t[m].tolist() for t, m in zip(obs.targets, obs.target_mask, strict=True)]
        if cfg.uses_fast and actions is not None:
            has = _rows(action_mask, obs.batch_size, actions.device)
            for i, f in zip(has.tolist(), self.fast_ids(actions[has]), strict=True):
                rows[i] = [*rows[i], cfg.boa, *f, cfg.eoa]
        length = max(len(r) for r in rows)
        if length == 0:
            return None
        ids = torch.zeros(len(rows), length, dtype=torch.int64, device=obs.tokens.device)
        valid = torch.zeros_like(ids, dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
            valid[i, : len(r)] = True
        return ids, valid

    def forward(self, obs: Observation, actions: Tensor | None = None, **kwargs: Tensor | None) -> dict[str, Tensor]:
        """`compute_loss` (so that DistributedDataParallel, which hooks `forward`, can wrap the model)."""
        return self.compute_loss(obs, actions, **kwargs)

    def compute_loss(
        self,
        obs: Observation,
        actions: Tensor | None,
        action_mask: Tensor | None = None,
        noise: Tensor | None = None,
        tau: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """L = 1/b Σ_i [CE_i + α·m_i·L_flow,i] (module docstring) → {"loss", "ce", "flow"}.

        actions (b, H, d): chunks; rows where `action_mask` (b,) bool is False are ignored (text-only samples;
        None: every row has actions). noise ω (b, H, d) and τ (b,): drawn from torch's global RNG if None (the
        trainer passes them so a sample's draw does not depend on which process trains it). "ce" and "flow"
        are means over the samples that carry each term (present only if some do); "loss" is the objective.
        """
        cfg = self.config
        check_observation(obs, cfg)
        if actions is not None:
            check_actions(actions, cfg, obs.batch_size)
        if noise is not None:
            check_shape(noise, "noise", (obs.batch_size, cfg.horizon, cfg.action_dim))
        if tau is not None:
            check_shape(tau, "tau", (obs.batch_size,))
        has_action = _rows(action_mask, obs.batch_size, obs.tokens.device) if actions is not None else None
        h, valid = self.embed_prefix(obs)
        positions = (valid.cumsum(dim=1) - 1).clamp(min=0)
        blocks = torch.full_like(positions, PREFIX)
        prefix_len, b = h.shape[1], obs.batch_size
        last_prefix = valid.long().cumsum(dim=1).argmax(dim=1)  # (b,): the last valid prefix position
        ar = self.ar_sequences(obs, actions, action_mask)
        if ar is not None:
            ids, ar_valid = ar
            start = valid.sum(dim=1, keepdim=True)  # (b, 1)
            steps = torch.arange(1, ids.shape[1] + 1, device=ids.device)
            h = torch.cat([h, self.lm.embed_tokens(ids)], dim=1)
            positions = torch.cat([positions, start + steps - 1], dim=1)
            blocks = torch.cat([blocks, steps.expand_as(ids)], dim=1)
            valid = torch.cat([valid, ar_valid], dim=1)
        hidden, cache = self.lm(h, blocks, positions, valid)
        losses: dict[str, Tensor] = {}
        total = hidden.new_zeros((), dtype=torch.float32)
        if ar is not None:
            ce, has_ce = self._per_sample_ce(hidden, last_prefix, prefix_len, ids, ar_valid)  # (b,), (b,)
            total = total + ce.sum()
            losses["ce"] = ce.sum() / has_ce.sum()
        if self.expert is not None and has_action is not None and has_action.numel():
            rows = has_action
            some = rows.numel() < b  # a mixed batch: the expert runs on the rows with actions only
            cache = cache.select(rows) if some else cache
            flow = self._per_sample_flow(cache, obs.state[rows], actions[rows], _pick(noise, rows), _pick(tau, rows))
            total = total + cfg.flow_weight * flow.sum()
            losses["flow"] = flow.mean()
        if not losses:
            raise ValueError(f"actions: variant {cfg.variant!r} has nothing to learn without actions/targets")
        losses["loss"] = total / b
        return losses

    def _per_sample_ce(
        self, hidden: Tensor, last_prefix: Tensor, prefix_len: int, ids: Tensor, ar_valid: Tensor
    ) -> tuple[Tensor, Tensor]:
        """hidden (b, P + T, w) → CE per sample (b,) averaged over its T_i tokens, and whether it has any (b,).

        Token j is predicted from position j − 1; the first from the last valid prefix position (as openpi)."""
        b, t = ids.shape
        source = torch.cat([last_prefix[:, None], prefix_len + torch.arange(t - 1, device=ids.device).expand(b, -1)], 1)
        picked = hidden.gather(1, source[..., None].expand(-1, -1, hidden.shape[-1]))  # (b, T, w)
        logits = self.lm.logits(picked).float()  # (b, T, vocab)
        token_ce = F.cross_entropy(logits.flatten(0, 1), ids.flatten(), reduction="none").view(b, t)
        count = ar_valid.sum(dim=1)  # (b,)
        return (token_ce * ar_valid).sum(dim=1) / count.clamp(min=1), count > 0

    def _per_sample_flow(
        self, cache: KVCache, state: Tensor, actions: Tensor, noise: Tensor | None, tau: Tensor | None
    ) -> Tensor:
        """Flow-matching MSE per sample (n,) for the n samples with actions (n, H, d)."""
        assert self.expert is not None
        actions = actions.to(cache.keys[0].dtype)
        noise = torch.randn_like(actions) if noise is None else noise.to(actions)
        if tau is None:
            tau = sample_time(actions.shape[0], self.config.time_beta, self.config.time_s)
        tau = tau.to(actions)
        v_t = self.expert(noisy_actions(actions, noise, tau), tau, cache, self.config.stop_gradient, state)
        return (v_t.float() - target_velocity(actions, noise).float()).pow(2).mean(dim=(1, 2))

    # ---- inference ----------------------------------------------------------------------------------------

    @torch.no_grad()
    def sample_actions(
        self, obs: Observation, steps: int | None = None, noise: Tensor | None = None, cache_prefix: bool = True
    ) -> Tensor:
        """Action chunks (b, H, d): Euler-integrate the flow over the cached prefix (π0-FAST: decode FAST).

        The prefix K/V, the expert's masks/RoPE and the adaptive-norm modulations of all N steps are computed
        once; each step runs only the expert layers. `cache_prefix=False` recomputes the prefix at every Euler
        step (the baseline the cache is measured against; identical result). Input checks run here, at the
        public boundary, where the inputs are (host inputs are checked on the host, then moved to the model's
        device; the chunk comes back on the observation's device); past them nothing is read back to the
        host, so on a GPU the prefix pass and the N steps queue without one synchronisation (issue 15;
        `tests/vla/test_sync_free.py`)."""
        check_observation(obs, self.config)
        cfg = self.config
        if self.expert is None:
            return torch.as_tensor(self.sample_fast(obs).actions, dtype=torch.float32)
        weight = self.projector.weight
        home, obs = obs.state.device, obs.to(weight.device)
        if noise is None:
            noise = torch.randn(obs.batch_size, cfg.horizon, cfg.action_dim, device=weight.device)
        check_actions(noise, cfg, obs.batch_size)
        noise = noise.to(weight.device)  # the Euler state stays in the noise's dtype (float32 by default)
        steps = steps or cfg.flow_steps
        b = obs.batch_size
        velocity_fn = self.compiled_velocity or self.expert.velocity
        taus = euler_times(steps).to(weight.device, torch.float32).repeat_interleave(b)  # (N·b,): step-major
        conditions = self.expert.conditions(taus).unflatten(0, (steps, b))  # (N, b, …)

        def context() -> ExpertContext:
            return self.expert.context(self.encode_prefix(obs), cfg.horizon, False, obs.state)  # type: ignore[union-attr]

        cached = context() if cache_prefix else None

        def velocity(x_t: Tensor, tau: Tensor, i: int) -> Tensor:
            return velocity_fn(x_t.to(weight.dtype), conditions[i], cached or context()).to(x_t.dtype)

        return euler_integrate(velocity, noise, steps).to(home)

    @torch.no_grad()
    def sample_fast(self, obs: Observation, max_tokens: int | None = None, check_every: int | None = None) -> Decoded:
        """π0-FAST inference: greedy KV-cached decoding of FAST tokens after BOA, then the tokenizer's safe decode.

        Decoding is constrained to FAST ids and EOA; a sample that has emitted EOA keeps emitting EOA (a
        done-mask) and tokens after its first EOA are ignored. Stopping, the choice made for issue 15: by
        default the loop runs exactly `max_tokens` (config `max_fast_tokens`) steps and reads nothing back to
        the host, so a GPU is never synchronised per token and every call has the same sequence of shapes.
        `check_every=k` asks the host once every k tokens whether every sample is done and stops early: one
        synchronisation per k tokens, for eager decoding of chunks much shorter than `max_tokens`.
        """
        cfg = self.config
        if self.fast is None:
            raise ValueError(f"fast: sample_fast needs a fitted FastTokenizer, received None (variant {cfg.variant})")
        check_observation(obs, cfg)
        if check_every is not None and check_every < 1:
            raise ValueError(f"check_every: expected a positive number of tokens or None, received {check_every}")
        obs = obs.to(self.projector.weight.device)
        ids = self._decode_fast(obs, max_tokens or cfg.max_fast_tokens, check_every)  # (b, n)
        return self.fast.decode(self._strip(ids), cfg.horizon)

    def _decode_fast(self, obs: Observation, max_tokens: int, check_every: int | None) -> Tensor:
        """The greedy decode loop of `sample_fast` over a checked observation → generated ids (b, n ≤ max_tokens).

        The prefix is encoded once and copied into a preallocated cache of P + max_tokens columns (reused
        while the shapes stay); every step writes its token's keys/values in place, so all steps have the
        same shapes and one compiled step (`compile_fast_decode`: a CUDA graph on a GPU) replays for each."""
        state = self._fast_state(self.encode_prefix(obs), max_tokens)
        step = self.compiled_fast_step or self._fast_step
        steps = torch.arange(max_tokens, device=state.token.device)  # (n,) the step index, as a tensor
        for j in range(max_tokens):
            step(state, steps[j : j + 1])
            if check_every is not None and (j + 1) % check_every == 0 and bool(state.done.all()):
                return state.ids[:, : j + 1].clone()
        return state.ids.clone()

    def decode_cache(self, prefix: KVCache, max_tokens: int) -> StaticKVCache:
        """The prefix's K/V copied into the (reused) preallocated buffer of P + max_tokens columns, for
        autoregressive decoding after it (`GemmaLM.decode`): column P + j holds the j-th fed token, block j + 1,
        position `start + j` where start (b, 1) = the prefix's valid length."""
        (b, length), device = prefix.blocks.shape, prefix.blocks.device
        k = prefix.keys[0]  # (b, kv_heads, P, hd)
        self._fast_buffer = reuse_or_allocate(
            self._fast_buffer, len(prefix.keys), b, k.shape[1], length + max_tokens, k.shape[3], k.dtype, device
        )
        for i, (keys, values) in enumerate(zip(prefix.keys, prefix.values, strict=True)):
            self._fast_buffer.fill(i, keys, values)
        ar = torch.arange(1, max_tokens + 1, device=device).expand(b, -1)  # (b, n): block of the j-th token
        start = prefix.valid.sum(dim=1, keepdim=True)  # (b, 1): position of the first generated token
        return StaticKVCache(
            self._fast_buffer,
            torch.cat([prefix.blocks, ar], dim=1),
            torch.cat([prefix.positions, start + ar - 1], dim=1),
            torch.cat([prefix.valid, torch.ones_like(ar, dtype=torch.bool)], dim=1),
        )

    def _fast_state(self, prefix: KVCache, max_tokens: int) -> FastDecodeState:
        """The decode state after the prefix: its K/V in the decode cache, BOA as the first input."""
        cfg = self.config
        cache = self.decode_cache(prefix, max_tokens)
        (b, length), device = prefix.blocks.shape, prefix.blocks.device
        start = prefix.valid.sum(dim=1, keepdim=True)  # (b, 1): position of the first generated token
        token = torch.full((b, 1), cfg.boa, dtype=torch.int64, device=device)
        ids = torch.full((b, max_tokens), cfg.eoa, dtype=torch.int64, device=device)
        return FastDecodeState(cache, length, start, token, torch.zeros_like(token, dtype=torch.bool), ids)

    def _fast_step(self, state: FastDecodeState, j: Tensor) -> None:
        """Decode step j (a (1,) int64 tensor): feed `state.token`, write its K/V at column P + j, pick the next
        greedy FAST token (or EOA once done) into `state.token`, `state.done` and `state.ids[:, j]`, in place."""
        cfg = self.config
        block = (j + 1).expand_as(state.token)  # (b, 1)
        h = self.lm.decode(self.lm.embed_tokens(state.token), block, state.start + j, state.cache, state.prefix + j)
        logits = h[:, -1] @ self.lm.embed.weight[cfg.fast_offset : cfg.eoa + 1].T  # (b, fast_vocab + 2)
        logits[:, cfg.boa - cfg.fast_offset] = float("-inf")  # BOA is never generated
        token = (logits.argmax(dim=-1, keepdim=True) + cfg.fast_offset).masked_fill(state.done, cfg.eoa)  # (b, 1)
        state.token.copy_(token)
        state.done.logical_or_(token == cfg.eoa)
        state.ids.index_copy_(1, j, token)

    def _strip(self, ids: Tensor) -> list[list[int]]:
        """(b, n) generated ids → FAST-vocabulary ids up to (excluding) the first EOA."""
        out = []
        for row in ids.cpu().numpy():
            stop = np.flatnonzero(row == self.config.eoa)
            out.append((row[: stop[0] if stop.size else len(row)] - self.config.fast_offset).tolist())
        return out


def check_fast_tokenizer(fast: FastTokenizer | None, config: VLAConfig) -> None:
    """A FAST tokenizer must fit the model: its vocabulary within `fast_vocab` (larger ids would alias BOA/EOA
    and the rows after them), fitted on chunks of this action dim and horizon."""
    if fast is None:
        return
    if fast.vocab_size > config.fast_vocab:
        raise ValueError(
            f"fast: tokenizer vocabulary {fast.vocab_size} exceeds fast_vocab={config.fast_vocab} of the model; "
            f"refit it with vocab_size <= {config.fast_vocab} or raise fast_vocab"
        )
    if fast.dim != config.action_dim:
        raise ValueError(
            f"fast: tokenizer fitted on action dim {fast.dim}, the model has action_dim={config.action_dim}"
        )
    if fast.horizon is not None and fast.horizon != config.horizon:
        raise ValueError(f"fast: tokenizer fitted on horizon {fast.horizon}, the model has horizon={config.horizon}")


def _rows(mask: Tensor | None, b: int, device: torch.device) -> Tensor:
    """Indices (n,) of the samples a (b,) bool mask selects; every sample for None."""
    if mask is None:
        return torch.arange(b, device=device)
    check_shape(mask, "action_mask", (b,))
    if mask.dtype != torch.bool:
        raise ValueError(f"action_mask: expected dtype bool, received {mask.dtype}")
    return mask.nonzero()[:, 0]


def _pick(x: Tensor | None, rows: Tensor) -> Tensor | None:
    return None if x is None else x[rows]


def build_model(config: VLAConfig, fast: FastTokenizer | None = None, device: str | torch.device = "cpu") -> KIVLA:
    """Construct a KI-VLA (on `device`; "meta" builds shapes only) and load pretrained LM weights if configured."""
    with torch.device(device):
        model = KIVLA(config, fast)
    if config.pretrained == "gemma3-270m" and str(device) != "meta":
        from reasonact.vla.pretrained import load_gemma3_270m

        load_gemma3_270m(model.lm)
    return model
