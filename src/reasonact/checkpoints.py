"""Checkpoints: safetensors for tensors, JSON for everything else, written atomically.

A checkpoint is a directory::

    model.safetensors       model weights (shared/tied tensors handled by safetensors)
    optimizer.safetensors   optimizer tensors, keyed "<param index>.<name>" (if an optimizer is given)
    rng.safetensors         torch CPU (and CUDA) generator states
    state.json              step, optimizer hyper-parameters, numpy/python RNG states, `extra`

Restoring all of it makes a resumed run bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from reasonact.atomic import atomic_directory, read_json

FORMAT = "reasonact.checkpoint/1"


def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every global RNG state: tensors (torch) and JSON (numpy legacy global, python `random`)."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors |= {f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    meta = {
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": [py_version, list(py_state), py_gauss],
    }
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    name, keys, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    py_version, py_state, py_gauss = meta["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))


def _split_optimizer_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, param_state in state["state"].items():
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value.detach().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _join_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    path: str | Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory atomically (it appears complete or not at all)."""
    path = Path(path)
    rng_tensors, rng_meta = capture_rng()
    state: dict[str, Any] = {"format": FORMAT, "step": int(step), "rng": rng_meta, "extra": extra or {}}
    with atomic_directory(path) as tmp:
        save_model(model, str(tmp / "model.safetensors"))
        save_file(rng_tensors, str(tmp / "rng.safetensors"))
        if optimizer is not None:
            opt_tensors, state["optimizer"] = _split_optimizer_state(optimizer.state_dict())
            save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        (tmp / "state.json").write_text(json.dumps(state, indent=1) + "\n")
    return path


def load_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    restore_rng_state: bool = True,
) -> dict[str, Any]:
    """Load weights (strict), optimizer and RNG states; return the `state.json` contents."""
    path = Path(path)
    state = read_json(path / "state.json")
    if state.get("format") != FORMAT:
        raise ValueError(f"{path / 'state.json'}: expected format {FORMAT!r}, received {state.get('format')!r}")
    missing, unexpected = load_model(model, str(path / "model.safetensors"), strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path / 'model.safetensors'}: does not match the model (missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]})"
        )
    if optimizer is not None:
        if "optimizer" not in state:
            raise ValueError(f"{path}: checkpoint has no optimizer state but an optimizer was given")
        tensors = load_file(str(path / "optimizer.safetensors"))
        optimizer.load_state_dict(_join_optimizer_state(tensors, state["optimizer"]))
    if restore_rng_state:
        restore_rng(load_file(str(path / "rng.safetensors")), state["rng"])
    return state
