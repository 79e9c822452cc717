"""`reasonact vla bench --train`: our VLA training step vs LeRobot's pi05 training step, same dims, one run.

Ours is `training.vla_trainer.train_on_batch`, the function `reasonact vla train` runs every step: warmup +
cosine lr → `KIVLA.compute_loss` (variant `pi05`: flow-matching MSE through the backbone and the expert) →
backward → clip the global norm → AdamW → EMA update, on a fixed random batch. The peer is
`benchmarks/peer_pi05_train.py` in LeRobot's venv: `PI05Policy.forward(batch)` → backward → clip → AdamW (its
own optimizer preset) at the same dims (`peer_dim_args` + the width/depth flags below), batch and dtype
(`--dtype bfloat16`: ours autocasts with float32 weights, as our trainer's `--bf16`; LeRobot's pi05 keeps bf16
weights except SigLIP and the norms). Both random-weight, same warmup and timed steps, same threads; the sides
alternate for `rounds` rounds (ours, peer, ours, peer, …) so that load on this shared machine hits both.

Throughput is batch / the fastest timed step of each side over all rounds; `train_vs_peer_throughput_ratio` =
ours / peer (> 1: ours trains faster). `train_mfu` = FLOPs of one of our steps (torch's FlopCounterMode:
matmuls and attention of forward + backward) / our fastest step / the best n×n matmul rate measured in this
process with the same threads and dtype (before the first round and after each). Every timed step, roof and
load average is in the JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.vla_inference import (
    CHECKOUT,
    CPU,
    PRESETS,
    BenchConfig,
    _flops,
    _synchronize,
    launch_peer,
    matmul_roof_flops,
    peer_dim_args,
    random_observation,
    run_environment,
)
from reasonact.atomic import atomic_write_json
from reasonact.checks import check_range
from reasonact.devices import Placement, placement
from reasonact.training.ema import EMA
from reasonact.training.optim import implementation
from reasonact.training.vla_config import VLATrainConfig
from reasonact.training.vla_data import Batch
from reasonact.training.vla_trainer import make_optimizer, train_on_batch
from reasonact.vla.config import VLAConfig
from reasonact.vla.flow import sample_time
from reasonact.vla.model import build_model

PEER_SCRIPT = CHECKOUT / "benchmarks/peer_pi05_train.py"
TRAIN_OUT = Path("runs/bench/vla_train.json")  # where --train writes unless --out names another file
INFERENCE_OUTS = {preset.out for _, preset in PRESETS.values() if not preset.train}


def random_batch(cfg: VLAConfig, size: int, device: torch.device) -> Batch:
    """A fixed training batch: random images and prompt ids (`random_observation`), actions in [-1, 1] (b, H, d),
    every row with actions, flow noise (b, H, d) and τ (b,) from the model's time distribution."""
    g = torch.Generator().manual_seed(1)
    actions = torch.rand(size, cfg.horizon, cfg.action_dim, generator=g) * 2 - 1  # (b, H, d)
    noise = torch.randn(size, cfg.horizon, cfg.action_dim, generator=g)  # (b, H, d)
    tau = sample_time(size, cfg.time_beta, cfg.time_s, rng=np.random.default_rng(1))  # (b,)
    obs = random_observation(cfg, device, size)
    return Batch(obs, actions, torch.ones(size, dtype=torch.bool), noise, tau)


class OursTrain:
    """Our model, EMA and AdamW as `reasonact vla train` builds them; `step()` is one `train_on_batch`."""

    def __init__(self, model_cfg: VLAConfig, bench: BenchConfig, where: Placement) -> None:
        bf16 = where.dtype == torch.bfloat16  # our trainer's --bf16: autocast over float32 weights
        self.cfg = VLATrainConfig(
            model=model_cfg, batch_size=bench.batch, steps=10_000, bf16=bf16, device=bench.device, threads=bench.threads
        )
        torch.manual_seed(0)
        self.model = build_model(model_cfg).to(where.device)
        self.ema = EMA(self.model, self.cfg.ema_decay)
        self.params, self.optimizer = make_optimizer(self.model, self.cfg)
        self.batch = random_batch(model_cfg, bench.batch, CPU)  # on the CPU, as the trainer's sampler
        self.device = where.device
        self.steps = 0
        self.losses: list[float] = []

    def step(self) -> None:
        losses, _, _ = train_on_batch(
            self.model, self.model, self.batch, self.optimizer, self.ema, self.cfg, self.steps
        )
        self.losses.append(float(losses["loss"].detach()))
        self.steps += 1

    def timed(self, warmup: int, iters: int) -> list[float]:
        """`warmup` untimed steps, then the seconds of `iters` steps (each ends with a device sync)."""
        for _ in range(warmup):
            self.step()
        _synchronize(self.device)
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            self.step()
            _synchronize(self.device)
            times.append(time.perf_counter() - start)
        return times


def peer_args(bench: BenchConfig, m: VLAConfig, dtype: str) -> list[str]:
    """The peer harness's flags for our dims: `peer_dim_args` + both Gemma streams, SigLIP, batch, timing."""
    return [
        *peer_dim_args(m, bench.peer),
        "--vlm-width", str(m.lm.width), "--vlm-depth", str(m.lm.depth), "--vlm-mlp", str(m.lm.mlp_dim),
        "--kv-heads", str(m.lm.kv_heads), "--head-dim", str(m.lm.head_dim),
        "--expert-width", str(m.expert.width), "--expert-mlp", str(m.expert.mlp_dim),
        "--vision-width", str(m.vision.width), "--vision-depth", str(m.vision.depth),
        "--vision-mlp", str(m.vision.mlp_dim), "--vision-heads", str(m.vision.heads),
        "--patch-size", str(m.vision.patch_size), "--batch", str(bench.batch), "--dtype", dtype,
        "--device", str(bench.device), "--threads", str(bench.threads), "--warmup", str(bench.warmup),
        "--iters", str(bench.iters),
    ]  # fmt: skip


def check_peer_layout(m: VLAConfig) -> None:
    """The dims LeRobot's pi05 can build at all: 8 heads, the PaliGemma vocabulary (else no side-by-side)."""
    if m.lm.heads != 8:
        raise ValueError(f"model.lm.heads: LeRobot's pi05 (the --train peer) has 8 heads, received {m.lm.heads}")
    if m.lm.vocab_size != 257_152:
        raise ValueError(f"model.lm.vocab-size: the --train peer's vocabulary is 257152, received {m.lm.vocab_size}")


def run(config: BenchConfig) -> dict:
    """Alternate ours and the peer for `rounds` rounds, write the JSON report (module docstring)."""
    where = placement(config.device, config.dtype)  # a bad --device/--dtype fails before anything is built
    check_range(config.batch, "--batch", low=1)
    check_range(config.iters, "--iters", low=1)
    check_range(config.rounds, "--rounds", low=1)
    check_range(config.warmup, "--warmup", low=0)
    model_cfg = dataclasses.replace(config.model, variant="pi05")  # the peer's recipe: flow loss, no FAST CE
    if config.peer.enabled:
        check_peer_layout(model_cfg)
    out = TRAIN_OUT if config.out in INFERENCE_OUTS else config.out
    torch.set_num_threads(config.threads)
    load_start = os.getloadavg()
    roofs = [matmul_roof_flops(config.roof_size, dtype=where.dtype, device=where.device)]
    ours = OursTrain(model_cfg, config, where)
    peer_dtype = "bfloat16" if where.dtype == torch.bfloat16 else "float32"
    rounds, peer_records, peer_error = [], [], None
    for _ in range(config.rounds):
        ours_s = ours.timed(config.warmup, config.iters)
        record, peer_error = launch_peer(config.peer, PEER_SCRIPT, peer_args(config, model_cfg, peer_dtype))
        if record is not None:
            peer_records.append(record)
        roofs.append(matmul_roof_flops(config.roof_size, dtype=where.dtype, device=where.device))
        rounds.append({"ours_step_s": ours_s, "peer_step_s": record["step_s"]["all"] if record else None,
                       "roof_gflops": roofs[-1] / 1e9, "loadavg": os.getloadavg()})  # fmt: skip
        if record is None:
            break  # the peer cannot run: one round of ours is the whole measurement
    flops = _flops(ours.step)
    roof = max(roofs)  # the least contended measurement, as the fastest step is
    ours_min = min(t for r in rounds for t in r["ours_step_s"])
    peer_min = min(r["step_s"]["min"] for r in peer_records) if peer_records else None
    ours_sps = config.batch / ours_min
    peer_sps = config.batch / peer_min if peer_min else None
    report = {
        "train_vs_peer_throughput_ratio": ours_sps / peer_sps if peer_sps else None,
        "train_mfu": flops / ours_min / roof,
        "samples_per_s": {"ours": ours_sps, "peer": peer_sps},
        "step_s": {"ours": ours_min, "peer": peer_min},
        "train_step_flops": flops,
        "peer_train_step_flops": peer_records[0]["train_step_flops"] if peer_records else None,
        "achieved_gflops": flops / ours_min / 1e9,
        "matmul_roof_gflops": roof / 1e9,
        # the AdamW kernel each side's step ran: ours fused; LeRobot's is torch's default (a for-loop on the
        # CPU, the multi-tensor foreach on CUDA), so a GPU ratio compares fused with foreach
        "ours_optimizer": implementation(ours.optimizer),
        "peer_optimizer": peer_records[0]["optimizer"] if peer_records else None,
        "peer": peer_records[0]["peer"] if peer_records else "lerobot PI05Policy training step (not measured)",
        "peer_error": peer_error,
        "rounds": rounds,
        "ours_losses": ours.losses,
        "params": {
            "ours": sum(p.numel() for p in ours.model.parameters()),
            "ours_trained": sum(p.numel() for p in ours.params),
            "peer": peer_records[0]["params"] if peer_records else None,
        },
        "peer_records": peer_records,
        "dims": dataclasses.asdict(model_cfg),
        "batch": config.batch,
        "warmup": config.warmup,
        "iters": config.iters,
        **run_environment(config, where),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
    }
    atomic_write_json(out, report)
    ratio = report["train_vs_peer_throughput_ratio"]
    peer_line = (
        f"peer {peer_sps:.2f} samples/s ({peer_min:.3f} s/step, AdamW {report['peer_optimizer']}) → ours/peer "
        f"{ratio:.2f}"
        if peer_sps
        else f"peer not measured ({peer_error})"
    )
    print(
        f"train step, batch {config.batch}, {config.dtype}, {config.threads} thread(s): ours {ours_sps:.2f} samples/s "
        f"({ours_min:.3f} s/step, AdamW {report['ours_optimizer']}) | {peer_line}\n"
        f"MFU {report['train_mfu']:.1%}: {flops / 1e9:.1f} GFLOP/step at {report['achieved_gflops']:.1f} GFLOP/s of "
        f"a {roof / 1e9:.0f} GFLOP/s {config.dtype} matmul roof on {report['device']}\n→ {out}"
    )
    return report


def train_summary(path: Path, error: str | None = None) -> dict:
    """The headline of a `--train` report for `benchmarks/device.sh`'s summary: throughput ratio, MFU, samples/s
    and step times of both sides, the AdamW kernel of each, the device (its GPU named). Every key is there when
    the bench did not run or finish (`error` says why; no report at `path` without one): the values are None."""
    report = json.loads(path.read_text()) if error is None and path.exists() else {}
    if not report:
        error = error or f"no report at {path}"
    keys = ("train_vs_peer_throughput_ratio", "train_mfu", "samples_per_s", "step_s", "ours_optimizer",
            "peer_optimizer", "peer_error", "batch", "device", "dtype")  # fmt: skip
    summary = {key: report.get(key) for key in keys}
    summary["params"] = report.get("params", {}).get("ours")
    return {**summary, "error": error}
