"""KI-VLA configuration: sizes (tiny / small / gemma270m / paper) × variants (pi0, pi05, pi0_fast, frozen, ki, …).

A config is `VLAConfig(vision, lm, expert, ..., variant)`. Sizes fix the dimensions; the variant fixes the
training recipe of the knowledge-insulation paper (Driess et al. 2025, Sec. 5) and its baselines:

| variant          | action expert | FAST tokens (CE) | stop-gradient K/V | backbone trained |
|------------------|---------------|------------------|-------------------|------------------|
| `pi0`            | π0 style      | no               | no                | by L_flow        |
| `pi05`           | yes           | no               | no                | by L_flow        |
| `pi0_fast`       | no            | yes (AR decode)  | —                 | by CE            |
| `frozen`         | yes           | no               | —                 | no               |
| `ki`             | yes           | yes              | yes               | by CE only       |
| `ki_no_stopgrad` | yes           | yes              | no                | by CE and L_flow |
| `ki_no_fast`     | yes           | no               | yes               | by text CE only  |

Two expert styles. π0.5 / KI ("yes"): flow time enters every expert layer through adaptive RMSNorm (and the
final norm), the state is in the prefix (`state_mode`). Original π0 (arXiv 2410.24164, Sec. 3 and App. B;
openpi `pi0.py`): an action-time MLP fuses τ into each action token, W3·swish(W2·[W1·a^τ ; φ(τ)]), the expert
layers use plain RMSNorm, and the state is one continuous token at the start of the expert's suffix
(`state_mode` is not used). The third KI ablation, "no VLM data", is a data-mixture choice, not a model one.

Which LM weights each size uses: `tiny`, `small` and `paper` are randomly initialised (`paper` is built on
the `meta` device only); `gemma270m` loads the real pretrained Gemma 3 270M LM (see `pretrained.py`); its
vision tower and expert are trained from scratch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from reasonact.checks import check_range

Variant = Literal["pi0", "pi05", "pi0_fast", "frozen", "ki", "ki_no_stopgrad", "ki_no_fast"]
StateMode = Literal["text", "special", "continuous"]


class Recipe(NamedTuple):
    """What a variant changes (the module table)."""

    expert: bool  # has a flow-matching action expert
    fast: bool  # FAST tokens are CE targets (co-training)
    stop_gradient: bool  # the expert reads the backbone's keys/values detached
    frozen: bool  # backbone parameters are not trained
    pi0_expert: bool = False  # original π0 expert: time fused into action tokens, state token in the suffix


VARIANTS: dict[str, Recipe] = {
    "pi0": Recipe(True, False, False, False, pi0_expert=True),
    "pi05": Recipe(True, False, False, False),
    "pi0_fast": Recipe(False, True, False, False),
    "frozen": Recipe(True, False, True, True),
    "ki": Recipe(True, True, True, False),
    "ki_no_stopgrad": Recipe(True, True, False, False),
    "ki_no_fast": Recipe(True, False, True, False),
}


@dataclass(frozen=True)
class VisionConfig:
    """SigLIP-style ViT: square images → (image_size / patch_size)² tokens."""

    image_size: int = 32  # square input resolution (pixels)
    patch_size: int = 8  # ViT patch side; tokens per camera = (image_size / patch_size)²
    width: int = 64  # ViT hidden size
    depth: int = 2  # ViT layers
    mlp_dim: int = 128  # ViT MLP hidden size
    heads: int = 4  # ViT attention heads
    dataset_norm: bool = True  # normalise images by the training images' per-pixel mean and spread (`PixelNorm`)

    @property
    def tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@dataclass(frozen=True)
class LMConfig:
    """Gemma-architecture decoder (the VLM's language model)."""

    width: int = 64  # hidden size
    depth: int = 2  # layers (the action expert has the same depth)
    mlp_dim: int = 128  # GeGLU hidden size
    heads: int = 4  # query heads (the expert has the same number)
    kv_heads: int = 1  # key/value heads: 1 = multi-query attention, < heads = grouped-query
    head_dim: int = 16  # per-head size (shared with the expert)
    vocab_size: int = 256  # text vocabulary (256 = the byte-level tokenizer of `prompt.py`)
    qk_norm: bool = False  # Gemma 3: RMSNorm on every query/key head
    sandwich_norm: bool = False  # Gemma 3: extra RMSNorm after attention and after the MLP
    rope_theta: float = 10_000.0  # RoPE base of global-attention layers
    local_rope_theta: float = 10_000.0  # RoPE base of sliding-window layers
    sliding_window: int | None = None  # Gemma 3: window of local layers; None = all layers global
    global_every: int = 6  # with a sliding window, every `global_every`-th layer is global
    query_scale: float | None = None  # attention scale is query_scale**-0.5 (None: head_dim)
    norm_eps: float = 1e-6  # RMSNorm epsilon

    def is_local(self, layer: int) -> bool:
        return self.sliding_window is not None and (layer + 1) % self.global_every != 0


@dataclass(frozen=True)
class ExpertConfig:
    """Action expert: same depth, heads and head_dim as the LM; its own width and MLP (paper: 1024 / 4096)."""

    width: int = 32  # hidden size of the expert stream
    mlp_dim: int = 64  # GeGLU hidden size of the expert


@dataclass(frozen=True)
class VLAConfig:
    """One KI-VLA: dimensions + variant. Every field can be overridden from the CLI."""

    vision: VisionConfig = field(default_factory=VisionConfig)
    lm: LMConfig = field(default_factory=LMConfig)
    expert: ExpertConfig = field(default_factory=ExpertConfig)
    variant: Variant = "ki"  # training recipe, see the module table
    cameras: tuple[str, ...] = ("base",)  # camera names every Observation must provide
    action_dim: int = 7  # d: action dimension
    horizon: int = 10  # H: action chunk length (paper: 50)
    state_dim: int = 8  # proprioceptive state dimension
    state_mode: StateMode = "special"  # prefix state: text bins / special token per dim / continuous (not π0)
    state_bins: int = 32  # bins per state dim for the text and special-token modes (state in [-1, 1])
    max_prompt_tokens: int = 48  # prompt length (incl. text/special state); longer prompts are refused
    fast_vocab: int = 256  # FAST BPE vocabulary appended to the LM vocabulary (variants with FAST)
    max_fast_tokens: int = 64  # FAST tokens per chunk (training truncates, decoding stops here)
    flow_weight: float = 1.0  # α in L = CE + α·L_flow (1 with knowledge insulation)
    flow_steps: int = 10  # N: Euler steps at inference (π0: 10)
    time_beta: tuple[float, float] = (1.5, 1.0)  # Beta(α, β) of the flow-time distribution (π0)
    time_s: float = 0.999  # s: τ = s·(1 − u), u ~ Beta, so τ ∈ [0, s]
    pretrained: Literal["none", "gemma3-270m"] = "none"  # LM weights to load at build time

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {sorted(VARIANTS)}, received {self.variant!r}")
        if self.vision.image_size % self.vision.patch_size:
            raise ValueError(
                f"vision.image_size: expected a multiple of patch_size={self.vision.patch_size}, "
                f"received {self.vision.image_size}"
            )
        if self.lm.heads % self.lm.kv_heads:
            raise ValueError(f"lm.kv_heads: expected a divisor of heads={self.lm.heads}, received {self.lm.kv_heads}")
        check_range(self.flow_weight, "flow_weight", low=0.0)
        check_range(self.flow_steps, "flow_steps", low=1)
        check_range(self.time_s, "time_s", 0.0, 1.0)
        check_range(self.state_bins, "state_bins", low=2)

    @property
    def has_expert(self) -> bool:
        return VARIANTS[self.variant].expert

    @property
    def uses_fast(self) -> bool:
        return VARIANTS[self.variant].fast

    @property
    def stop_gradient(self) -> bool:
        return VARIANTS[self.variant].stop_gradient

    @property
    def freeze_backbone(self) -> bool:
        return VARIANTS[self.variant].frozen

    @property
    def pi0_expert(self) -> bool:
        """Original π0 expert (time fused into action tokens, continuous state token in the suffix)."""
        return VARIANTS[self.variant].pi0_expert

    @property
    def prefix_state(self) -> StateMode | None:
        """How the state enters the prefix; None for π0, whose state token is in the expert's suffix."""
        return None if self.pi0_expert else self.state_mode

    @property
    def prefix_len(self) -> int:
        """Prefix tokens: image tokens of every camera, the prompt, and one continuous-state token."""
        return len(self.cameras) * self.vision.tokens + self.max_prompt_tokens + (self.prefix_state == "continuous")

    @property
    def special_state_offset(self) -> int:
        """First id of the special state tokens (state_dim × state_bins of them) after the text vocabulary."""
        return self.lm.vocab_size

    @property
    def fast_offset(self) -> int:
        """First id of the FAST tokens in the embedding; then BOA (begin action) and EOA (end action)."""
        return self.lm.vocab_size + (self.state_dim * self.state_bins if self.prefix_state == "special" else 0)

    @property
    def boa(self) -> int:
        return self.fast_offset + self.fast_vocab

    @property
    def eoa(self) -> int:
        return self.boa + 1

    @property
    def embed_vocab(self) -> int:
        return self.eoa + 1

    @classmethod
    def from_json(cls, data: dict) -> VLAConfig:
        """Inverse of `runs.to_jsonable` (a run's model.json): nested dicts → sub-configs, lists → tuples."""
        subs = {"vision": VisionConfig, "lm": LMConfig, "expert": ExpertConfig}
        rest = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k not in subs}
        return cls(**{k: sub(**data[k]) for k, sub in subs.items()}, **rest)

    def with_variant(self, variant: Variant) -> VLAConfig:
        return dataclasses.replace(self, variant=variant)


TINY = VLAConfig()
SMALL = VLAConfig(
    vision=VisionConfig(image_size=64, patch_size=8, width=128, depth=4, mlp_dim=256, heads=4),
    lm=LMConfig(width=256, depth=6, mlp_dim=768, heads=4, kv_heads=1, head_dim=64),
    expert=ExpertConfig(width=128, mlp_dim=384),
    horizon=50,
    max_fast_tokens=96,
    fast_vocab=1024,
)
GEMMA_270M_LM = LMConfig(  # values of the Gemma 3 270M checkpoint; checked against its config on load
    width=640,
    depth=18,
    mlp_dim=2048,
    heads=4,
    kv_heads=1,
    head_dim=256,
    vocab_size=262_144,
    qk_norm=True,
    sandwich_norm=True,
    rope_theta=1_000_000.0,
    local_rope_theta=10_000.0,
    sliding_window=512,
    global_every=6,
    query_scale=256.0,
)
GEMMA270M = VLAConfig(
    vision=VisionConfig(image_size=112, patch_size=14, width=384, depth=6, mlp_dim=1536, heads=6),
    lm=GEMMA_270M_LM,
    expert=ExpertConfig(width=320, mlp_dim=1024),
    state_mode="text",
    state_bins=256,
    horizon=50,
    max_prompt_tokens=96,
    max_fast_tokens=96,
    fast_vocab=1024,
    pretrained="gemma3-270m",
)
PAPER = VLAConfig(  # PaliGemma (SigLIP So400m/14 + Gemma 2B) + 300M expert, as in π0 / openpi
    vision=VisionConfig(image_size=224, patch_size=14, width=1152, depth=27, mlp_dim=4304, heads=16),
    lm=LMConfig(width=2048, depth=18, mlp_dim=16_384, heads=8, kv_heads=1, head_dim=256, vocab_size=257_152),
    expert=ExpertConfig(width=1024, mlp_dim=4096),
    cameras=("base", "left_wrist", "right_wrist"),
    action_dim=32,
    horizon=50,
    state_dim=32,
    state_mode="text",
    state_bins=256,
    max_prompt_tokens=200,
    fast_vocab=2048,
    max_fast_tokens=256,
)
# LeRobot pi05's `gemma_300m` size for both streams: the side-by-side benchmark dims.
PI05_300M = dataclasses.replace(
    PAPER,
    lm=dataclasses.replace(PAPER.lm, width=1024, mlp_dim=4096),
    cameras=("base",),
    action_dim=32,
    state_mode="text",
    fast_vocab=1024,
)

SIZES: dict[str, tuple[str, VLAConfig]] = {
    "tiny": ("From-scratch toy for tests: width 64, 2 layers, 32 px images.", TINY),
    "small": ("From-scratch model that trains on a CPU: width 256, 6 layers, 64 px images.", SMALL),
    "gemma270m": ("Real pretrained Gemma 3 270M LM + ViT-S-like encoder + width-320 expert.", GEMMA270M),
    "paper": ("Paper dims: SigLIP So400m + Gemma 2B (2048×18, 8 heads, 1 KV head) + 300M expert.", PAPER),
    "pi05_300m": ("LeRobot pi05 with gemma_300m backbone + gemma_300m expert (benchmark dims).", PI05_300M),
}
