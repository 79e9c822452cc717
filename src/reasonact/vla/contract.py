"""The model contract every VLA in reasonact implements: `Observation` in, action chunk `(b, H, d)` out.

    policy.compute_loss(obs, actions) -> {"loss": scalar, "flow": ..., "ce": ...}
    policy.sample_actions(obs) -> actions (b, H, d)

Inputs are checked at this boundary (`check_observation`, `check_actions`) so a wrong image size, a
missing camera, a state of the wrong dimension, a too-long prompt or a NaN fails here with a ValueError
naming the field, the expected shape/range and what was received.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from reasonact.checks import check_finite, check_shape
from reasonact.vla.config import VLAConfig


@dataclass(frozen=True)
class Observation:
    """One batch of robot observations (tensors, batch first)."""

    images: dict[str, Tensor]  # camera → (b, S, S, 3): uint8 in [0, 255] or float32 in [-1, 1]
    state: Tensor  # (b, state_dim) float, normalised to [-1, 1]
    tokens: Tensor  # (b, L) int64 prompt ids, L = max_prompt_tokens (text/special state included)
    token_mask: Tensor  # (b, L) bool: False for padding
    targets: Tensor | None = None  # (b, T) int64 text to predict after the prefix (VQA answer, subtask)
    target_mask: Tensor | None = None  # (b, T) bool: False for padding

    @property
    def batch_size(self) -> int:
        return self.tokens.shape[0]

    def to(self, device: torch.device | str) -> Observation:
        move = {k: v.to(device) for k, v in self.images.items()}
        opt = {
            name: None if getattr(self, name) is None else getattr(self, name).to(device)
            for name in ("targets", "target_mask")
        }
        return replace(
            self, images=move, state=self.state.to(device), tokens=self.tokens.to(device),
            token_mask=self.token_mask.to(device), **opt,
        )  # fmt: skip


def images_to_float(image: Tensor) -> Tensor:
    """uint8 [0, 255] → float32 [-1, 1]; float images pass through (already checked to lie in [-1, 1])."""
    return image.float() / 127.5 - 1.0 if image.dtype == torch.uint8 else image


def check_observation(obs: Observation, cfg: VLAConfig) -> None:
    """Refuse observations the model was not built for, naming the field and what was expected."""
    if not isinstance(obs, Observation):
        raise ValueError(f"obs: expected an Observation, received {type(obs).__name__}")
    b = obs.tokens.shape[0] if obs.tokens.ndim else 0
    missing = [c for c in cfg.cameras if c not in obs.images]
    if missing:
        raise ValueError(f"images: missing camera(s) {missing}; expected cameras {list(cfg.cameras)}, "
                         f"received {sorted(obs.images)}")  # fmt: skip
    extra = sorted(set(obs.images) - set(cfg.cameras))
    if extra:
        raise ValueError(f"images: unknown camera(s) {extra}; expected cameras {list(cfg.cameras)}")
    size = cfg.vision.image_size
    for name, image in obs.images.items():
        field = f"images[{name!r}]"
        check_shape(image, field, ("b", size, size, 3), {"b": b})
        if image.dtype not in (torch.uint8, torch.float32):
            raise ValueError(f"{field}: expected dtype uint8 or float32, received {image.dtype}")
        if image.dtype == torch.float32:
            check_finite(image, field)
            lo, hi = float(image.min()), float(image.max())
            if lo < -1.0 - 1e-5 or hi > 1.0 + 1e-5:
                raise ValueError(f"{field}: expected float values in [-1, 1], received range [{lo:.3g}, {hi:.3g}]")
    check_shape(obs.state, "state", ("b", cfg.state_dim), {"b": b})
    if not obs.state.is_floating_point():
        raise ValueError(f"state: expected a float tensor, received dtype {obs.state.dtype}")
    check_finite(obs.state, "state")
    if obs.tokens.ndim == 2 and obs.tokens.shape[1] > cfg.max_prompt_tokens:
        raise ValueError(f"tokens: prompt too long: expected at most max_prompt_tokens={cfg.max_prompt_tokens} "
                         f"tokens, received {obs.tokens.shape[1]}")  # fmt: skip
    _check_ids(obs.tokens, obs.token_mask, "tokens", ("b", cfg.max_prompt_tokens), b, cfg.embed_vocab)
    if (obs.targets is None) != (obs.target_mask is None):
        raise ValueError("targets: expected targets and target_mask together, received only one of them")
    if obs.targets is not None and obs.target_mask is not None:
        _check_ids(obs.targets, obs.target_mask, "targets", ("b", None), b, cfg.lm.vocab_size)


def _check_ids(ids: Tensor, mask: Tensor, name: str, dims: tuple, b: int, vocab: int) -> None:
    check_shape(ids, name, dims, {"b": b})
    check_shape(mask, f"{name}_mask" if name == "tokens" else "target_mask", (b, ids.shape[1]))
    if ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{name}: expected integer ids (int64), received dtype {ids.dtype}")
    if mask.dtype != torch.bool:
        raise ValueError(f"{name} mask: expected dtype bool, received {mask.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
        raise ValueError(f"{name}: expected ids in [0, {vocab}), received range [{int(ids.min())}, {int(ids.max())}]")


def check_actions(actions: Tensor, cfg: VLAConfig, batch: int) -> None:
    """Action chunks (b, H, d), float and finite."""
    check_shape(actions, "actions", ("b", cfg.horizon, cfg.action_dim), {"b": batch})
    if not actions.is_floating_point():
        raise ValueError(f"actions: expected a float tensor, received dtype {actions.dtype}")
    check_finite(actions, "actions")


class BasePolicy(nn.Module, ABC):
    """What trainers, evaluators and the policy server rely on."""

    config: VLAConfig

    @abstractmethod
    def compute_loss(self, obs: Observation, actions: Tensor | None) -> dict[str, Tensor]:
        """Training losses for a batch; "loss" is the scalar to minimise."""

    @abstractmethod
    def sample_actions(self, obs: Observation) -> Tensor:
        """An action chunk (b, H, d) for each observation."""


@dataclass(frozen=True)
class PolicySpec:
    """What a policy expects and returns (robot camera names, image size, dims, chunk length); the server
    sends it to every client in the metadata."""

    cameras: tuple[str, ...]  # camera names every request provides
    image_size: int  # S: square uint8 images (S, S, 3)
    state_dim: int  # s: proprioceptive state size
    action_dim: int  # d: action size
    horizon: int  # H: actions per chunk

    def to_dict(self) -> dict[str, Any]:
        return {"cameras": list(self.cameras), "image_size": self.image_size, "state_dim": self.state_dim,
                "action_dim": self.action_dim, "horizon": self.horizon}  # fmt: skip
