"""`reasonact bc train`: the CNN behaviour-cloning baseline (`reasonact.bc`) on LeRobot datasets, on the run layer.

    runs/<name>/  config.json  metrics.jsonl  plots/metrics.png  eval.json
                  bc.json (the BCConfig with the data's dims, cameras and instructions)
                  transforms.json (normalisation, the dataset cameras in the model's order)
                  checkpoints/step_<n>/model.safetensors  ("model.*" weights, "ema.*" EMA weights)

Per step s: frames drawn by a generator seeded with (seed, s), each frame's images randomly shifted by up to
`shift` pixels (same generator; all cameras of a frame alike, as `vla train` does) → MSE of the normalised
chunk → backward → clip → AdamW at the warmup + cosine lr of step s → EMA update. Data, split
(`data.splits`), chunks and normalisation are the VLA trainer's, so the two are compared on the same frames;
a run resumed from a checkpoint logs the same numbers as an uninterrupted one.
`reasonact bc eval` (= `reasonact vla eval` on a BC run) measures it closed loop.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import torch
from torch import Tensor, nn

from reasonact.atomic import atomic_write_json
from reasonact.bc.model import CNNPolicy
from reasonact.checks import check_range
from reasonact.data.splits import split_episodes
from reasonact.runs import Run, to_jsonable
from reasonact.training.augment import shift_images, shift_offsets
from reasonact.training.bc_config import BCTrainConfig
from reasonact.training.ema import EMA, optimize_with_ema
from reasonact.training.optim import adamw
from reasonact.training.schedule import set_lr, warmup_cosine
from reasonact.training.step_loop import run_steps
from reasonact.training.vla_data import heldout_frames, load_episodes, open_loop_baselines
from reasonact.vla.transforms import Normalizer

EVAL_BATCH = 256


class BCTrainer:
    """Builds data, model, optimizer and run directory from a `BCTrainConfig`; `fit()` trains."""

    def __init__(self, cfg: BCTrainConfig) -> None:
        check_range(cfg.steps, "steps", low=1)
        check_range(cfg.batch_size, "batch_size", low=1)
        check_range(cfg.shift, "shift", 0, cfg.model.image_size)
        torch.set_num_threads(cfg.threads)
        self.cfg = cfg
        episodes, stats, cameras = load_episodes(cfg.datasets, cfg.model.image_size)
        self.cameras = cfg.cameras or (cameras[0],)
        unknown = [c for c in self.cameras if c not in cameras]
        if unknown:
            raise ValueError(f"cameras: {unknown} not among the cameras {cameras} of {cfg.datasets[0]}")
        if len(set(self.cameras)) < len(self.cameras):
            raise ValueError(f"cameras: expected distinct cameras, received {list(self.cameras)}")
        source = str(cfg.datasets[0] / "meta" / "stats.json")
        self.state_norm = Normalizer.from_stats(stats, "observation.state", cfg.norm, source)
        self.action_norm = Normalizer.from_stats(stats, "action", cfg.norm, source)
        self.episodes = episodes
        self.train_ids, self.heldout_ids = split_episodes([e.env_task for e in episodes], cfg.heldout_per_task)
        self.model_cfg = dataclasses.replace(
            cfg.model, state_dim=self.state_norm.dim, action_dim=self.action_norm.dim,
            instructions=tuple(sorted({e.task for e in episodes})), num_cameras=len(self.cameras),
        )  # fmt: skip
        self.frames = np.array([(e, t) for e in self.train_ids for t in range(len(episodes[e].action))])  # (n, 2)
        self.run = Run.open(cfg.out, cfg.name, dataclasses.replace(cfg, resume=False, overwrite=False),
                            resume=cfg.resume, overwrite=cfg.overwrite)  # fmt: skip
        atomic_write_json(self.run.path / "bc.json", to_jsonable(self.model_cfg))
        atomic_write_json(self.run.path / "transforms.json", {
            "state": self.state_norm.to_json(), "action": self.action_norm.to_json(),
            "cameras": list(self.cameras),
        })  # fmt: skip
        torch.manual_seed(cfg.seed)
        self.model = CNNPolicy(self.model_cfg)
        for i, camera in enumerate(self.cameras):
            self.model.pixels.fit(i, (episodes[e].images[camera].float() / 127.5 - 1.0 for e in self.train_ids))
        self.ema = EMA(self.model, cfg.ema_decay)
        self.state = nn.ModuleDict({"model": self.model, "ema": self.ema.model})  # what a checkpoint holds
        self.params = list(self.model.parameters())
        self.optimizer = adamw(self.params, cfg.lr, weight_decay=cfg.weight_decay)
        self.step = self.run.restore(self.state, self.optimizer)[0] if cfg.resume and self.run.latest() else 0

    def chunk(self, episode: int, t: int) -> np.ndarray:
        """Actions a_t … a_{t+H−1} (H, d_a) robot units, the last action repeated past the episode's end."""
        return self.episodes[episode].chunk(t, self.model_cfg.horizon)

    def inputs(self, rows: list[tuple[int, int]]) -> tuple[Tensor, Tensor, Tensor]:
        """(episode, frame) pairs → images (b, N, S, S, 3) uint8, normalised states (b, d_s), task ids (b,)."""
        images = torch.stack([torch.stack([self.episodes[e].images[c][t] for c in self.cameras]) for e, t in rows])
        state = torch.from_numpy(self.state_norm.normalize(np.stack([self.episodes[e].state[t] for e, t in rows])))
        tasks = self.model.task_ids([self.episodes[e].task for e, _ in rows])
        return images, state.float(), tasks

    def train_step(self, step: int) -> dict[str, float]:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, step])
        rows = [(int(e), int(t)) for e, t in self.frames[rng.choice(len(self.frames), cfg.batch_size)]]
        images, state, tasks = self.inputs(rows)
        chunks = torch.from_numpy(self.action_norm.normalize(np.stack([self.chunk(e, t) for e, t in rows]))).float()
        lr = warmup_cosine(step, cfg.steps, cfg.warmup, cfg.lr, cfg.final_lr)
        set_lr(self.optimizer, lr)
        offsets = shift_offsets(rng, len(rows), cfg.shift)  # (2, b): every camera of a frame moves alike
        shifted = torch.stack([shift_images(images[:, i], cfg.shift, offsets) for i in range(len(self.cameras))], 1)
        loss = self.model.loss(shifted, state, tasks, chunks)
        grad_norm = optimize_with_ema(
            loss, list(self.model.parameters()), self.optimizer, self.ema, self.model, cfg.grad_clip, step
        )
        return {"loss": float(loss.detach()), "grad_norm": grad_norm, "lr": lr}

    def fit(self) -> dict:
        """Train to `cfg.steps` (checkpointing on the way), evaluate open loop, write eval.json and plots."""
        cfg = self.cfg
        run_steps(self, cfg.steps, cfg.log_every, cfg.save_every, self.run.log, self.save)
        report = self.evaluate()
        atomic_write_json(self.run.path / "eval.json", report)
        self.run.plot_metrics(["loss", "grad_norm", "lr"])
        return report

    def save(self) -> None:
        self.run.save(self.step, self.state, self.optimizer, extra={"model": to_jsonable(self.model_cfg)})

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Held-out open-loop chunk MAE (robot units) of the EMA weights beside the mean-chunk and nearest-state
        baselines on the same frames (`evaluation.baselines.open_loop_errors`, as `vla train` reports)."""
        picks = heldout_frames(self.episodes, self.heldout_ids, self.cfg.eval_samples, self.cfg.seed + 1)
        if not picks:
            return {}
        truth = np.stack([self.chunk(e, t) for e, t in picks])  # (n, H, d_a)
        predicted = [self.action_norm.unnormalize(self.ema.model(*self.inputs(picks[i : i + EVAL_BATCH])).numpy())
                     for i in range(0, len(picks), EVAL_BATCH)]  # fmt: skip
        return {"mae": float(np.abs(np.concatenate(predicted) - truth).mean()),
                **open_loop_baselines(self.episodes, self.frames, picks, truth, self.model_cfg.horizon)}  # fmt: skip


def train(config: BCTrainConfig) -> dict:
    """Train the CNN behaviour-cloning baseline on LeRobot datasets; see docs/vla.md."""
    trainer = BCTrainer(config)
    report = trainer.fit()
    print(json.dumps(report, indent=2))
    print(f"→ {trainer.run.path}")
    return report


__all__ = ["BCTrainer", "train"]
