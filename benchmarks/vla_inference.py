"""`reasonact vla bench`: KI-VLA inference latency, side by side in one run at the same dims.

(a) flow-matching inference (prefix once + N Euler steps of the expert over its cached K/V) vs π0-FAST
    autoregressive decoding of the same chunk with KV cache, on the same backbone → `flow_vs_fast_ar_speedup`;
(b) cached prefix vs recomputing the prefix at every Euler step → `prefix_cache_speedup`;
(c) our `sample_actions` vs LeRobot's pi05 `predict_action_chunk` (random weights, its own venv, run as a
    subprocess through ../shared/peers/lerobot_pi05/bench_pi05_device.py) → `vs_peer_latency_ratio` (ours / peer);
and MFU: model FLOPs (torch's FlopCounterMode) / latency / a matmul roof measured in the same run.
The headline ratios compare `--dtype` with `--dtype`: bfloat16 in the `default` preset, what openpi serves in
(this CPU has AMX-BF16), so `vs_peer_latency_ratio_bf16` is the headline ratio. `--second-dtype` times our
sample_actions and the peer once more in another dtype (float32, the peer's own default, in `default`; ours
before and after the peer again) with our MFU against that dtype's matmul roof (`second_arm`).
`--device` (cpu, cuda, cuda:N, mps) and `--dtype`
(float32, bfloat16, float16) place our headline arms, validated before any model is built; on a GPU each
timed call ends with a device synchronisation. The peer runs on the same `--device` in `--dtype` (float32 or
bfloat16); on a GPU machine its packages come from `--peer.site` (a directory put first on its PYTHONPATH).

Latencies are the minimum over `iters` timed calls after `warmup` (the machine is shared: `min` is the
least contended figure; all values and the load averages are recorded). Our headline sample_actions is
timed before and after the peer (A-B-A, the model rebuilt with the same seed) and the ratio to the peer
uses the better of the two, so load that drifts during the run does not favour either side.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from reasonact.actions import FastConfig, FastTokenizer
from reasonact.atomic import atomic_write_json
from reasonact.data.trajectories import chunk_trajectories, smooth_trajectories
from reasonact.devices import Placement, placement
from reasonact.vla.config import PAPER, PI05_300M, TINY, ExpertConfig, VisionConfig, VLAConfig
from reasonact.vla.contract import Observation
from reasonact.vla.model import KIVLA, build_model

CHECKOUT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


@dataclass(frozen=True)
class PeerConfig:
    """The LeRobot pi05 peer (see ../shared/peers/lerobot_pi05/README.md)."""

    enabled: bool = True  # run the peer; False records peer_error "disabled"
    python: Path = CHECKOUT / ".peer-venv/lerobot/bin/python"  # made by `bash $P/setup.sh .peer-venv/lerobot`
    script: Path = CHECKOUT.parent / "shared/peers/lerobot_pi05/bench_pi05_device.py"  # the harness (--device)
    site: Path | None = None  # put first on the peer's PYTHONPATH: its own lerobot + transformers 5.5 (GPU machine)
    compile_mode: str = "none"  # LeRobot's own compile_model with this torch.compile mode ("none": eager)
    variant: str = "gemma_300m"  # --paligemma-variant and --expert-variant
    action_dim: int = 7  # robot action dim (pi05 pads it to our action_dim=32 inside)
    iters: int = 3  # timed predict_action_chunk calls
    timeout_s: int = 2400  # builds ~2 B random weights first (65-110 s); a loaded machine is 5-15× slower


@dataclass(frozen=True)
class BenchConfig:
    model: VLAConfig = PI05_300M  # dims of our model (pi05_300m: the peer's gemma_300m/gemma_300m)
    fast_dim: int = 7  # FAST tokenizes the real action dims (pi05 pads 7 → 32 for the expert)
    fast_trajectories: int = 200  # smooth synthetic trajectories the FAST tokenizer is fitted on
    iters: int = 3  # timed calls per measurement
    baseline_iters: int = 1  # timed calls of the slow baselines (prefix recomputed per step, FAST AR)
    warmup: int = 1  # untimed calls first
    threads: int = 2  # torch.set_num_threads, same for the peer
    roof_size: int = 2048  # n of the n×n matmul that defines the roof (in the dtype of the arm it divides)
    device: str = "cpu"  # where our model runs: cpu, cuda, cuda:N or mps
    dtype: str = "float32"  # our weights in the headline arms (float32, bfloat16, float16); the peer's too
    second_dtype: str | None = None  # also time our sample_actions and the peer in this dtype (not the headline)
    graph_capture: bool = False  # also time both arms graph-captured (expert / FAST decode step, "reduce-overhead")
    train: bool = False  # time training steps (ours vs LeRobot's pi05) instead: benchmarks/vla_train.py
    batch: int = 8  # --train: samples per training step, both sides
    rounds: int = 2  # --train: ours then the peer, this many times (load changes hit both sides)
    peer: PeerConfig = field(default_factory=PeerConfig)
    out: Path = Path("benchmarks/results/vla_inference.json")


# The peer's layout at dims a CPU trains in seconds to minutes: 8 heads (LeRobot's pi05 fixes 8), one KV head,
# the 257152-token PaliGemma vocabulary, 1 camera, H=50, 32 padded action dims, state as prompt text (pi05).
PI05_TRAIN_CPU = dataclasses.replace(
    PI05_300M,
    vision=VisionConfig(image_size=112, patch_size=14, width=256, depth=4, mlp_dim=1024, heads=4),
    lm=dataclasses.replace(PI05_300M.lm, width=512, depth=4, mlp_dim=2048, head_dim=64),
    expert=ExpertConfig(width=256, mlp_dim=1024),
    max_prompt_tokens=48,
    variant="pi05",
)
PI05_TRAIN_TINY = dataclasses.replace(
    PI05_TRAIN_CPU,
    vision=VisionConfig(image_size=28, patch_size=14, width=32, depth=1, mlp_dim=64, heads=2),
    lm=dataclasses.replace(PI05_300M.lm, width=64, depth=2, mlp_dim=128, head_dim=8),
    expert=ExpertConfig(width=32, mlp_dim=64),
    horizon=10,
    max_prompt_tokens=8,
    fast_vocab=256,
)

PRESETS: dict[str, tuple[str, BenchConfig]] = {
    "default": (
        "pi05_300m dims (1 cam 224 px, 200 tokens, H=50, 10 steps) + LeRobot pi05 peer, both bf16 (headline) "
        "and both fp32 (second arm).",
        BenchConfig(dtype="bfloat16", second_dtype="float32"),
    ),
    "paper": (
        "Paper dims (SigLIP So400m, 3 cameras, Gemma 2B backbone + 300M expert, fp32; ~12 GB, ~10 min), no peer: "
        "flow vs π0-FAST AR at the backbone the paper's claim is about.",
        BenchConfig(
            model=PAPER,
            iters=1,
            peer=PeerConfig(enabled=False),
            out=Path("benchmarks/results/vla_inference_paper.json"),
        ),
    ),
    "train": (
        "--train at CPU dims (pi05 layout: 8 heads, PaliGemma vocabulary; widths 256-512, 4 layers), fp32, 1 thread:"
        " our training step vs LeRobot pi05's, 3 rounds, ~4 min.",
        BenchConfig(
            model=PI05_TRAIN_CPU,
            train=True,
            iters=4,
            warmup=2,
            threads=1,
            batch=4,
            rounds=3,
            out=Path("runs/bench/vla_train.json"),
        ),
    ),
    "train_tiny": (
        "--train at tiny dims (pi05 layout), seconds for ours; ~1 min with the peer.",
        BenchConfig(
            model=PI05_TRAIN_TINY,
            train=True,
            iters=2,
            warmup=1,
            threads=1,
            batch=2,
            roof_size=512,
            out=Path("runs/bench/vla_train_tiny.json"),
        ),
    ),
    "tiny": (
        "Seconds-long smoke at tiny dims, no peer.",
        BenchConfig(
            model=TINY,
            fast_trajectories=40,
            iters=2,
            roof_size=512,
            peer=PeerConfig(enabled=False),
            out=Path("benchmarks/results/vla_inference_tiny.json"),
        ),
    ),
}


def _synchronize(device: torch.device) -> None:
    """Wait for the device's queued kernels (a timed call ends when its result exists, not when it is queued)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _timed(fn, iters: int, warmup: int, device: torch.device = CPU) -> dict:
    for _ in range(warmup):
        fn()
    _synchronize(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return {"min_s": min(times), "median_s": float(np.median(times)), "all_s": [round(t, 4) for t in times]}


def matmul_roof_flops(
    n: int, repeats: int = 5, dtype: torch.dtype = torch.float32, device: torch.device = CPU
) -> float:
    """Best n×n matmul throughput (FLOP/s) in `dtype` on `device` (CPU: with the current thread count)."""
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    a @ b
    best = min(_timed(lambda: a @ b, repeats, 1, device)["all_s"])
    return 2 * n**3 / best


def _fit_fast(cfg: BenchConfig, horizon: int) -> tuple[FastTokenizer, np.ndarray]:
    """FAST fitted on chunks (n, H, action_dim) of `fast_dim` real dims zero-padded to the model's action_dim
    (as pi05 pads 7 → 32: the padding dims quantise to zeros, so the tokens are those of the real dims)."""
    trajectories = smooth_trajectories(cfg.fast_trajectories, 3 * horizon, cfg.fast_dim, seed=0)
    chunks = chunk_trajectories(trajectories, horizon, horizon // 5)  # (n, H, fast_dim)
    chunks = np.pad(chunks, ((0, 0), (0, 0), (0, cfg.model.action_dim - cfg.fast_dim)))  # (n, H, action_dim)
    return FastTokenizer.fit(chunks, FastConfig(vocab_size=cfg.model.fast_vocab)), chunks


def random_observation(cfg: VLAConfig, device: torch.device, batch: int = 1) -> Observation:
    """`batch` random uint8 images per camera and random prompt token ids, every token valid (as the peer's)."""
    g = torch.Generator().manual_seed(0)
    s, b = cfg.vision.image_size, batch
    images = {c: torch.randint(0, 256, (b, s, s, 3), dtype=torch.uint8, generator=g) for c in cfg.cameras}
    tokens = torch.randint(0, cfg.lm.vocab_size, (b, cfg.max_prompt_tokens), generator=g)
    mask = torch.ones(b, cfg.max_prompt_tokens, dtype=torch.bool)
    images = {c: image.to(device) for c, image in images.items()}
    return Observation(images, torch.zeros(b, cfg.state_dim, device=device), tokens.to(device), mask.to(device))


def _release_memory() -> float:
    """Free what Python and glibc still hold after a model is deleted (the peer needs ~9 GiB) → RSS in GiB."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def _flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def _flow_latencies(model: KIVLA, obs: Observation, cfg: BenchConfig) -> dict:
    """The headline arm alone: sample_actions (cached prefix) and the prefix encoding."""
    device = model.projector.weight.device
    with torch.no_grad():
        return {
            "flow_cached": _timed(lambda: model.sample_actions(obs), cfg.iters, cfg.warmup, device),
            "prefix_only": _timed(lambda: model.encode_prefix(obs), cfg.iters, 0, device),
            "loadavg_end": os.getloadavg(),
        }


def _latencies(model: KIVLA, obs: Observation, fast_tokens: int, cfg: BenchConfig) -> dict:
    """Every arm of (a) and (b), back to back, and the FLOPs of one sample_actions."""
    device = model.projector.weight.device
    with torch.no_grad():
        return {
            **_flow_latencies(model, obs, cfg),
            "flow_recompute_prefix": _timed(
                lambda: model.sample_actions(obs, cache_prefix=False), cfg.baseline_iters, 0, device
            ),
            "fast_ar": _timed(lambda: model.sample_fast(obs, fast_tokens), cfg.baseline_iters, 0, device),
            "sample_actions_flops": _flops(lambda: model.sample_actions(obs)),
            "params": sum(p.numel() for p in model.parameters()),
            "loadavg_end": os.getloadavg(),
        }


def measure_ours(cfg: BenchConfig, where: Placement) -> dict:
    """(a), (b) and MFU for our model on `where` (freed before the peer runs)."""
    model_cfg = dataclasses.replace(cfg.model, variant="ki")  # expert + FAST head on one backbone
    fast, chunks = _fit_fast(cfg, model_cfg.horizon)
    fast_tokens = round(np.mean([len(ids) for ids in fast.encode(chunks)])) + 1  # + EOA
    torch.manual_seed(0)
    build_start = time.perf_counter()
    model = build_model(model_cfg, fast, where.device).eval().to(where.dtype)
    build_s = time.perf_counter() - build_start
    obs = random_observation(model_cfg, where.device)
    result = _latencies(model, obs, fast_tokens, cfg)
    captured = _captured_latencies(model, obs, fast_tokens, cfg) if cfg.graph_capture else None
    second = _flow_latencies(model.to(_second(cfg, where).dtype), obs, cfg) if cfg.second_dtype else None
    del model
    return {
        "dims": dataclasses.asdict(model_cfg),
        "build_s": build_s,
        "fast_tokens_per_chunk": fast_tokens,
        **result,
        "second_arm": second,
        "graph_capture": captured,
        "rss_gb_after_free": _release_memory(),
    }


def _captured_latencies(model: KIVLA, obs: Observation, fast_tokens: int, cfg: BenchConfig) -> dict:
    """Both arms graph-captured: sample_actions with `compile_expert(mode="reduce-overhead")` and π0-FAST AR
    decoding with `compile_fast_decode(mode="reduce-overhead")` (CUDA graphs of the Euler step and of the decode
    step on a GPU, inductor kernels on a CPU), each after 3 warmup calls that compile and record; an arm that
    fails to compile (no C++ compiler or Triton) is {"error": …}, the eager arms standing. The model is eager
    again afterwards."""
    arms: dict = {}
    warm = max(cfg.warmup, 3)
    try:
        model.compile_expert(mode="reduce-overhead")
        arms["flow"] = _flow_latencies(model, obs, dataclasses.replace(cfg, warmup=warm))
    except Exception as err:  # any compiler failure: report it, keep the eager numbers
        arms["flow"] = {"error": f"{type(err).__name__}: {err}"[:800]}
    finally:
        model.compiled_velocity = None
    try:
        model.compile_fast_decode(mode="reduce-overhead")
        with torch.no_grad():
            device = model.projector.weight.device
            arms["fast_ar"] = _timed(lambda: model.sample_fast(obs, fast_tokens), cfg.baseline_iters, warm, device)
    except Exception as err:
        arms["fast_ar"] = {"error": f"{type(err).__name__}: {err}"[:800]}
    finally:
        model.compiled_fast_step = None
    return arms


def _min_ms(timed: dict | None) -> float | None:
    """The minimum of a `_timed` record in ms (None: not measured, or the arm did not compile)."""
    return 1e3 * timed["min_s"] if timed and "min_s" in timed else None


def remeasure_flow(cfg: BenchConfig, where: Placement) -> dict:
    """After the peer: rebuild our model (same seed) on `where` and time sample_actions and the prefix again."""
    model_cfg = dataclasses.replace(cfg.model, variant="ki")
    torch.manual_seed(0)
    model = build_model(model_cfg, device=where.device).eval().to(where.dtype)
    result = _flow_latencies(model, random_observation(model_cfg, where.device), cfg)
    _release_memory()
    return result


def measure_peer(
    cfg: BenchConfig, dtype: str = "float32", device: torch.device = CPU
) -> tuple[dict | None, str | None]:
    """Run the LeRobot pi05 harness in its venv with `dtype` weights on `device` (its policy built there, each
    timed call synchronised) → (its JSON record, None) or (None, why not)."""
    peer = cfg.peer
    args = [
        "--paligemma-variant", peer.variant, "--expert-variant", peer.variant, *peer_dim_args(cfg.model, peer),
        "--steps", str(cfg.model.flow_steps), "--iters", str(peer.iters), "--warmup", str(cfg.warmup),
        "--threads", str(cfg.threads), "--time-prefix", "--dtype", dtype, "--device", str(device),
        "--compile-mode", peer.compile_mode,
    ]  # fmt: skip
    return launch_peer(peer, peer.script, args)


def peer_dim_args(m: VLAConfig, peer: PeerConfig) -> list[str]:
    """Our input/output dims as the flags every peer harness takes: cameras, image side, chunk H, the robot's
    and the padded action dims, state dim, prompt length."""
    return [
        "--n-cameras", str(len(m.cameras)), "--image-size", str(m.vision.image_size), "--chunk", str(m.horizon),
        "--action-dim", str(peer.action_dim), "--max-action-dim", str(m.action_dim), "--state-dim", str(m.state_dim),
        "--prompt-tokens", str(m.max_prompt_tokens),
    ]  # fmt: skip


def launch_peer(peer: PeerConfig, script: Path, args: list[str]) -> tuple[dict | None, str | None]:
    """Run `script args` with the peer venv's python (`peer.site` first on its PYTHONPATH) → (the JSON line it
    prints last, None) or (None, why not: disabled, no venv, timeout, non-zero exit with its stderr tail)."""
    if not peer.enabled:
        return None, "disabled in this preset"
    if not peer.python.exists():
        setup = f"bash {peer.script.parent}/setup.sh .peer-venv/lerobot"
        return None, f"peer venv missing: {peer.python}; create it with `{setup}`"
    env = dict(os.environ)
    if peer.site is not None:  # the peer's packages before the machine's (it needs transformers >= 5.4, < 5.6)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(peer.site), env.get("PYTHONPATH")]))
    command = [str(peer.python), str(script), *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=peer.timeout_s, check=False, env=env)
    except subprocess.TimeoutExpired:
        return None, f"peer timed out after {peer.timeout_s} s"
    if done.returncode != 0:
        return None, f"peer exited {done.returncode}: {done.stderr.strip()[-800:]}"
    return json.loads(done.stdout.strip().splitlines()[-1]), None


def _peer_name(python: Path) -> str:
    try:
        out = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('lerobot'))"],
                             capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        return f"lerobot {out.stdout.strip()} PI05Policy.predict_action_chunk"
    except (OSError, subprocess.SubprocessError):
        return "lerobot PI05Policy.predict_action_chunk (version unknown)"


def _device_name(device: torch.device) -> str:
    """ "cpu", or the device with its GPU named ("cuda:0 (NVIDIA H200)")."""
    return f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


def run_environment(cfg: BenchConfig, where: Placement) -> dict:
    """What a report's numbers depend on besides the dims: threads, device, dtype, torch, CPU."""
    return {
        "threads": cfg.threads,
        "device": _device_name(where.device),
        "dtype": cfg.dtype,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }


def _second(cfg: BenchConfig, where: Placement) -> Placement:
    """Where the `--second-dtype` arm runs: the headline's device, that dtype (validated like `--dtype`)."""
    return placement(str(where.device), cfg.second_dtype)


def _peer_dtype(dtype: torch.dtype) -> str:
    """The peer harness's `--dtype` for ours (it runs float32 or bfloat16)."""
    return "bfloat16" if dtype == torch.bfloat16 else "float32"


def run(config: BenchConfig) -> dict:
    """Measure, print the side-by-side ratios, write JSON to `config.out` (`--train` runs `vla_train.run`
    instead, dispatched by `benchmarks/vla_bench.py`)."""
    where = placement(config.device, config.dtype)  # a bad --device/--dtype fails before anything is built
    other = _second(config, where) if config.second_dtype else None
    torch.set_num_threads(config.threads)
    load_start = os.getloadavg()
    roof = matmul_roof_flops(config.roof_size, dtype=where.dtype, device=where.device)
    roof_other = matmul_roof_flops(config.roof_size, dtype=other.dtype, device=where.device) if other else None
    ours = measure_ours(config, where)
    load_ours = os.getloadavg()
    peer_record, peer_error = measure_peer(config, _peer_dtype(where.dtype), where.device)
    again = remeasure_flow(config, where) if peer_record else None
    peer_other, peer_other_error = (
        measure_peer(config, _peer_dtype(other.dtype), where.device) if other else (None, None)
    )
    again_other = remeasure_flow(config, other) if peer_other else None  # A-B-A in the second dtype too
    flow_s = ours["flow_cached"]["min_s"]  # (a), (b): beside the baselines it is compared with
    expert_s = flow_s - ours["prefix_only"]["min_s"]
    peer_s = peer_record["latency_s"]["min"] if peer_record else None
    flow_ab = min(flow_s, again["flow_cached"]["min_s"]) if again else flow_s  # (c): before/after the peer
    second = ours["second_arm"]
    captured = ours["graph_capture"]
    second_s = second["flow_cached"]["min_s"] if second else None
    flow_captured_ms = _min_ms((captured or {}).get("flow", {}).get("flow_cached"))
    fast_captured_ms = _min_ms((captured or {}).get("fast_ar"))
    second_ab = min(second_s, again_other["flow_cached"]["min_s"]) if again_other else second_s
    ratio_other = second_ab / peer_other["latency_s"]["min"] if peer_other else None  # both in the second dtype
    report = {
        "flow_vs_fast_ar_speedup": ours["fast_ar"]["min_s"] / flow_s,
        "flow_vs_fast_ar_speedup_after_prefix": (ours["fast_ar"]["min_s"] - ours["prefix_only"]["min_s"]) / expert_s,
        "prefix_cache_speedup": ours["flow_recompute_prefix"]["min_s"] / flow_s,
        "peer": _peer_name(config.peer.python) if peer_record else "lerobot PI05Policy (not measured)",
        "vs_peer_latency_ratio": flow_ab / peer_s if peer_s else None,
        "vs_peer_prefix_ratio": (
            min(ours["prefix_only"]["min_s"], again["prefix_only"]["min_s"]) / peer_record["prefix_latency_s"]["min"]
            if again and "prefix_latency_s" in peer_record
            else None
        ),
        "mfu": ours["sample_actions_flops"] / flow_s / roof,
        "graph_captured_ms": flow_captured_ms,  # sample_actions, expert step captured
        "graph_captured_fast_ms": fast_captured_ms,  # π0-FAST AR decoding, decode step captured
        "flow_vs_fast_ar_speedup_captured": (
            fast_captured_ms / flow_captured_ms if flow_captured_ms and fast_captured_ms else None
        ),  # both arms graph-captured
        "vs_peer_latency_ratio_bf16": (  # both in bf16: the headline under --dtype bfloat16, or the second arm
            flow_ab / peer_s
            if peer_s and where.dtype == torch.bfloat16
            else ratio_other
            if other and other.dtype == torch.bfloat16
            else None
        ),
        "matmul_roof_gflops": roof / 1e9,
        "latency_s": {
            "ours_flow_cached": flow_s,
            "ours_flow_cached_after_peer": again["flow_cached"]["min_s"] if again else None,
            "ours_prefix": ours["prefix_only"]["min_s"],
            "ours_expert_steps": expert_s,
            "ours_flow_recompute_prefix": ours["flow_recompute_prefix"]["min_s"],
            "ours_fast_ar": ours["fast_ar"]["min_s"],
            "ours_second_dtype_flow_cached": second_s,
            "peer_predict_action_chunk": peer_s,
            "peer_prefix": peer_record.get("prefix_latency_s", {}).get("min") if peer_record else None,
        },
        "second_arm": None
        if second is None
        else {
            "dtype": config.second_dtype,
            "vs_peer_latency_ratio": ratio_other,  # ours / peer, both in the second dtype
            "ours_after_peer": again_other,
            "peer_record": peer_other,
            "peer_latency_s": peer_other["latency_s"]["min"] if peer_other else None,
            "peer_prefix_s": peer_other.get("prefix_latency_s", {}).get("min") if peer_other else None,
            "ours_prefix_s": second["prefix_only"]["min_s"],
            "peer_error": peer_other_error,
            "headline_speedup": second_s / flow_s,  # > 1: the headline dtype is faster
            "mfu": ours["sample_actions_flops"] / second_s / roof_other,
            "matmul_roof_gflops": roof_other / 1e9,
        },
        "ours": ours,
        "ours_after_peer": again,
        "peer_record": peer_record,
        **run_environment(config, where),
        "loadavg_start": load_start,
        "loadavg_after_ours": load_ours,
        "loadavg_end": os.getloadavg(),
    }
    if peer_error:
        report["peer_error"] = peer_error
    atomic_write_json(config.out, report)
    ratio, arm = report["vs_peer_latency_ratio"], report["second_arm"]
    lines = [
        f"flow (cached prefix) {flow_s:.3f} s | π0-FAST AR ({ours['fast_tokens_per_chunk']} tokens) "
        f"{ours['fast_ar']['min_s']:.3f} s → {report['flow_vs_fast_ar_speedup']:.2f}× "
        f"(after the shared prefix {report['flow_vs_fast_ar_speedup_after_prefix']:.2f}×)",
        f"prefix recomputed every step {ours['flow_recompute_prefix']['min_s']:.3f} s → "
        f"cache {report['prefix_cache_speedup']:.2f}×",
        f"peer: {report['peer']}: "
        + (
            f"{peer_s:.3f} s; ours {flow_ab:.3f} s → ours/peer {ratio:.2f}" if ratio else f"not measured ({peer_error})"
        ),
        f"MFU {report['mfu']:.1%} of a {roof / 1e9:.0f} GFLOP/s {config.dtype} matmul roof on {report['device']}",
    ]
    if arm:
        name, arm_roof = arm["dtype"], arm["matmul_roof_gflops"]
        lines.append(f"{name} weights: {second_ab:.3f} s ({arm['mfu']:.1%} of a {arm_roof:.0f} GFLOP/s matmul roof)")
        if ratio_other:
            lines.append(f"peer {name} {arm['peer_latency_s']:.3f} s → ours/peer (both {name}) {ratio_other:.2f}")
    print("\n".join(lines) + f"\n→ {config.out}")
    return report


def device_summary(
    reports: dict[str, Path], out: Path, tiny: bool, peer_note: str | None = None, train: dict | None = None
) -> dict:
    """The reports of `vla bench` per dims name ("paper", "pi05_300m") → one JSON of the headline numbers
    (`benchmarks/device.sh`): device, dtype, and per dims sample_actions_ms (eager), graph_captured_ms and
    graph_captured_fast_ms, flow_vs_fast_ar_speedup (both arms graph-captured on a GPU, both eager elsewhere),
    vs_peer_latency_ratio (None where the peer did not run: `peer_error`, and `peer_note` says why); `train`:
    the training bench's headline (`vla_train.train_summary`) under "train"."""
    loaded = {name: json.loads(path.read_text()) for name, path in reports.items()}
    first = next(iter(loaded.values()))
    summary: dict = {
        "device": first["device"], "dtype": first["dtype"], "torch": first["torch"], "tiny": tiny,
        "peer_note": peer_note,
    }  # fmt: skip
    for name, report in loaded.items():
        eager_speedup, captured_speedup = report["flow_vs_fast_ar_speedup"], report["flow_vs_fast_ar_speedup_captured"]
        headline_captured = first["device"].startswith("cuda") and captured_speedup is not None
        summary[name] = {
            "sample_actions_ms": 1e3 * report["latency_s"]["ours_flow_cached"],
            "fast_ar_ms": 1e3 * report["latency_s"]["ours_fast_ar"],
            "graph_captured_ms": report["graph_captured_ms"],  # the expert step compiled, "reduce-overhead"
            "graph_captured_fast_ms": report["graph_captured_fast_ms"],  # the FAST decode step compiled, alike
            # on a GPU the headline compares both arms graph-captured (issue 15's target), else both eager
            "flow_vs_fast_ar_speedup": captured_speedup if headline_captured else eager_speedup,
            "flow_vs_fast_ar_arms": "graph-captured" if headline_captured else "eager",
            "flow_vs_fast_ar_speedup_eager": eager_speedup,
            "flow_vs_fast_ar_speedup_captured": captured_speedup,
            "prefix_cache_speedup": report["prefix_cache_speedup"],
            "vs_peer_latency_ratio": report["vs_peer_latency_ratio"],
            "peer_error": report.get("peer_error"),
            "fast_tokens_per_chunk": report["ours"]["fast_tokens_per_chunk"],
            "mfu": report["mfu"],
        }
    if train is not None:
        summary["train"] = train
    atomic_write_json(out, summary)
    return summary
