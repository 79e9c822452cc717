"""Transforms shared by training and inference (openpi's `transforms.py` / LeRobot's processors in spirit).

One object, `VLATransforms`, turns what the robot side produces into what the model reads, and back:

    dataset frames / env observations
      images  {source camera: (b, h, w, 3) uint8} ─camera map→ ─resize (bilinear, antialiased)→ uint8 → float [-1, 1]
      state   (b, s) robot units ─normalise (dataset stats)→ ─zero-pad to state_dim→ (b, state_dim)
      prompt  b strings (+ state for text/special modes) ─PromptTokenizer→ tokens, token_mask
      target  b strings or None (VQA answer, subtask) ─text tokenizer→ targets, target_mask
    → `vla.Observation`

    model actions (b, H, action_dim) ─drop padding dims→ ─unnormalise→ (b, H, d) robot units
    (training applies the inverse to dataset chunks: `actions_to_model`)

Normalisation reads the dataset's `meta/stats.json` (`reasonact.data.stats`): by default the 1st/99th
percentiles map to −1/1 (openpi's quantile normalisation for π0.5), or `mean_std`. Training and inference use
the same object, saved next to the checkpoint (`to_json` / `from_json`), so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from reasonact.checks import as_float_array
from reasonact.vla.config import VLAConfig
from reasonact.vla.contract import Observation
from reasonact.vla.prompt import ByteTokenizer, PromptTokenizer, TextTokenizer

NormMode = Literal["quantile", "mean_std"]
MIN_SCALE = 1e-6  # a constant dimension gets this half-range instead of a division by zero (openpi: + 1e-6)
COLLAPSED = 0.01  # a q01–q99 range below this share of the min–max range falls back to min–max


@dataclass(frozen=True)
class Normalizer:
    """Per-dimension y = (x − offset) / scale: quantile mode maps [q01, q99] → [−1, 1], mean_std → z-scores."""

    offset: tuple[float, ...]  # (d,)
    scale: tuple[float, ...]  # (d,) > 0

    @classmethod
    def from_stats(
        cls, stats: Mapping[str, Mapping[str, np.ndarray]], key: str, mode: NormMode = "quantile", source: str = ""
    ) -> Normalizer:
        """From `meta/stats.json` contents ({feature: {stat: array}}); `source` names the file in errors."""
        where = f"{source}: " if source else ""
        if key not in stats:
            raise ValueError(f"{where}stats: no statistics for feature {key!r}; found {sorted(stats)}")
        names = ("q01", "q99") if mode == "quantile" else ("mean", "std")
        missing = [n for n in names if n not in stats[key]]
        if missing:
            raise ValueError(f"{where}stats[{key!r}]: missing {missing} (needed by mode {mode!r})")
        a, b = (np.asarray(stats[key][n], dtype=np.float64).reshape(-1) for n in names)
        if a.shape != b.shape or not (np.isfinite(a).all() and np.isfinite(b).all()):
            raise ValueError(f"{where}stats[{key!r}]: expected finite {names} of equal length, received {a} and {b}")
        if mode == "quantile" and "min" in stats[key] and "max" in stats[key]:
            # LeRobot's dataset quantiles are count-weighted means of per-episode ones: a dimension that is
            # constant within each episode (a gripper held at −1 in one task, 0 in another) gets q01 = q99.
            # Such a collapsed range falls back to min/max instead of dividing by ~0.
            lo, hi = (np.asarray(stats[key][n], dtype=np.float64).reshape(-1) for n in ("min", "max"))
            collapsed = (b - a) < COLLAPSED * (hi - lo)
            a, b = np.where(collapsed, lo, a), np.where(collapsed, hi, b)
        offset, scale = ((a + b) / 2, (b - a) / 2) if mode == "quantile" else (a, b)
        return cls(tuple(offset.tolist()), tuple(np.maximum(scale, MIN_SCALE).tolist()))

    @property
    def dim(self) -> int:
        return len(self.offset)

    def normalize(self, x: np.ndarray) -> np.ndarray:  # (..., d) robot units → (..., d)
        return (np.asarray(x, dtype=np.float64) - np.asarray(self.offset)) / np.asarray(self.scale)

    def unnormalize(self, y: np.ndarray) -> np.ndarray:  # (..., d) → (..., d) robot units
        return np.asarray(y, dtype=np.float64) * np.asarray(self.scale) + np.asarray(self.offset)

    def to_json(self) -> dict:
        return {"offset": list(self.offset), "scale": list(self.scale)}

    @classmethod
    def from_json(cls, data: Mapping) -> Normalizer:
        return cls(tuple(data["offset"]), tuple(data["scale"]))


def resize_images(images: np.ndarray | Tensor, size: int, name: str = "images") -> Tensor:
    """(b, h, w, 3) uint8 → (b, size, size, 3) uint8: bilinear with antialiasing (no-op at the right size)."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images)
    if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != torch.uint8:
        raise ValueError(f"{name}: expected uint8 images (b, h, w, 3), received {x.dtype} {tuple(x.shape)}")
    if x.shape[1] == size and x.shape[2] == size:
        return x
    y = F.interpolate(x.permute(0, 3, 1, 2).float(), size=(size, size), mode="bilinear", antialias=True)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def images_to_model(images: Tensor) -> Tensor:
    """(b, S, S, 3) uint8 → float32 in [−1, 1] (SigLIP / π0 convention)."""
    return images.float() / 127.5 - 1.0


@dataclass(frozen=True)
class VLATransforms:
    """Robot-side data ↔ model tensors for one `VLAConfig` (module docstring)."""

    config: VLAConfig
    state: Normalizer  # of the robot state (d_s ≤ config.state_dim dims)
    action: Normalizer  # of the robot action (d_a ≤ config.action_dim dims)
    cameras: tuple[tuple[str, str], ...] = ()  # (model camera, source camera) pairs; () = same names
    text: TextTokenizer = field(default_factory=ByteTokenizer, compare=False)

    def __post_init__(self) -> None:
        cfg = self.config
        if self.state.dim > cfg.state_dim:
            raise ValueError(f"state: the data has {self.state.dim} state dims, the model state_dim={cfg.state_dim}")
        if self.action.dim > cfg.action_dim:
            raise ValueError(
                f"action: the data has {self.action.dim} action dims, the model action_dim={cfg.action_dim}"
            )
        unknown = sorted({m for m, _ in self.cameras} - set(cfg.cameras))
        if unknown:
            raise ValueError(f"cameras: {unknown} are not model cameras {list(cfg.cameras)}")

    def source_camera(self, camera: str) -> str:
        return dict(self.cameras).get(camera, camera)

    # ---- robot → model ------------------------------------------------------------------------------------

    def observation(
        self,
        images: Mapping[str, np.ndarray | Tensor],
        state: np.ndarray | Tensor | None,
        prompts: Sequence[str],
        targets: Sequence[str | None] | None = None,
        has_state: Sequence[bool] | None = None,
    ) -> Observation:
        """images {source camera: (b, h, w, 3) uint8}, state (b, d_s) robot units (None: no sample has one),
        b prompts, optional b text targets (None entries: no target) → `Observation` (images float [−1, 1])."""
        cfg, b = self.config, len(prompts)
        model_images = {}
        for camera in cfg.cameras:
            source = self.source_camera(camera)
            if source not in images:
                raise ValueError(
                    f"images: missing camera {source!r} (model camera {camera!r}); received {sorted(images)}"
                )
            model_images[camera] = images_to_model(resize_images(images[source], cfg.vision.image_size, source))
        if state is None:
            has_state, raw = [False] * b, np.zeros((b, self.state.dim))
        else:
            raw = as_float_array(np.asarray(state), "state", (b, self.state.dim))
        normed = self.normalize_state(raw)  # (b, state_dim)
        if has_state is not None:
            normed[~np.asarray(has_state, dtype=bool)] = 0.0
        tokens, mask = PromptTokenizer(cfg, self.text)(list(prompts), normed, has_state)
        extra = {}
        if targets is not None and any(t is not None for t in targets):
            extra = dict(zip(("targets", "target_mask"), self.target_ids(targets), strict=True))
        return Observation(model_images, torch.from_numpy(normed).float(), tokens, mask, **extra)

    def normalize_state(self, state: np.ndarray) -> np.ndarray:
        """(b, d_s) robot units → (b, state_dim) normalised, zero-padded."""
        out = np.zeros((state.shape[0], self.config.state_dim))
        out[:, : self.state.dim] = self.state.normalize(state)
        return out

    def target_ids(self, targets: Sequence[str | None]) -> tuple[Tensor, Tensor]:
        """b strings (None: no target) → ids (b, T) int64, mask (b, T) bool, right-padded."""
        rows = [[] if t is None else self.text.encode(t) for t in targets]
        width = max(1, max(len(r) for r in rows))
        ids = torch.zeros(len(rows), width, dtype=torch.int64)
        mask = torch.zeros(len(rows), width, dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
            mask[i, : len(r)] = True
        return ids, mask

    def actions_to_model(self, chunks: np.ndarray) -> Tensor:
        """(b, H, d_a) robot units → (b, H, action_dim) float32, normalised and zero-padded."""
        chunks = np.asarray(chunks)
        out = np.zeros((*chunks.shape[:-1], self.config.action_dim), dtype=np.float32)
        out[..., : self.action.dim] = self.action.normalize(chunks)
        return torch.from_numpy(out)

    def env_observation(self, obs: Mapping) -> Observation:
        """An env observation ({"images", "state", "instruction"}), single or batched (vector env) → Observation."""
        state = np.asarray(obs["state"])
        single = state.ndim == 1
        images = {k: np.asarray(v)[None] if single else np.asarray(v) for k, v in obs["images"].items()}
        prompts = [obs["instruction"]] if single else list(obs["instruction"])
        return self.observation(images, state[None] if single else state, prompts)

    # ---- model → robot ------------------------------------------------------------------------------------

    def actions_to_robot(self, actions: Tensor | np.ndarray) -> np.ndarray:
        """Model chunks (b, H, action_dim) → (b, H, d_a) robot units (padding dims dropped)."""
        y = actions.detach().float().cpu().numpy() if isinstance(actions, Tensor) else np.asarray(actions)
        return self.action.unnormalize(y[..., : self.action.dim])

    # ---- persistence --------------------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {
            "state": self.state.to_json(),
            "action": self.action.to_json(),
            "cameras": [list(c) for c in self.cameras],
        }

    @classmethod
    def from_json(cls, config: VLAConfig, data: Mapping, text: TextTokenizer | None = None) -> VLATransforms:
        return cls(
            config,
            Normalizer.from_json(data["state"]),
            Normalizer.from_json(data["action"]),
            tuple((m, s) for m, s in data["cameras"]),
            text or ByteTokenizer(),
        )
