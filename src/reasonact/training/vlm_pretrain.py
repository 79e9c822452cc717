"""`reasonact vla pretrain`: the VLM pre-stage (SPEC §2.4–2.6, issue 17): train the VLA's backbone on captions,
VQA, boxes and subtasks of the simulated scenes before any action training, on the run layer.

    runs/<name>/  config.json  model.json  metrics.jsonl  plots/metrics.png  eval.json
                  checkpoints/step_<n>/model.safetensors   ("model.*" weights, "ema.*" EMA weights)
                  backbone.safetensors + backbone.json     (EMA backbone: `vla train --init-backbone`)

Per step s: batch s (records of the "train" split drawn by a generator seeded with (seed, s)) → the answer's
cross-entropy given image + question, L = 1/b Σ_i CE_i (`KIVLA.compute_loss` without actions; answers end
with `vqa_eval.ANSWER_END`) → backward → clip → AdamW at the warmup + cosine lr of step s → EMA update.
The step's inputs are derived from s and the rest is in the checkpoint, so a resumed run logs the same
numbers as an uninterrupted one (tested). The expert's weights are built but never trained here.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save
from torch import nn

from reasonact.atomic import atomic_write_bytes, atomic_write_json, read_json
from reasonact.checks import check_range
from reasonact.runs import Run, to_jsonable
from reasonact.training.ema import EMA, optimize_with_ema
from reasonact.training.optim import adamw
from reasonact.training.schedule import set_lr, warmup_cosine
from reasonact.training.step_loop import run_steps
from reasonact.training.vlm_pretrain_config import VLMPretrainConfig
from reasonact.vla.config import LMConfig, VisionConfig
from reasonact.vla.model import KIVLA, build_model
from reasonact.vla.vqa_eval import baselines, evaluate_vqa, load_records, text_tokenizer, vlm_observation

BACKBONE = "backbone.safetensors"
PIXEL_BATCH = 512  # images per batch when fitting the pixel statistics


class Pretrainer:
    """Builds records, model, optimizer and run directory from a `VLMPretrainConfig`; `fit()` trains."""

    def __init__(self, cfg: VLMPretrainConfig) -> None:
        check_range(cfg.steps, "steps", low=1)
        check_range(cfg.batch_size, "batch_size", low=1)
        if cfg.model.freeze_backbone:
            raise ValueError(f"model.variant: {cfg.model.variant!r} freezes the backbone; the pre-stage trains it")
        if not (cfg.train_vision or cfg.train_lm):
            raise ValueError("train_vision, train_lm: both False leaves only the projector; train at least one")
        torch.set_num_threads(cfg.threads)
        self.cfg = cfg
        self.records = load_records(cfg.records, cfg.model.vision.image_size)
        self.train_ids = np.flatnonzero(np.asarray(self.records.splits) == "train")
        if not len(self.train_ids):
            raise ValueError(f"records: no 'train' records in {[str(p) for p in cfg.records]}")
        self.text = text_tokenizer(cfg.model)
        recorded = dataclasses.replace(cfg, resume=False, overwrite=False)
        self.run = Run.open(cfg.out, cfg.name, recorded, resume=cfg.resume, overwrite=cfg.overwrite)
        atomic_write_json(self.run.path / "model.json", to_jsonable(cfg.model))
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.model, device=cfg.device)
        train_images = self.records.images[self.train_ids]  # (n, S, S, 3) uint8
        self.model.fit_pixel_statistics({cfg.model.cameras[0]: train_images.split(PIXEL_BATCH)})
        for name, p in self.model.named_parameters():
            p.requires_grad_(trainable(name, cfg))
        self.ema = EMA(self.model, cfg.ema_decay)
        self.state = nn.ModuleDict({"model": self.model, "ema": self.ema.model})  # what a checkpoint holds
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = adamw(self.params, cfg.lr, cfg.betas, cfg.weight_decay)
        self.step = self.run.restore(self.state, self.optimizer)[0] if cfg.resume else 0

    def train_step(self, step: int) -> dict[str, float]:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, step])
        batch = self.records.subset(self.train_ids[rng.choice(len(self.train_ids), cfg.batch_size)])
        obs = vlm_observation(cfg.model, self.text, batch.images, batch.questions, batch.answers).to(cfg.device)
        lr = warmup_cosine(step, cfg.steps, cfg.warmup, cfg.lr, cfg.final_lr)
        set_lr(self.optimizer, lr)
        loss = self.model.compute_loss(obs, None)["loss"]
        grad_norm = optimize_with_ema(loss, self.params, self.optimizer, self.ema, self.model, cfg.grad_clip, step)
        return {"loss": float(loss.detach()), "grad_norm": grad_norm, "lr": lr}

    def fit(self) -> dict:
        """Train to `cfg.steps` (checkpointing, evaluating on the way), export the backbone, evaluate."""
        cfg = self.cfg
        run_steps(self, cfg.steps, cfg.log_every, cfg.save_every, self.run.log, self.save,
                  evaluate=self.heldout_metrics, eval_every=cfg.eval_every)  # fmt: skip
        save_backbone(self.ema.model, self.run.path)
        report = {
            "model": evaluate_vqa(self.ema.model, self.records, self.text, max_per_split=cfg.eval_samples),
            "majority": baselines(self.records, max_per_split=cfg.eval_samples),
            "image_dependence": self.image_dependence(),
        }
        atomic_write_json(self.run.path / "eval.json", report)
        self.run.log(self.step, **self.heldout_metrics(report["model"]))
        keys = ["loss", "grad_norm", "lr", *(k for k in self.run.metrics()[-1] if k.startswith("eval_"))]
        self.run.plot_metrics(keys)
        return report

    def save(self) -> None:
        self.run.save(self.step, self.state, self.optimizer)

    def image_dependence(self) -> dict[str, float]:
        """The EMA model's CE on up to 64 non-caption training records with their own, shuffled and black
        images (`vla.image_use`): a backbone that reads its images has ce_real < ce_shuffled."""
        from reasonact.vla.image_use import losses_with_images

        train = self.records.subset(self.train_ids).where(not_kind="caption")
        rows = np.random.default_rng(self.cfg.seed + 1).permutation(len(train))[:64]
        part = train.subset(rows)
        if len(part) < 2:
            return {}
        obs = vlm_observation(self.cfg.model, self.text, part.images, part.questions, part.answers)
        return losses_with_images(self.ema.model, obs.to(self.cfg.device), seed=self.cfg.seed)

    def heldout_metrics(self, report: dict | None = None) -> dict[str, float]:
        """eval_<split>_{accuracy, caption_perplexity} of the EMA weights (a subset with `eval_samples`)."""
        report = report or evaluate_vqa(self.ema.model, self.records, self.text, max_per_split=self.cfg.eval_samples)
        return {f"eval_{s}_{k}": m[k] for s, m in report.items() for k in ("accuracy", "caption_perplexity") if k in m}


def trainable(name: str, cfg: VLMPretrainConfig) -> bool:
    """Which parameters the pre-stage trains: the projector always, vision / LM as configured, no expert."""
    part = name.split(".")[0]
    return {"projector": True, "vision": cfg.train_vision, "lm": cfg.train_lm}.get(part, False)


# ---- the exported backbone ------------------------------------------------------------------------------------


def backbone_tensors(model: KIVLA) -> dict[str, torch.Tensor]:
    """The backbone weights another VLA of the same vision / LM dims can start from: vision, projector, LM
    (only the text rows of the embedding: state and FAST rows depend on the variant and the data)."""
    out = {}
    for name, p in model.state_dict().items():
        if name.split(".")[0] in ("vision", "projector", "lm"):
            out[name] = p[: model.config.lm.vocab_size] if name == "lm.embed.weight" else p
    return {k: v.detach().cpu().contiguous() for k, v in out.items()}


def save_backbone(model: KIVLA, run_dir: Path) -> Path:
    """Write backbone.json (its vision / LM config), then backbone.safetensors, each atomically."""
    atomic_write_json(run_dir / "backbone.json", {"vision": to_jsonable(model.config.vision),
                                                  "lm": to_jsonable(model.config.lm)})  # fmt: skip
    atomic_write_bytes(run_dir / BACKBONE, save(backbone_tensors(model)))
    return run_dir / BACKBONE


def load_backbone(model: KIVLA, path: str | Path) -> None:
    """Copy a pre-stage backbone (a run directory or its backbone.safetensors) into `model`.

    Refuses a backbone whose vision or LM dims differ from the model's, naming the fields."""
    path = Path(path)
    file = path / BACKBONE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"init_backbone: {file} not found (write it with `reasonact vla pretrain`)")
    dims = read_json(file.parent / "backbone.json")
    wrong = {}
    for part, cls, ours in (("vision", VisionConfig, model.config.vision), ("lm", LMConfig, model.config.lm)):
        theirs = cls(**dims[part])
        wrong |= {f"{part}.{f.name}": (getattr(ours, f.name), getattr(theirs, f.name))
                  for f in dataclasses.fields(cls) if getattr(ours, f.name) != getattr(theirs, f.name)}  # fmt: skip
    if wrong:
        raise ValueError(f"init_backbone: {file} was trained with other dims (model, backbone): {wrong}")
    tensors = load_file(str(file))
    expected = backbone_tensors(model)
    if set(tensors) != set(expected):
        raise ValueError(
            f"init_backbone: {file} tensors differ from the model's: {sorted(set(tensors) ^ set(expected))[:5]}"
        )
    with torch.no_grad():
        params = dict(model.state_dict(keep_vars=True))
        for name, value in tensors.items():
            params[name][: value.shape[0]].copy_(value)


# ---- loading runs -------------------------------------------------------------------------------------------


def pretrain(config: VLMPretrainConfig) -> dict:
    """Train a VLA backbone on VLM records (captions, VQA, boxes, subtasks); see docs/vla.md."""
    trainer = Pretrainer(config)
    report = trainer.fit()
    print(json.dumps(report, indent=2))
    print(f"→ {trainer.run.path} (backbone: {trainer.run.path / BACKBONE})")
    return report


__all__ = ["Pretrainer", "load_backbone", "pretrain", "save_backbone"]
