"""`reasonact search bench`: tokens/s of tree expansion, our HF backend vs per-path generate vs vLLM.

The workload is what beam search and MCTS do at every level: `nodes` tree nodes (prompts sharing a
long few-shot header, each a question plus some steps) are each expanded into `n` sampled siblings
of exactly `max_new_tokens` tokens (the step boundary is disabled so every engine generates the
same number of tokens). Measured side by side in one run, on the same weights (Gemma 3 270M):

* ours: `HFBackend.generate_texts` — prefill once per node from the KV store (header cached),
  siblings share that KV, all nodes × n rows decoded in one batch;
* ours without the KV store (siblings still share their node's prefill): the store's share;
* per-path: one `model.generate` per (node, sibling), same sampling uniforms → same tokens
  (`outputs_identical_fraction` checks it);
* vLLM (CPU build, `.venv-vllm`, prefix caching on), run as a subprocess on the same prompts;
* oracle PRM scoring throughput (states and steps per second).

Keys: `prefix_reuse_speedup` = ours / per-path tokens/s; `vs_vllm_ratio` = ours / vLLM tokens/s
(null with `vllm_error` when vLLM could not run).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from reasonact.atomic import atomic_write_json
from reasonact.devices import Placement, placement
from reasonact.reasoning.backends.hf import HFBackend
from reasonact.reasoning.mdp import State, few_shot_header
from reasonact.reasoning.scorers import OracleScorer
from reasonact.reasoning.tasks import make_task
from reasonact.runs import to_jsonable


@dataclass(frozen=True)
class SearchBenchConfig:
    model: Literal["gemma", "random-tiny"] = "gemma"  # Gemma 3 270M, or a random tiny Llama (smoke runs)
    family: str = "arithmetic"  # task family of the prompts
    shots: int = 4  # few-shot examples in the shared header (the long common prefix)
    nodes: int = 4  # tree nodes expanded per round (distinct prompts)
    n: int = 8  # sampled siblings per node
    max_new_tokens: int = 24  # tokens per sibling
    rounds: int = 2  # measured rounds (new nodes each round) for our backend and vLLM
    per_path_nodes: int = 2  # nodes of round 0 also run per path (slow: one generate per sibling)
    device: str = "cpu"  # where our model runs (ours and per-path alike): cpu, cuda, cuda:N or mps
    dtype: str = "float32"  # our model's dtype (ours and per-path alike): float32, bfloat16 or float16
    threads: int | None = 1  # torch threads for ours and per-path (1 is fastest on this busy 2-core machine)
    vllm: bool = True  # also measure vLLM (needs `vllm_python`)
    vllm_threads_bind: str = "0-1"  # VLLM_CPU_OMP_THREADS_BIND: the cores vLLM's OpenMP threads use
    vllm_python: Path = Path(".venv-vllm/bin/python")  # interpreter of the venv vLLM is installed in
    vllm_timeout_s: int = 900  # give up on the vLLM subprocess after this long
    prm_states: int = 256  # states scored for the PRM throughput figure
    seed: int = 0  # sampling seed (same for every engine)
    out: Path = Path("benchmarks/results/search.json")  # where the JSON goes


PRESETS: dict[str, tuple[str, SearchBenchConfig]] = {
    "default": ("Gemma 3 270M tree expansion, ours vs per-path generate vs vLLM (minutes).", SearchBenchConfig()),
    "long-prefix": (
        "As default with a 13-shot header (424 shared prefix tokens; prompt + step stay inside Gemma 3's 512 window).",
        SearchBenchConfig(shots=13, out=Path("benchmarks/results/search_long_prefix.json")),
    ),
    "tiny": (
        "Seconds-long smoke: a random tiny Llama, no vLLM.",
        SearchBenchConfig(
            model="random-tiny",
            shots=2,
            nodes=2,
            n=4,
            max_new_tokens=8,
            rounds=1,
            per_path_nodes=1,
            vllm=False,
            prm_states=32,
            out=Path("benchmarks/results/search_tiny.json"),
        ),
    ),
}


def _backend(config: SearchBenchConfig, header: str, where: Placement) -> HFBackend:
    if config.model == "gemma":
        from reasonact.weights import gemma3_270m_dir

        return HFBackend.from_pretrained(
            gemma3_270m_dir(), header=header, dtype=where.dtype, device=where.device, threads=config.threads
        )
    from reasonact.reasoning.step_lm import build_step_lm, char_tokenizer

    torch.manual_seed(config.seed)
    tokenizer = char_tokenizer()
    model = build_step_lm(hidden=64, layers=2, heads=4, vocab_size=len(tokenizer)).to(where.device, where.dtype)
    return HFBackend(model, tokenizer, header, threads=config.threads)


def workload(config: SearchBenchConfig) -> tuple[str, list[list[State]]]:
    """The shared header and, per round, `nodes` states at various depths of reference solutions."""
    task = make_task(config.family)
    header = few_shot_header(task.generate("train", config.shots, seed=777))
    problems = task.generate("val", config.rounds * config.nodes + 1, seed=config.seed)
    states = [State(p, p.steps[: i % max(1, len(p.steps) - 1)]) for i, p in enumerate(problems)]
    return header, [states[1 + r * config.nodes : 1 + (r + 1) * config.nodes] for r in range(config.rounds)]


def _timed(fn, *args) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def _ours(backend: HFBackend, config: SearchBenchConfig, prompts: list[list[str]], warm: str) -> dict[str, Any]:
    args = (config.n, config.max_new_tokens, 1.0, config.seed, None)
    backend.generate_texts([warm], *args)  # warm-up (first-call overheads; caches the header)
    loadavg = os.getloadavg()
    seconds, outputs = 0.0, []
    for round_prompts in prompts:
        out, s = _timed(backend.generate_texts, round_prompts, *args)
        seconds += s
        outputs.append(out)
    tokens = sum(len(g.token_ids) for out in outputs for row in out for g in row)
    return {
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "outputs": outputs,
        "loadavg": loadavg,
    }


def _vllm(config: SearchBenchConfig, header: str, prompts: list[list[str]], warm: str) -> dict[str, Any]:
    from reasonact.weights import gemma3_270m_dir

    if config.model != "gemma":
        raise RuntimeError("vLLM is measured on Gemma 3 270M only (model='gemma')")
    if not config.vllm_python.exists():
        raise RuntimeError(f"no vLLM interpreter at {config.vllm_python} (see docs/reasoning.md to build .venv-vllm)")
    request = {
        "model": str(gemma3_270m_dir()),
        "rounds": [[warm], *prompts],
        "n": config.n,
        "max_new_tokens": config.max_new_tokens,
        "temperature": 1.0,
        "seed": config.seed,
        "stop": None,
        "engine": {"enforce_eager": True, "max_context": 2048},
    }
    env = dict(
        os.environ,
        VLLM_CPU_OMP_THREADS_BIND=config.vllm_threads_bind,
        VLLM_CPU_KVCACHE_SPACE="4",
        TOKENIZERS_PARALLELISM="false",
    )
    loadavg = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        req, res = Path(tmp) / "request.json", Path(tmp) / "result.json"
        req.write_text(json.dumps(request))
        cmd = [str(config.vllm_python), "-m", "reasonact.reasoning.backends.vllm_worker", str(req), str(res)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=config.vllm_timeout_s)
        if done.returncode != 0:
            raise RuntimeError(f"vLLM worker exited {done.returncode}: {done.stderr[-1500:]}")
        result = json.loads(res.read_text())
    rounds = result["rounds"][1:]  # the first listed round is one more warm-up (caches the header)
    tokens = sum(len(g["token_ids"]) for r in rounds for row in r["generations"] for g in row)
    seconds = sum(r["seconds"] for r in rounds)
    return {
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "load_seconds": result["load_seconds"],
        "loadavg": loadavg,
    }


def _prm_throughput(config: SearchBenchConfig) -> dict[str, float]:
    task = make_task(config.family)
    problems = task.generate("val", config.prm_states, seed=config.seed + 1)
    states = [State(p, p.steps) for p in problems]
    scores, seconds = _timed(OracleScorer(task).score, states)
    steps = sum(len(s) for s in scores)
    return {"scorer": "oracle", "states_per_s": len(states) / seconds, "steps_per_s": steps / seconds}


def run(config: SearchBenchConfig) -> dict[str, Any]:
    where = placement(config.device, config.dtype)  # a bad --device/--dtype fails before any model is built
    load_start = os.getloadavg()
    header, rounds = workload(config)
    warm = State(make_task(config.family).generate("val", 1, seed=config.seed + 99)[0]).prompt(header)
    ours_backend = _backend(config, header, where)
    prompts = [[s.prompt(header) for s in r] for r in rounds]
    ours = _ours(ours_backend, config, prompts, warm)
    no_store_backend = HFBackend(
        ours_backend.model, ours_backend.tokenizer, header, kv_store_tokens=0, threads=config.threads
    )
    no_store = _ours(no_store_backend, config, prompts, warm)
    path_prompts = prompts[0][: config.per_path_nodes]
    args = (config.n, config.max_new_tokens, 1.0, config.seed, None)
    per_path_loadavg = os.getloadavg()
    per_path_out, per_path_s = _timed(ours_backend.generate_texts_per_path, path_prompts, *args)
    per_path_tokens = sum(len(g.token_ids) for row in per_path_out for g in row)
    pairs = [
        (a, b)
        for row_a, row_b in zip(ours["outputs"][0], per_path_out, strict=False)
        for a, b in zip(row_a, row_b, strict=True)
    ]
    identical = sum(a.token_ids == b.token_ids for a, b in pairs) / len(pairs)
    result: dict[str, Any] = {
        "config": to_jsonable(config),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg_start": load_start},
        "workload": {
            "nodes_per_round": config.nodes,
            "siblings": config.n,
            "tokens_per_sibling": config.max_new_tokens,
            "rounds": config.rounds,
            "mean_prompt_tokens": sum(len(ours_backend.encode(p)) for r in prompts for p in r)
            / sum(len(r) for r in prompts),
            "header_tokens": len(ours_backend.encode(header)),
        },
        "ours": {k: v for k, v in ours.items() if k != "outputs"}
        | {"device": str(where.device), "dtype": config.dtype, "threads": config.threads},
        "ours_without_kv_store": {k: v for k, v in no_store.items() if k != "outputs"},
        "per_path_generate": {
            "tokens": per_path_tokens,
            "seconds": per_path_s,
            "tokens_per_s": per_path_tokens / per_path_s,
            "loadavg": per_path_loadavg,
        },
        "outputs_identical_fraction": identical,
        "prefix_reuse_speedup": ours["tokens_per_s"] / (per_path_tokens / per_path_s),
        "kv_store_speedup": ours["tokens_per_s"] / no_store["tokens_per_s"],
        "prm_scoring": _prm_throughput(config),
    }
    del ours_backend, no_store_backend  # free the model before vLLM loads its copy
    try:
        if not config.vllm:
            raise RuntimeError("disabled by config (vllm=False)")
        vllm = _vllm(config, header, prompts, warm)
        result["vllm"] = vllm | {"dtype": "bfloat16", "prefix_caching": True, "threads_bind": config.vllm_threads_bind}
        result["vs_vllm_ratio"] = ours["tokens_per_s"] / vllm["tokens_per_s"]
    except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as err:
        result["vs_vllm_ratio"] = None
        result["vllm_error"] = str(err)
    result["machine"]["loadavg_end"] = os.getloadavg()
    atomic_write_json(config.out, result)
    print(
        f"tree expansion: ours {ours['tokens_per_s']:.1f} tok/s, per-path generate "
        f"{result['per_path_generate']['tokens_per_s']:.1f} tok/s → prefix_reuse_speedup "
        f"{result['prefix_reuse_speedup']:.2f}× (identical outputs {identical:.0%}); vs vLLM: {result['vs_vllm_ratio']}"
    )
    return result
