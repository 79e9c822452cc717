"""What the server serves: a `ServedPolicy` (batched numpy observations → action chunks), and `load_policy`,
the one place a policy name, size or checkpoint becomes one.

    policy.spec                  PolicySpec: cameras, image size, state/action dims, horizon
    policy.metadata              JSON-able facts sent to clients on connect (name, variant, parameters)
    policy.check(obs)            raise ValueError naming the field for input the model would refuse
    policy.infer(obs) -> (b, H, d) float32 action chunks

`infer` runs on the server's inference thread, one batch at a time; `check` runs on the event loop for
each request before it joins a batch, so it must be cheap.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from reasonact.devices import Placement
from reasonact.serving.requests import ObsBatch
from reasonact.vla import KIVLA, SIZES, Observation, PromptTokenizer, build_model
from reasonact.vla.contract import PolicySpec


@runtime_checkable
class ServedPolicy(Protocol):
    spec: PolicySpec
    metadata: dict[str, Any]

    def check(self, obs: ObsBatch) -> None: ...
    def infer(self, obs: ObsBatch) -> np.ndarray: ...  # (b, H, d) float32


ECHO_SPEC = PolicySpec(cameras=("base",), image_size=32, state_dim=8, action_dim=7, horizon=10)  # = `tiny` VLA


class EchoPolicy:
    """Every step of the chunk is the observation's first d state values (zero-padded): a policy whose
    answer identifies the request, so tests can check each client gets its own. `delay_s` simulates model
    time (slept on the inference thread)."""

    def __init__(self, spec: PolicySpec = ECHO_SPEC, delay_s: float = 0.0) -> None:
        self.spec = spec
        self.delay_s = delay_s
        self.metadata = {"policy": "echo", "delay_s": delay_s}

    def check(self, obs: ObsBatch) -> None:
        """Any valid request is fine."""

    def infer(self, obs: ObsBatch) -> np.ndarray:
        if self.delay_s:
            time.sleep(self.delay_s)
        step = np.zeros((obs.size, self.spec.action_dim), dtype=np.float32)  # (b, d)
        n = min(self.spec.action_dim, self.spec.state_dim)
        step[:, :n] = obs.state[:, :n]
        return np.repeat(step[:, None], self.spec.horizon, axis=1)  # (b, H, d)


class VLAPolicy:
    """A `KIVLA` behind the serving contract: uint8 images and float state as the model's `Observation`,
    the instruction (+ state, per the config's state mode) tokenised by `PromptTokenizer`, then
    `sample_actions` (flow: prefix once + N Euler steps; π0-FAST: AR decoding)."""

    def __init__(self, model: KIVLA, name: str) -> None:
        cfg = model.config
        self.model = model.eval()
        self.prompts = PromptTokenizer(cfg)
        self.spec = PolicySpec(cfg.cameras, cfg.vision.image_size, cfg.state_dim, cfg.action_dim, cfg.horizon)
        self.metadata = {
            "policy": name,
            "variant": cfg.variant,
            "parameters": sum(p.numel() for p in model.parameters()),
            "flow_steps": cfg.flow_steps,
            "state_mode": cfg.state_mode,
        }

    def check(self, obs: ObsBatch) -> None:
        """The prompt (with its text/special state) must fit `max_prompt_tokens`; raises naming `prompts[i]`."""
        self.prompts(obs.instructions, obs.state)

    def infer(self, obs: ObsBatch) -> np.ndarray:
        tokens, mask = self.prompts(obs.instructions, obs.state)  # (b, L) each
        batch = Observation(
            images={c: torch.from_numpy(obs.images[c]) for c in self.spec.cameras},  # (b, S, S, 3) uint8
            state=torch.from_numpy(obs.state),  # (b, s)
            tokens=tokens,
            token_mask=mask,
        )
        return self.model.sample_actions(batch).float().numpy()  # (b, H, d)


class CheckpointServed:
    """A trained checkpoint (`reasonact.vla.policy.CheckpointPolicy`) behind the serving contract: requests in
    the robot's camera names and units, normalised by the checkpoint's own transforms, chunks back in robot units."""

    def __init__(self, policy) -> None:
        self.policy, self.metadata, self.spec = policy, policy.metadata, policy.spec
        self.prompts = PromptTokenizer(policy.transforms.config, policy.transforms.text)

    def check(self, obs: ObsBatch) -> None:
        """The prompt (with the text/special state) must fit `max_prompt_tokens`; raises naming `prompts[i]`."""
        self.prompts(list(obs.instructions), self.policy.transforms.normalize_state(obs.state.astype(np.float64)))

    def infer(self, obs: ObsBatch) -> np.ndarray:
        return self.policy.predict(obs.images, obs.state, obs.instructions)  # (b, H, d_a)


def load_policy(name: str, seed: int = 0, echo_delay_s: float = 0.0, where: Placement | None = None) -> ServedPolicy:
    """The policy loader: "echo" (the test policy), a VLA size from `reasonact.vla.SIZES` with random weights
    (seeded), a trained checkpoint (a `reasonact vla train` run directory or one of its checkpoints/step_<n>,
    EMA weights, robot-unit actions: `reasonact.vla.policy`), or "package.module:factory" (a zero-argument
    callable returning a ServedPolicy). VLA models are moved to `where` (device and dtype; default CPU float32)."""
    where = where or Placement(torch.device("cpu"), torch.float32)
    if name == "echo":
        return EchoPolicy(delay_s=echo_delay_s)
    if name in SIZES:
        torch.manual_seed(seed)
        model = build_model(SIZES[name][1]).to(where.device, where.dtype)  # seeded on the CPU: same weights anywhere
        return VLAPolicy(model, f"{name} (random weights, seed {seed})")
    if ":" in name and not Path(name).exists():
        module, attr = name.split(":", 1)
        try:
            policy = getattr(importlib.import_module(module), attr)()
        except (ImportError, AttributeError) as err:
            raise ValueError(f"policy: cannot import {name!r} ({err})") from err
        if not isinstance(policy, ServedPolicy):
            raise ValueError(f"policy: {name!r} returned {type(policy).__name__}, expected a ServedPolicy "
                             "(spec, metadata, check, infer)")  # fmt: skip
        return policy
    if Path(name).exists():
        from reasonact.vla.policy import load_checkpoint

        policy = load_checkpoint(name)
        policy.model.to(where.device, where.dtype)
        return CheckpointServed(policy)
    raise ValueError(f"policy: expected 'echo', a VLA size {sorted(SIZES)}, a checkpoint directory or "
                     f"'module:factory', received {name!r}")  # fmt: skip
