"""Run directories shared by every trainer and study.

    runs/<name>/
      config.json          the resolved config (dataclass → JSON), compared on resume (but for LAUNCH_FIELDS)
      metrics.jsonl        one JSON object per `log` call: {"step": …, <metric>: …}
      plots/               PNGs from `plot_metrics` and the run's own figures
      checkpoints/step_<n>/  see `reasonact.checkpoints`; `checkpoints/latest` names the newest

`Run.open(..., resume=True)` continues where the newest complete checkpoint left off: metrics
logged after it are dropped so the resumed run writes exactly what an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from reasonact.atomic import atomic_write_bytes, atomic_write_json, read_json
from reasonact.checkpoints import load_checkpoint, save_checkpoint

# Config fields that say where and how a run executes, not what it computes: a run may resume with other values
# (started on a CPU, continued on a GPU: checkpoints are device-free safetensors + JSON); config.json is updated.
LAUNCH_FIELDS = frozenset({"device", "threads"})


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, paths, tuples and numpy scalars → plain JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return obj.item()
    return obj


class Run:
    def __init__(self, path: Path, keep_last: int = 2, keep_every: int = 0) -> None:
        self.path = path
        self.keep_last = keep_last  # the newest checkpoints kept (the latest is what a resume needs)
        self.keep_every = keep_every  # also keep every checkpoint whose step is a multiple of this (0 = none)
        self.plots = path / "plots"
        self.checkpoints = path / "checkpoints"
        self.metrics_path = path / "metrics.jsonl"

    @classmethod
    def open(cls, root: str | Path, name: str, config: Any, resume: bool = False, overwrite: bool = False) -> Run:
        """Create `root/name`, or reopen it with `resume=True` (the config must be unchanged but for
        LAUNCH_FIELDS)."""
        path = Path(root) / name
        resolved = to_jsonable(config)
        if path.exists() and not resume:
            if not overwrite:
                raise FileExistsError(
                    f"name: run directory {path} exists; pass resume=True to continue it, "
                    "overwrite=True to replace it, or choose another name"
                )
            shutil.rmtree(path)
        run = cls(path)
        run.plots.mkdir(parents=True, exist_ok=True)
        config_path = path / "config.json"
        if resume and config_path.exists():
            stored = read_json(config_path)
            changed = sorted(k for k in set(stored) | set(resolved) if stored.get(k) != resolved.get(k))
            if set(changed) - LAUNCH_FIELDS:
                raise ValueError(f"config: differs from the run being resumed ({config_path}) in {changed}")
            if changed:
                atomic_write_json(config_path, resolved)
        else:
            atomic_write_json(config_path, resolved)
        return run

    def log(self, step: int, **metrics: float) -> None:
        record = {"step": int(step), **{k: to_jsonable(v) for k, v in metrics.items()}}
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        lines = self.metrics_path.read_text().splitlines()
        # A crash mid-write can leave a partial last line; everything before it is intact.
        return [json.loads(line) for line in lines if line.strip().endswith("}")]

    def save(
        self,
        step: int,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Path:
        """Checkpoint at `step`, point `latest` at it, keep the newest `keep_last` and those on `keep_every`."""
        path = save_checkpoint(self.checkpoints / f"step_{step:09d}", step, model, optimizer, extra)
        atomic_write_bytes(self.checkpoints / "latest", path.name.encode())
        for old in sorted(self.checkpoints.glob("step_*"))[: -self.keep_last]:
            if not (self.keep_every and int(old.name.split("_")[1]) % self.keep_every == 0):
                shutil.rmtree(old, ignore_errors=True)
        return path

    def latest(self) -> Path | None:
        pointer = self.checkpoints / "latest"
        if not pointer.exists():
            return None
        path = self.checkpoints / pointer.read_text().strip()
        return path if (path / "state.json").exists() else None

    def restore(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Load the latest checkpoint if any → (step, extra); (0, {}) for a fresh run."""
        path = self.latest()
        if path is None:
            return 0, {}
        state = load_checkpoint(path, model, optimizer)
        step = state["step"]
        kept = [m for m in self.metrics() if m["step"] <= step]
        atomic_write_bytes(self.metrics_path, "".join(json.dumps(m) + "\n" for m in kept).encode())
        return step, state["extra"]

    def plot_metrics(self, keys: list[str], filename: str = "metrics.png") -> Path:
        """One panel per metric against step; returns the PNG path."""
        from reasonact.plotting import pyplot

        plt = pyplot()

        records = self.metrics()
        fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
        for ax, key in zip(axes[0], keys, strict=True):
            points = [(m["step"], m[key]) for m in records if key in m]
            if points:
                ax.plot(*zip(*points, strict=True))
            ax.set(xlabel="step", title=key)
        fig.tight_layout()
        out = self.plots / filename
        fig.savefig(out, dpi=100)
        plt.close(fig)
        return out
