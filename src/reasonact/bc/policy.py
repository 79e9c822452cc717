"""A trained BC run as a policy for the evaluation harness: `load_bc(path) -> BCCheckpointPolicy`.

`reasonact bc train` writes `bc.json` (the `BCConfig`), `transforms.json` (state/action normalisation and the
dataset cameras, in the model's order) and checkpoints ("model.*", "ema.*") under the run directory; this
loads the EMA weights and acts through the VLA policy's per-sub-env action queues (`vla.policy.ChunkQueues`);
`reasonact bc eval` runs it through `reasonact vla eval`'s harness and report (rendering every camera the
policy names), so the two are compared on the same seeds and baselines.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reasonact.atomic import read_json
from reasonact.bc.model import BCConfig, CNNPolicy
from reasonact.checkpoints import load_checkpoint as load_state
from reasonact.vla.contract import PolicySpec
from reasonact.vla.evaluate import VLAEvalConfig, run
from reasonact.vla.policy import ChunkQueues, resolve_checkpoint
from reasonact.vla.transforms import Normalizer, resize_images

CONFIG = "bc.json"


class BCCheckpointPolicy(ChunkQueues):
    """A trained `CNNPolicy` with its normalisation: robot observations in, robot-unit action chunks out.
    `cameras` are the robot's names of the model's N cameras, in order; `spec.cameras` asks a rollout for all."""

    def __init__(self, model: CNNPolicy, state: Normalizer, action: Normalizer, cameras: tuple[str, ...],
                 metadata: dict, n_action_steps: int = 0) -> None:  # fmt: skip
        cfg = model.config
        if len(cameras) != cfg.num_cameras:
            raise ValueError(f"cameras: the model takes {cfg.num_cameras} camera(s), received names {list(cameras)}")
        super().__init__(cfg.horizon, n_action_steps)
        self.model, self.state, self.action, self.cameras = model.eval(), state, action, cameras
        self.spec = PolicySpec(cameras, cfg.image_size, cfg.state_dim, cfg.action_dim, cfg.horizon)
        self.metadata = {**metadata, "n_action_steps": self.n_action_steps}

    def pixels(self, images: Mapping[str, np.ndarray]) -> torch.Tensor:
        """images {robot camera: (b, h, w, 3) uint8} → the model's input (b, N, S, S, 3) uint8, cameras in order."""
        missing = [c for c in self.cameras if c not in images]
        if missing:
            raise ValueError(f"images: missing camera(s) {missing}; the policy sees {list(self.cameras)}, "
                             f"received {sorted(images)}")  # fmt: skip
        size = self.model.config.image_size
        return torch.stack([resize_images(images[c], size, c) for c in self.cameras], dim=1)

    @torch.inference_mode()
    def predict(self, images: Mapping[str, np.ndarray], state: np.ndarray, prompts: list[str]) -> np.ndarray:
        """images {camera: (b, h, w, 3) uint8}, state (b, d_s) robot units, b instructions → (b, H, d_a) float32."""
        normed = torch.from_numpy(self.state.normalize(np.asarray(state))).float()
        chunks = self.model(self.pixels(images), normed, self.model.task_ids(list(prompts))).numpy()  # normalised
        return self.action.unnormalize(chunks).astype(np.float32)

    def chunks(self, obs: Mapping, slots: list[int]) -> np.ndarray:
        images = {c: np.asarray(v[slots]) for c, v in obs["images"].items()}  # rows first: only theirs are rendered
        return self.predict(images, np.asarray(obs["state"])[slots], [str(obs["instruction"][i]) for i in slots])


def load_bc(path: str | Path, ema: bool = True, n_action_steps: int = 0) -> BCCheckpointPolicy:
    """A `reasonact bc train` run directory (its latest checkpoint) or one checkpoint → its policy."""
    run_dir, checkpoint = resolve_checkpoint(path, CONFIG, "reasonact bc train")
    data = read_json(run_dir / CONFIG)
    config = BCConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    state = nn.ModuleDict({"model": CNNPolicy(config), "ema": CNNPolicy(config)})
    step = load_state(checkpoint, state, restore_rng_state=False)["step"]
    transforms = read_json(run_dir / "transforms.json")
    cameras = transforms["cameras"] if "cameras" in transforms else [transforms["camera"]]  # runs before N cameras
    weights = "ema" if ema else "model"
    model: CNNPolicy = state[weights]  # type: ignore[assignment]
    metadata = {
        "policy": f"{run_dir.name}@{step}", "run": str(run_dir), "checkpoint": str(checkpoint), "step": step,
        "weights": weights, "variant": "cnn_bc", "parameters": sum(p.numel() for p in model.parameters()),
    }  # fmt: skip
    return BCCheckpointPolicy(model, Normalizer.from_json(transforms["state"]), Normalizer.from_json(
        transforms["action"]), tuple(cameras), metadata, n_action_steps)  # fmt: skip


def evaluate(config: VLAEvalConfig) -> dict:
    """`reasonact bc eval <run>`: closed-loop success of a BC run beside the expert and baselines (`vla eval`'s
    harness, report and flags)."""
    return run(config, load_bc)


__all__ = ["BCCheckpointPolicy", "evaluate", "load_bc"]
