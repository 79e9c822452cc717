"""Load test of a policy server: N concurrent websocket clients, each sending requests back to back for a fixed
time, every reply checked (actions of shape (H, d), finite, with timing) → p50/p99 latency, throughput, and
counts of failed (error reply, lost connection) and malformed (schema-breaking) replies.

`reasonact serve bench` starts the server in a subprocess (`reasonact serve <policy> --server.port 0`, so the
clients and the server do not share a GIL, as with a real robot) and runs the levels 1, 8, 32 clients against
it, then against a second server with `max_batch=1` (one request per forward pass: a lock around the model) →
`batching_speedup` at the highest level. It also times `policy.infer` in-process → `overhead_ms` (what the
websocket, msgpack and queueing add to one client's p50). With `--url` it measures a server already running.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from websockets.asyncio.client import connect

from reasonact.atomic import atomic_write_json
from reasonact.serving.protocol import packb, unpackb

READY = re.compile(r" on (ws://\S+)")  # the line `reasonact serve` prints once it listens


@dataclass(frozen=True)
class BenchConfig:
    policy: str = "tiny"  # served policy (see `reasonact serve --help`); its spec shapes the requests
    clients: tuple[int, ...] = (1, 8, 32)  # concurrency levels, each against the same server
    duration_s: float = 10.0  # measured seconds per level
    warmup_s: float = 2.0  # seconds per level before measuring (connections, first batches)
    max_batch: int = 32  # the batched server's max_batch
    compare_unbatched: bool = True  # also run the highest level against a max_batch=1 server
    threads: int = 1  # torch threads of the server's inference thread (and of the in-process timing)
    direct_iters: int = 50  # in-process `policy.infer` calls timed for `overhead_ms` (0 or no 1-client level: skip)
    url: str = ""  # measure a running server at this ws:// URL instead of starting one
    start_timeout_s: float = 300.0  # how long a started server may take to listen
    out: Path = Path("runs/serve_bench/serve.json")  # JSON report (commit under benchmarks/results/ on purpose)


def _request(spec: dict[str, Any], seed: int) -> bytes:
    """One packed single-observation request matching the server's spec (random content per client)."""
    rng = np.random.default_rng(seed)
    size = spec["image_size"]
    return packb({
        "images": {c: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for c in spec["cameras"]},
        "state": rng.uniform(-1, 1, spec["state_dim"]).astype(np.float32),
        "instruction": "pick up the red cube",
    })  # fmt: skip


def _malformed(reply: object, spec: dict[str, Any]) -> bool:
    if not isinstance(reply, dict) or set(reply) != {"actions", "timing"}:
        return True
    actions = reply["actions"]
    return not (
        isinstance(actions, np.ndarray)
        and actions.shape == (spec["horizon"], spec["action_dim"])
        and actions.dtype == np.float32
        and bool(np.isfinite(actions).all())
        and isinstance(reply["timing"], dict)
    )


async def _client(url: str, seed: int, start: float, stop: float, out: dict[str, list]) -> None:
    """Send requests back to back until `stop`; record latencies of replies finished after `start`."""
    try:
        async with connect(url, compression=None, max_size=None) as ws:
            spec = unpackb(await ws.recv())["spec"]
            message = _request(spec, seed)
            while time.perf_counter() < stop:
                sent = time.perf_counter()
                await ws.send(message)
                reply = unpackb(await ws.recv())
                done = time.perf_counter()
                if done < start:
                    continue
                if isinstance(reply, dict) and "error" in reply:
                    out["failed"].append(str(reply["error"].get("message")))
                elif _malformed(reply, spec):
                    out["malformed"].append(repr(reply)[:200])
                else:
                    out["latency"].append(done - sent)
                    out["batch"].append(reply["timing"]["batch"])
    except Exception as err:  # a lost connection or undecodable reply counts as a failure, not a crash
        out["failed"].append(f"{type(err).__name__}: {err}")


async def _level(url: str, clients: int, config: BenchConfig) -> dict[str, Any]:
    out: dict[str, list] = {"latency": [], "batch": [], "failed": [], "malformed": []}
    start = time.perf_counter() + config.warmup_s
    stop = start + config.duration_s
    await asyncio.gather(*(_client(url, seed, start, stop, out) for seed in range(clients)))
    ms = np.asarray(out["latency"]) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)) if ms.size else None,
        "p99_ms": float(np.percentile(ms, 99)) if ms.size else None,
        "failed": len(out["failed"]),
        "malformed": len(out["malformed"]),
        "replies": int(ms.size),
        "throughput_rps": ms.size / config.duration_s,
        "mean_batch": float(np.mean(out["batch"])) if out["batch"] else None,
        "errors": sorted(set(out["failed"] + out["malformed"]))[:5],
    }


def measure(url: str, config: BenchConfig, levels: tuple[int, ...]) -> dict[str, dict[str, Any]]:
    """{str(clients): level report} for a server at `url`."""
    return {str(n): asyncio.run(_level(url, n, config)) for n in levels}


class _SpawnedServer:
    """`reasonact serve <policy>` in a subprocess on a free loopback port."""

    def __init__(self, config: BenchConfig, max_batch: int) -> None:
        args = [sys.executable, "-m", "reasonact.cli", "serve", config.policy, "--server.port", "0",
                "--server.max-batch", str(max_batch), "--threads", str(config.threads)]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + config.start_timeout_s
        lines = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline() if self.proc.stdout else ""
            if not line and self.proc.poll() is not None:
                break
            lines.append(line)
            if found := READY.search(line):
                self.url = found.group(1)
                threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # drain: never block its logs
                return
        self.proc.kill()
        raise RuntimeError(f"server did not start within {config.start_timeout_s} s: {''.join(lines)[-2000:]}")

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _direct_ms(config: BenchConfig) -> float:
    """p50 of in-process `policy.infer` on one observation (no server): the model's own latency."""
    from reasonact.serving.policy import load_policy
    from reasonact.serving.requests import ObsBatch, parse_request

    torch.set_num_threads(config.threads)
    policy = load_policy(config.policy)
    obs, _ = parse_request(unpackb(_request(policy.spec.to_dict(), 0)), policy.spec, 1)
    times = []
    for _ in range(config.direct_iters + 3):
        t = time.perf_counter()
        policy.infer(ObsBatch.concat([obs]))
        times.append(time.perf_counter() - t)
    return float(np.median(times[3:]) * 1e3)


def run_bench(config: BenchConfig) -> dict[str, Any]:
    """Run every level (and the unbatched comparison), print a table, write `config.out`."""
    report: dict[str, Any] = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
                              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                          "loadavg_before": os.getloadavg()}}  # fmt: skip
    top = max(config.clients)
    if config.url:
        report["clients"] = measure(config.url, config, config.clients)
    else:
        with _SpawnedServer(config, config.max_batch) as url:
            report["clients"] = measure(url, config, config.clients)
        if config.compare_unbatched:
            with _SpawnedServer(config, 1) as url:
                report["unbatched"] = measure(url, config, (top,))
            report["batching_speedup"] = report["clients"][str(top)]["throughput_rps"] / max(
                report["unbatched"][str(top)]["throughput_rps"], 1e-9
            )
        if config.direct_iters and 1 in config.clients:
            report["direct_infer_ms"] = _direct_ms(config)
            p50 = report["clients"]["1"]["p50_ms"]
            report["overhead_ms"] = None if p50 is None else p50 - report["direct_infer_ms"]
    report["machine"]["loadavg_after"] = os.getloadavg()
    _print(report)
    atomic_write_json(config.out, report)
    print(f"wrote {config.out}")
    return report


def _print(report: dict[str, Any]) -> None:
    rows = [("batched", n, r) for n, r in report["clients"].items()]
    rows += [("max_batch=1", n, r) for n, r in report.get("unbatched", {}).items()]
    print(
        f"{'server':<12} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'batch':>6} {'failed':>6} {'bad':>4}"
    )
    for name, n, r in rows:
        p50, p99 = (f"{r[k]:8.1f}" if r[k] is not None else f"{'-':>8}" for k in ("p50_ms", "p99_ms"))
        batch = f"{r['mean_batch']:6.1f}" if r["mean_batch"] is not None else f"{'-':>6}"
        print(f"{name:<12} {n:>7} {p50} {p99} {r['throughput_rps']:8.1f} {batch} {r['failed']:>6} {r['malformed']:>4}")
    for key in ("batching_speedup", "direct_infer_ms", "overhead_ms"):
        if report.get(key) is not None:
            print(f"{key}: {report[key]:.2f}")
