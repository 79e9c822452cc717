"""A trained VLA checkpoint as a policy: `load_checkpoint(path) -> CheckpointPolicy`.

`reasonact vla train` writes a run directory (`training/vla_trainer.py`):

    runs/<name>/  model.json (VLAConfig)  transforms.json (camera map, state/action normalisation)  fast/ (FAST)
                  checkpoints/step_<n>/model.safetensors  ("model.*" weights, "ema.*" their EMA)

`load_checkpoint` takes the run directory (its latest checkpoint) or one `checkpoints/step_<n>`, rebuilds the
model from model.json, refuses weights written by another config (naming the field), and keeps the EMA
weights when the checkpoint has them (the weights the trainer evaluates). The policy it returns is a
`reasonact.envs.BatchController` (evaluation: begin(slot, seed), act_batch(batched obs, slots) → (k, d));
`reasonact.serving.policy.CheckpointServed` puts it behind the server (`predict` on a batch).

Acting in a vector env follows LeRobot's `select_action`: each sub-env has its own queue of actions; when a
sub-env's queue is empty its row joins one batched `sample_actions` call, and the first `n_action_steps`
actions of its new chunk fill the queue. The flow noise of a sub-env's chunks comes from a generator seeded
with its episode's seed, so an episode's actions do not depend on which episodes share its batch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from torch import nn

from reasonact.actions import FastTokenizer
from reasonact.atomic import read_json
from reasonact.checkpoints import load_checkpoint as load_state
from reasonact.checks import check_range
from reasonact.runs import Run, to_jsonable
from reasonact.vla.config import VLAConfig
from reasonact.vla.contract import PolicySpec
from reasonact.vla.model import KIVLA, build_model
from reasonact.vla.transforms import VLATransforms


class ChunkQueues:
    """A chunk predictor as a `reasonact.envs.BatchController` (module docstring): one action queue per
    sub-env, refilled by one batched `chunks` call for the sub-envs whose queue is empty. Subclasses predict."""

    def __init__(self, horizon: int, n_action_steps: int = 0) -> None:
        check_range(n_action_steps, "n_action_steps", 0, horizon)
        self.n_action_steps = n_action_steps or horizon  # actions of a chunk executed before re-planning
        self.queues: dict[int, deque[np.ndarray]] = {}  # sub-env → actions (d,) left of its current chunk
        self.seeds: dict[int, int] = {}  # sub-env → the seed of its episode

    def chunks(self, obs: Mapping, slots: list[int]) -> np.ndarray:
        """Chunks (len(slots), H, d_a) in robot units for sub-envs `slots` (rows of the batched observation)."""
        raise NotImplementedError

    def begin(self, slot: int, seed: int) -> None:
        """Sub-env `slot` starts the episode of `seed` with an empty queue."""
        self.queues[slot] = deque()
        self.seeds[slot] = int(seed)

    def observes(self, slots: list[int]) -> list[int]:
        """The sub-envs among `slots` whose observation the next `act_batch` reads (their queue is empty): the
        rollout renders camera images for these only (`reasonact.envs.rollout`)."""
        return [i for i in slots if not self.queues.get(i)]

    def act_batch(self, obs: Mapping, slots: list[int]) -> np.ndarray:
        """The vector env's batched observation, the sub-envs to act for → their next actions (len(slots), d_a)."""
        unknown = [i for i in slots if i not in self.queues]
        if unknown:
            raise ValueError(f"slots: sub-envs {unknown} act before `begin(slot, seed)` started their episode")
        empty = [i for i in slots if not self.queues[i]]
        if empty:
            for i, chunk in zip(empty, self.chunks(obs, empty), strict=True):
                self.queues[i] = deque(chunk[: self.n_action_steps])
        return np.stack([self.queues[i].popleft() for i in slots])  # (len(slots), d_a)


class CheckpointPolicy(ChunkQueues):
    """A trained `KIVLA` with its transforms: robot observations in, robot-unit actions out (module docstring)."""

    def __init__(
        self, model: KIVLA, transforms: VLATransforms, metadata: dict[str, Any], n_action_steps: int = 0
    ) -> None:
        cfg = transforms.config
        super().__init__(cfg.horizon, n_action_steps)
        self.model, self.transforms = model.eval(), transforms
        cameras = tuple(transforms.source_camera(c) for c in cfg.cameras)  # the robot's names for them
        self.spec = PolicySpec(cameras, cfg.vision.image_size, transforms.state.dim, transforms.action.dim, cfg.horizon)
        self.metadata = {**metadata, "n_action_steps": self.n_action_steps}
        self.generators: dict[int, torch.Generator] = {}  # sub-env → flow-noise generator of its episode

    @torch.inference_mode()
    def predict(
        self,
        images: Mapping[str, np.ndarray],
        state: np.ndarray,
        prompts: Sequence[str],
        noise: torch.Tensor | None = None,
    ) -> np.ndarray:
        """images {robot camera: (b, h, w, 3) uint8}, state (b, d_s), b prompts, optional flow noise
        (b, H, action_dim) → action chunks (b, H, d_a) float32 in robot units."""
        obs = self.transforms.observation(images, state, list(prompts))
        chunks = self.model.sample_actions(obs, noise=noise)  # (b, H, action_dim) normalised
        return self.transforms.actions_to_robot(chunks).astype(np.float32)  # (b, H, d_a)

    # ---- evaluation: `BatchController` ------------------------------------------------------------------------

    def begin(self, slot: int, seed: int) -> None:
        """Sub-env `slot` starts the episode of `seed`: an empty queue and that episode's noise generator."""
        super().begin(slot, seed)
        self.generators[slot] = torch.Generator().manual_seed(int(seed))

    def chunks(self, obs: Mapping, slots: list[int]) -> np.ndarray:
        cfg = self.transforms.config
        noise = torch.stack([torch.randn(cfg.horizon, cfg.action_dim, generator=self.generators[i]) for i in slots])
        return self.predict(
            {c: np.asarray(v[slots]) for c, v in obs["images"].items()},  # rows first: only theirs are rendered
            np.asarray(obs["state"])[slots],
            [str(obs["instruction"][i]) for i in slots],
            noise,  # (k, H, action_dim)
        )


def resolve_checkpoint(
    path: str | Path, config_file: str = "model.json", trainer: str = "reasonact vla train"
) -> tuple[Path, Path]:
    """A run directory (its latest checkpoint) or one of its `checkpoints/step_<n>` → (run dir, checkpoint dir);
    a run directory is recognised by the `config_file` its trainer writes."""
    path = Path(path)
    if (path / "state.json").exists() and path.parent.name == "checkpoints":
        return path.parent.parent, path
    if (path / config_file).exists():
        latest = Run(path).latest()
        if latest is None:
            raise FileNotFoundError(f"checkpoint: run {path} has no complete checkpoint (checkpoints/latest)")
        return path, latest
    raise FileNotFoundError(
        f"checkpoint: {path} is neither a `{trainer}` run directory (with {config_file}) nor one of its "
        "checkpoints/step_<n> directories"
    )


def _differences(expected: Any, found: Any, prefix: str = "") -> list[str]:
    """Dotted field names where two JSON config trees differ, with both values."""
    if isinstance(expected, dict) and isinstance(found, dict):
        keys = sorted(set(expected) | set(found))
        return [d for k in keys for d in _differences(expected.get(k), found.get(k), f"{prefix}{k}.")]
    name = prefix.rstrip(".")
    return [] if expected == found else [f"{name}={found!r} (model.json: {expected!r})"]


def check_weights(checkpoint: Path, state: nn.Module, model_json: Path) -> None:
    """Refuse weights written by another model config: the config the checkpoint records (its `state.json`
    extra "model"), else the shapes of its tensors, against the model built from `model_json`."""
    recorded = read_json(checkpoint / "state.json").get("extra", {}).get("model")
    config = state["model"].config  # type: ignore[index]
    if recorded is not None:
        diff = _differences(to_jsonable(config), recorded)
        if diff:
            raise ValueError(f"checkpoint: {checkpoint} was written by another config than {model_json}: "
                             + ", ".join(diff))  # fmt: skip
    expected = {k: tuple(v.shape) for k, v in state.state_dict().items()}
    with safe_open(str(checkpoint / "model.safetensors"), "pt") as f:
        found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (not a dict)
    wrong = [f"{k} {v} (model.json builds {expected[k]})" for k, v in found.items() if expected.get(k, v) != v]
    if wrong:
        raise ValueError(f"checkpoint: {checkpoint} was written by another config than {model_json}; tensor shapes "
                         f"differ: {', '.join(wrong[:4])}")  # fmt: skip


def load_checkpoint(path: str | Path, ema: bool = True, n_action_steps: int = 0) -> CheckpointPolicy:
    """A `reasonact vla train` run directory or checkpoint → its policy, with the EMA weights when the
    checkpoint has them and `ema` (else the raw ones); `n_action_steps` actions of each chunk (0 = all H)."""
    run_dir, checkpoint = resolve_checkpoint(path)
    model_json = run_dir / "model.json"
    config = VLAConfig.from_json(read_json(model_json))
    fast = FastTokenizer.load(run_dir / "fast") if (run_dir / "fast" / "fast.json").exists() else None
    if config.uses_fast and fast is None:
        raise FileNotFoundError(f"checkpoint: variant {config.variant!r} needs the FAST tokenizer {run_dir / 'fast'}")
    with safe_open(str(checkpoint / "model.safetensors"), "pt") as f:
        has_ema = any(k.startswith("ema.") for k in f.keys())  # noqa: SIM118 (not a dict)
    parts = ("model", "ema") if has_ema else ("model",)
    state = nn.ModuleDict({name: build_model(config, fast) for name in parts})
    check_weights(checkpoint, state, model_json)
    step = load_state(checkpoint, state, restore_rng_state=False)["step"]
    weights = "ema" if has_ema and ema else "model"
    model: KIVLA = state[weights]  # type: ignore[assignment]
    transforms = VLATransforms.from_json(config, read_json(run_dir / "transforms.json"))
    metadata = {
        "policy": f"{run_dir.name}@{step}",
        "run": str(run_dir),
        "checkpoint": str(checkpoint),
        "step": step,
        "weights": weights,
        "variant": config.variant,
        "parameters": sum(p.numel() for p in model.parameters()),
        "flow_steps": config.flow_steps,
    }
    return CheckpointPolicy(model, transforms, metadata, n_action_steps)


__all__ = ["CheckpointPolicy", "ChunkQueues", "check_weights", "load_checkpoint", "resolve_checkpoint"]
