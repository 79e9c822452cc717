"""CLI of `reasonact serve`: `reasonact serve <policy>` runs a server, `reasonact serve bench|soak` load-tests one.

reasonact serve runs/vla/small_mt10              # a trained checkpoint (EMA weights, robot-unit actions)
reasonact serve tiny --server.port 8000          # the tiny KI-VLA (random weights) on ws://127.0.0.1:8000
reasonact serve echo                             # the test policy (echoes the state)
reasonact serve bench --out runs/serve.json      # p50/p99 latency, throughput for 1, 8, 32 clients
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Annotated

import torch
import tyro

from reasonact.devices import placement
from reasonact.serving.bench import BenchConfig, run_bench
from reasonact.serving.policy import load_policy
from reasonact.serving.server import PolicyServer, ServerConfig

POLICY_HELP = (
    "what to serve: a trained checkpoint (a `reasonact vla train` run directory or its checkpoints/step_<n>), "
    "a VLA size with random weights (tiny, small, gemma270m, paper, pi05_300m), "
    "'echo' (test policy: echoes the state), or 'package.module:factory' (returns a ServedPolicy)"
)


@dataclass(frozen=True)
class ServeConfig:
    policy: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="POLICY", help=POLICY_HELP)] = "tiny"
    server: ServerConfig = field(default_factory=ServerConfig)  # address, batching and message limits
    seed: int = 0  # torch seed of the random weights
    threads: int = 1  # torch intra-op threads of the inference thread (1: tiny models on a shared CPU)
    echo_delay_s: float = 0.0  # "echo" only: seconds each batch takes (simulated model time)
    device: str = "cpu"  # VLA policies: where the model runs (cpu, cuda, cuda:N, mps)
    dtype: str = "float32"  # VLA policies: weight dtype (float32, bfloat16, float16)


PRESETS: dict[str, tuple[str, ServeConfig | BenchConfig]] = {
    "default": ("Serve a policy: `reasonact serve <size|echo|module:factory>`.", ServeConfig()),
    "bench": (
        "Latency p50/p99 and throughput for 1, 8, 32 loopback clients; batched vs one at a time.",
        BenchConfig(),
    ),
    "soak": (
        "32 concurrent clients × 60 s against one server: every reply checked.",
        BenchConfig(clients=(32,), duration_s=60.0, compare_unbatched=False),
    ),
}


def serve(config: ServeConfig | BenchConfig) -> None:
    """Run the server until interrupted (ServeConfig), or the load benchmark (BenchConfig)."""
    if isinstance(config, BenchConfig):
        run_bench(config)
        return
    where = placement(config.device, config.dtype)  # a bad --device/--dtype fails before the model is built
    torch.set_num_threads(config.threads)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    policy = load_policy(config.policy, config.seed, config.echo_delay_s, where)

    def ready(server: object) -> None:
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        host = config.server.host
        print(f"serving {policy.metadata['policy']} on ws://{host}:{port} (health: http://{host}:{port}/healthz)",
              flush=True)  # fmt: skip

    try:
        asyncio.run(PolicyServer(policy, config.server).serve(ready))
    except KeyboardInterrupt:
        print("server stopped")
