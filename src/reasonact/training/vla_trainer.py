"""`reasonact vla train`: co-train a VLA variant on LeRobot datasets (+ VLM records), on the run layer.

    runs/<name>/  config.json  metrics.jsonl  plots/metrics.png  eval.json
                  model.json (the VLAConfig with the data's dims)  transforms.json  fast/ (FAST variants)
                  checkpoints/step_<n>/model.safetensors  ("model.*" weights and "ema.*" EMA weights)

Per step s: batch s (a pure function of (seed, s), `vla_data.py`) → L = 1/b Σ_i [CE_i + α·m_i·L_flow,i]
(`KIVLA.compute_loss`) → backward (DDP averages gradients under torchrun) → clip → AdamW at the
warmup + cosine lr of step s → EMA update. Everything a step depends on is in the checkpoint or derived
from s, so a run killed at any point and resumed writes the same metrics bit for bit (tested with kill -9).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from reasonact.actions import FastConfig, FastTokenizer
from reasonact.atomic import atomic_write_json
from reasonact.checkpoints import load_checkpoint
from reasonact.checks import check_range
from reasonact.data.splits import split_episodes
from reasonact.devices import placement
from reasonact.runs import Run, to_jsonable
from reasonact.training.distributed import Distributed
from reasonact.training.ema import EMA, optimize_with_ema
from reasonact.training.optim import adamw
from reasonact.training.schedule import set_lr, warmup_cosine
from reasonact.training.step_loop import run_steps
from reasonact.training.vla_config import VLATrainConfig
from reasonact.training.vla_data import (
    Batch,
    MixedSampler,
    heldout_frames,
    load_episodes,
    load_vlm,
    open_loop_baselines,
)
from reasonact.vla.config import VLAConfig
from reasonact.vla.model import KIVLA, build_model
from reasonact.vla.transforms import Normalizer, VLATransforms

FAST_FIT_CHUNKS = 20_000  # at most this many training chunks fit the FAST tokenizer
EVAL_BATCH = 32


def model_config(cfg: VLATrainConfig, cameras: list[str], state_dim: int, action_dim: int) -> VLAConfig:
    """The configured model with the data's state/action dims (its camera names are kept)."""
    if len(cfg.model.cameras) > len(cameras):
        raise ValueError(f"model.cameras: {len(cfg.model.cameras)} cameras, the datasets have {cameras}")
    return dataclasses.replace(cfg.model, state_dim=state_dim, action_dim=action_dim)


def make_optimizer(model: nn.Module, cfg: VLATrainConfig) -> tuple[list[nn.Parameter], torch.optim.AdamW]:
    """AdamW (lr, betas, weight decay of `cfg`) over the trainable parameters → (those parameters, optimizer);
    fused on CPU and CUDA (`training.optim.adamw`)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return params, adamw(params, cfg.lr, cfg.betas, cfg.weight_decay)


def train_on_batch(
    forward: nn.Module,
    model: KIVLA,
    batch: Batch,
    optimizer: torch.optim.Optimizer,
    ema: EMA,
    cfg: VLATrainConfig,
    step: int,
) -> tuple[dict[str, Tensor], float, float]:
    """Training step `step` on `batch` (on the CPU; moved to the model's device): the warmup + cosine lr →
    L = `forward(...)` (`model` itself, or its DDP wrapper; under bf16 autocast with `cfg.bf16`) → backward,
    clip, AdamW, EMA (`optimize_with_ema`) → (the loss terms, gradient norm before clipping, lr).
    `benchmarks/vla_train.py` times exactly this function."""
    lr = warmup_cosine(step, cfg.steps, cfg.warmup, cfg.lr, cfg.final_lr)
    set_lr(optimizer, lr)
    on = model.projector.weight.device
    autocast = torch.autocast(on.type, dtype=torch.bfloat16) if cfg.bf16 else contextlib.nullcontext()
    with autocast:
        losses = forward(batch.obs.to(on), batch.actions.to(on), action_mask=batch.action_mask.to(on),
                         noise=batch.noise.to(on), tau=batch.tau.to(on))  # fmt: skip
    params = [p for group in optimizer.param_groups for p in group["params"]]
    grad_norm = optimize_with_ema(losses["loss"], params, optimizer, ema, model, cfg.grad_clip, step)
    return losses, grad_norm, lr


class Trainer:
    """Builds data, model, optimizer and run directory from a `VLATrainConfig`; `fit()` trains."""

    def __init__(self, cfg: VLATrainConfig) -> None:
        check_range(cfg.vlm_fraction, "vlm_fraction", 0.0, 1.0)
        check_range(cfg.steps, "steps", low=1)
        check_range(cfg.shift, "shift", 0, cfg.model.vision.image_size)
        precision = "bfloat16" if cfg.bf16 else "float32"
        self.device = placement(cfg.device, precision, dtype_flag="--bf16").device  # before any data or model
        torch.set_num_threads(cfg.threads)
        self.cfg, self.dist = cfg, Distributed.from_env()
        self.shard = self.dist.shard(cfg.batch_size)
        episodes, stats, cameras = load_episodes(cfg.datasets, cfg.model.vision.image_size)
        state_dim, action_dim = episodes[0].state.shape[1], episodes[0].action.shape[1]
        self.model_cfg = model_config(cfg, cameras, state_dim, action_dim)
        first = cfg.image_camera or cameras[0]
        if first not in cameras:
            raise ValueError(f"image_camera: {first!r} is not a dataset camera; cameras {cameras}")
        sources = [first] + [c for c in cameras if c != first]
        source = str(cfg.datasets[0] / "meta" / "stats.json")
        self.transforms = VLATransforms(
            self.model_cfg,
            Normalizer.from_stats(stats, "observation.state", cfg.norm, source),
            Normalizer.from_stats(stats, "action", cfg.norm, source),
            tuple(zip(self.model_cfg.cameras, sources, strict=False)),
        )
        self.episodes = episodes
        self.train_ids, self.heldout_ids = split_episodes([e.env_task for e in episodes], cfg.heldout_per_task)
        vlm = load_vlm(cfg.vlm, self.model_cfg.vision.image_size)
        self.sampler = MixedSampler(
            episodes, self.train_ids, self.transforms, vlm, cfg.vlm_fraction, cfg.subtask_targets, cfg.seed,
            cfg.dataset_weights, cfg.shift,
        )  # fmt: skip
        if cfg.vlm_fraction > 0 and vlm is None:
            raise ValueError("vlm: vlm_fraction > 0 needs VLM record files (--vlm runs/vlm/.../vlm.parquet)")
        self.run = self._open_run()
        fast = self._fast_tokenizer()
        torch.manual_seed(cfg.seed)
        self.model = build_model(self.model_cfg, fast)
        # pixel statistics of the training frames; a pre-stage backbone or a resumed checkpoint brings its own
        camera_of = self.transforms.source_camera
        self.model.fit_pixel_statistics(
            {c: (episodes[e].images[camera_of(c)] for e in self.train_ids) for c in self.model_cfg.cameras}
        )
        if cfg.init_backbone is not None:
            from reasonact.training.vlm_pretrain import load_backbone

            load_backbone(self.model, cfg.init_backbone)
        self.model = self.model.to(self.device)  # built and seeded on the CPU: the same init on any device
        self.ema = EMA(self.model, cfg.ema_decay)
        self.state = nn.ModuleDict({"model": self.model, "ema": self.ema.model})  # what a checkpoint holds
        self.params, self.optimizer = make_optimizer(self.model, cfg)
        self.step = self._restore()
        self.ddp = self.dist.wrap(self.model)

    # ---- setup --------------------------------------------------------------------------------------------

    def _open_run(self) -> Run:
        cfg = self.cfg
        if self.dist.main:
            recorded = dataclasses.replace(cfg, resume=False, overwrite=False)  # how it is launched is not the run
            run = Run.open(cfg.out, cfg.name, recorded, resume=cfg.resume, overwrite=cfg.overwrite)
            atomic_write_json(run.path / "model.json", to_jsonable(self.model_cfg))
            atomic_write_json(run.path / "transforms.json", self.transforms.to_json())
        self.dist.barrier()
        return run if self.dist.main else Run(Path(cfg.out) / cfg.name)

    def _fast_tokenizer(self) -> FastTokenizer | None:
        """Fit on (normalised) training chunks once per run; every process and every resume loads that fit."""
        if not self.model_cfg.uses_fast:
            return None
        path = self.run.path / "fast"
        if self.dist.main and not (path / "fast.json").exists():
            frames = self.sampler.frames
            pick = np.random.default_rng(self.cfg.seed).choice(len(frames), min(len(frames), FAST_FIT_CHUNKS))
            chunks = self.transforms.actions_to_model(np.stack([self.sampler.chunk(*frames[i]) for i in pick]))
            FastTokenizer.fit(chunks.numpy(), FastConfig(vocab_size=self.model_cfg.fast_vocab)).save(path)
        self.dist.barrier()
        return FastTokenizer.load(path)

    def _restore(self) -> int:
        if not self.cfg.resume:
            return 0
        latest = self.run.latest()
        if latest is None:
            return 0
        if self.dist.main:
            step, _ = self.run.restore(self.state, self.optimizer)
        else:
            step = load_checkpoint(latest, self.state, self.optimizer)["step"]
        self.dist.barrier()
        return step

    # ---- training -----------------------------------------------------------------------------------------

    def train_step(self, step: int) -> dict[str, float]:
        cfg = self.cfg
        batch = self.sampler.batch(step, cfg.batch_size, self.shard)
        losses, grad_norm, lr = train_on_batch(self.ddp, self.model, batch, self.optimizer, self.ema, cfg, step)
        out = {k: float(self.dist.mean(v.detach().float())) for k, v in losses.items()}
        return {**out, "grad_norm": grad_norm, "lr": lr}

    def fit(self) -> dict:
        """Train to `cfg.steps`, checkpointing and evaluating on the way; returns the final evaluation."""
        cfg = self.cfg
        run_steps(self, cfg.steps, cfg.log_every, cfg.save_every, self.run.log, self.save,
                  evaluate=lambda: {f"eval_{k}": v for k, v in self.evaluate(baselines=False).items()},
                  eval_every=cfg.eval_every, main=self.dist.main)  # fmt: skip
        report = self.evaluate() if self.dist.main else {}
        if report:
            report["image_dependence"] = self.image_dependence()
        if self.dist.main:
            atomic_write_json(self.run.path / "eval.json", report)
            self.plot()
        self.dist.barrier()
        return report

    def save(self) -> None:
        if self.dist.main:
            self.run.save(self.step, self.state, self.optimizer, extra={"model": to_jsonable(self.model_cfg)})
        self.dist.barrier()

    def plot(self) -> None:
        keys = [k for k in ("loss", "ce", "flow", "grad_norm", "lr") if any(k in m for m in self.run.metrics())]
        self.run.plot_metrics(keys)

    # ---- open-loop evaluation -----------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, baselines: bool = True) -> dict[str, float]:
        """Held-out open-loop chunk MAE (robot units) of the EMA weights, and with `baselines` the task's mean
        training chunk and the nearest-state lookup (`evaluation.baselines.NearestState`) on the same frames."""
        picks = heldout_frames(self.episodes, self.heldout_ids, self.cfg.eval_samples, self.cfg.seed + 1)
        if not picks:
            return {}
        truth = np.stack([self.sampler.chunk(e, t) for e, t in picks])  # (n, H, d_a)
        model: KIVLA = self.ema.model
        g = torch.Generator().manual_seed(self.cfg.seed)
        predicted = []
        for i in range(0, len(picks), EVAL_BATCH):
            rows = picks[i : i + EVAL_BATCH]
            obs, _, _ = self.sampler.assemble(rows, [])
            noise = torch.randn(len(rows), self.model_cfg.horizon, self.model_cfg.action_dim, generator=g)
            predicted.append(self.transforms.actions_to_robot(model.sample_actions(obs, noise=noise)))
        out = {"mae": float(np.abs(np.concatenate(predicted) - truth).mean())}
        if baselines:
            out |= open_loop_baselines(self.episodes, self.sampler.frames, picks, truth, self.transforms.config.horizon)
        return out

    def image_dependence(self) -> dict[str, float]:
        """The EMA model's loss on held-out frames with their own, shuffled and black images (`vla.image_use`):
        a policy that reads its camera has loss_real < loss_shuffled."""
        from reasonact.vla.image_use import losses_with_images

        picks = heldout_frames(self.episodes, self.heldout_ids, EVAL_BATCH, self.cfg.seed + 2)
        if len(picks) < 2:
            return {}
        obs, actions, _ = self.sampler.assemble(picks, [])  # on the CPU; `compute_loss` wants the model's device
        return losses_with_images(self.ema.model, obs.to(self.device), actions.to(self.device), seed=self.cfg.seed)


def train(config: VLATrainConfig) -> dict:
    """Train a VLA (KI / π0 / π0.5 / π0-FAST / frozen) on LeRobot datasets (+ VLM records); see docs/vla.md."""
    trainer = Trainer(config)
    try:
        report = trainer.fit()
        if trainer.dist.main:
            print(json.dumps(report, indent=2))
            print(f"→ {trainer.run.path}")
        return report
    finally:
        trainer.dist.close()


__all__ = ["Trainer", "make_optimizer", "train", "train_on_batch"]
