"""`reasonact search bench`: tokens/s of tree expansion, our HF backend vs per-path generate vs vLLM.

The workload is what beam search and MCTS do at every level: `nodes` tree nodes (prompts sharing a
long few-shot header, each a question plus some steps) are each expanded into `n` sampled siblings
of exactly `max_new_tokens` tokens (the step boundary is disabled so every engine generates the
same number of tokens). Measured side by side in one run, on the same weights (Gemma 3 270M):

* ours: `HFBackend.generate_texts` — prefill once per node from the KV store (header cached),
  siblings share that KV, all nodes × n rows decoded in one batch;
* ours without cascade attention (`HFBackend(cascade=False)`: each sibling decodes on its own copy of
  its node's prompt KV, the path before shared-prefix attention): what `backends/cascade.py` is worth;
* ours without the KV store (siblings still share their node's prefill): the store's share;
* ours in `second_dtype` (float32 next to the bfloat16 headline): what the dtype is worth;
* vLLM (CPU build, `.venv-vllm`, prefix caching on, bfloat16), a subprocess serving one round at a time;
* per-path: one `model.generate` per (node, sibling), same sampling uniforms → same tokens
  (`outputs_identical_fraction` checks it);
* oracle PRM scoring throughput (states and steps per second).

Fairness: the headline runs ours in bfloat16, the dtype vLLM's CPU build runs; both engines get the
same number of CPU threads (`threads`; vLLM's OpenMP threads are bound to that many cores); and the
arms alternate round by round (ours, vLLM, ours without cascade attention, ours without the store,
ours in `second_dtype`; new nodes every round), each arm's figure being its median round, so a change
in the machine's load hits every arm. The load average before every turn is in the report.

Keys: `prefix_reuse_speedup` = ours / per-path tokens/s; `vs_vllm_ratio` = ours / vLLM median
tokens/s (null with `vllm_error` when vLLM could not run); `vs_vllm_ratio_rounds` pairs each round;
`cascade_speedup` = ours / ours without cascade attention (median rounds), `cascade_speedup_rounds` per round.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from reasonact.atomic import atomic_write_json
from reasonact.devices import Placement, placement
from reasonact.reasoning.backends.base import Generation
from reasonact.reasoning.backends.hf import HFBackend
from reasonact.reasoning.backends.vllm_worker import Worker
from reasonact.reasoning.mdp import State, few_shot_header
from reasonact.reasoning.scorers import OracleScorer
from reasonact.reasoning.tasks import make_task
from reasonact.runs import to_jsonable

Outputs = list[list[Generation]]  # [node][sibling]


@dataclass(frozen=True)
class SearchBenchConfig:
    model: Literal["gemma", "random-tiny"] = "gemma"  # Gemma 3 270M, or a random tiny Llama (smoke runs)
    family: str = "arithmetic"  # task family of the prompts
    difficulty: str = "easy"  # its level (`Task.LEVELS`); easy keeps long-prefix prompts inside Gemma 3's 512 window
    shots: int = 4  # few-shot examples in the shared header (the long common prefix)
    nodes: int = 4  # tree nodes expanded per round (distinct prompts)
    n: int = 8  # sampled siblings per node
    max_new_tokens: int = 24  # tokens per sibling
    rounds: int = 3  # alternating measured rounds (new nodes each); an arm's tokens/s is its median round
    per_path_nodes: int = 2  # nodes of round 0 also run per path (slow: one generate per sibling)
    device: str = "cpu"  # where our model runs (ours and per-path alike): cpu, cuda, cuda:N or mps
    dtype: str = "bfloat16"  # our headline dtype (ours and per-path): vLLM's CPU build runs bfloat16 too
    second_dtype: str | None = "float32"  # also time ours in this dtype every round (not the headline); None: skip
    threads: int = 1  # CPU threads of each engine (ours: torch intra-op, vLLM: bound OpenMP); 1: fastest under load
    vllm: bool = True  # also measure vLLM (needs `vllm_python`)
    vllm_threads_bind: str = "auto"  # VLLM_CPU_OMP_THREADS_BIND; auto: cores 0..threads-1 (else `threads` cores)
    vllm_python: Path = Path(".venv-vllm/bin/python")  # interpreter of the venv vLLM is installed in
    vllm_timeout_s: int = 900  # give up when the vLLM worker sends no reply (load or round) for this long
    prm_states: int = 256  # states scored for the PRM throughput figure
    seed: int = 0  # sampling seed (same for every engine)
    out: Path = Path("benchmarks/results/search.json")  # where the JSON goes


PRESETS: dict[str, tuple[str, SearchBenchConfig]] = {
    "default": (
        "Gemma 3 270M tree expansion, ours (bf16, fp32 second arm) vs per-path generate vs vLLM (minutes).",
        SearchBenchConfig(),
    ),
    "long-prefix": (
        "As default with a 13-shot header (415 shared prefix tokens; prompt + step stay inside Gemma 3's 512 window).",
        SearchBenchConfig(shots=13, out=Path("benchmarks/results/search_long_prefix.json")),
    ),
    "tiny": (
        "Seconds-long smoke: a random tiny Llama (fp32, bf16 second arm), 2 alternating rounds, no vLLM.",
        SearchBenchConfig(
            model="random-tiny",
            shots=2,
            nodes=2,
            n=4,
            max_new_tokens=8,
            rounds=2,
            per_path_nodes=1,
            dtype="float32",
            second_dtype="bfloat16",
            threads=1,
            vllm=False,
            prm_states=32,
            out=Path("benchmarks/results/search_tiny.json"),
        ),
    ),
}


def vllm_threads_bind(config: SearchBenchConfig) -> str:
    """VLLM_CPU_OMP_THREADS_BIND giving vLLM exactly `config.threads` cores (checked before anything runs)."""
    if config.threads < 1:
        raise ValueError(f"--threads: expected ≥ 1 CPU threads per engine, received {config.threads}")
    if config.vllm_threads_bind == "auto":
        return "0" if config.threads == 1 else f"0-{config.threads - 1}"
    try:
        cores = sum(len(range(int(lo), int(hi or lo) + 1)) for lo, _, hi in
                    (part.partition("-") for part in config.vllm_threads_bind.split(",")))  # fmt: skip
    except ValueError:
        cores = None
    if cores != config.threads:
        raise ValueError(
            f"--vllm-threads-bind: expected 'auto' or a core list like '0-1' or '0,2' naming --threads "
            f"({config.threads}) cores, so both engines get the same CPU, received {config.vllm_threads_bind!r}"
        )
    return config.vllm_threads_bind


def _backend(config: SearchBenchConfig, header: str, where: Placement) -> HFBackend:
    if config.model == "gemma":
        from reasonact.weights import gemma3_270m_dir

        return HFBackend.from_pretrained(
            gemma3_270m_dir(), header=header, dtype=where.dtype, device=where.device, threads=config.threads
        )
    from reasonact.reasoning.step_lm import build_step_lm, char_tokenizer

    torch.manual_seed(config.seed)  # every arm gets the same random weights
    tokenizer = char_tokenizer()
    model = build_step_lm(hidden=64, layers=2, heads=4, vocab_size=len(tokenizer)).to(where.device, where.dtype)
    return HFBackend(model, tokenizer, header, threads=config.threads)


def workload(config: SearchBenchConfig) -> tuple[str, list[list[State]]]:
    """The shared header and, per round, `nodes` states at various depths of reference solutions."""
    task = make_task(config.family, config.difficulty)
    header = few_shot_header(task.generate("train", config.shots, seed=777))
    problems = task.generate("val", config.rounds * config.nodes + 1, seed=config.seed)
    states = [State(p, p.steps[: i % max(1, len(p.steps) - 1)]) for i, p in enumerate(problems)]
    return header, [states[1 + r * config.nodes : 1 + (r + 1) * config.nodes] for r in range(config.rounds)]


def _timed(fn, *args) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def _args(config: SearchBenchConfig) -> tuple:
    """generate_texts' sampling arguments after the prompts: n, tokens, T = 1, seed, no step boundary."""
    return (config.n, config.max_new_tokens, 1.0, config.seed, None)


def _turn(outputs: Outputs, seconds: float, loadavg: tuple[float, float, float], started: float) -> dict[str, Any]:
    """One arm's round: generated tokens, seconds, tokens/s, when it started (Unix time) and the load then."""
    tokens = sum(len(g.token_ids) for row in outputs for g in row)
    return {
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "started": started,
        "loadavg": loadavg,
    }


def _ours_round(backend: HFBackend, config: SearchBenchConfig, prompts: list[str]) -> tuple[Outputs, dict]:
    loadavg, started = os.getloadavg(), time.time()
    outputs, seconds = _timed(backend.generate_texts, prompts, *_args(config))
    return outputs, _turn(outputs, seconds, loadavg, started)


def _vllm_round(worker: Worker, prompts: list[str]) -> tuple[Outputs, dict]:
    loadavg, started = os.getloadavg(), time.time()
    reply = worker.round(prompts)
    outputs = [[Generation(g["text"], tuple(g["token_ids"]), tuple(g["logprobs"]), g["finish"]) for g in row]
               for row in reply["generations"]]  # fmt: skip
    return outputs, _turn(outputs, reply["seconds"], loadavg, started)


def _vllm_worker(config: SearchBenchConfig, header: str, warm: str, tmp: Path) -> Worker:
    """Start the vLLM worker (bfloat16, prefix caching, `threads` bound cores) and wait until it is warm."""
    from reasonact.weights import gemma3_270m_dir

    if not config.vllm:
        raise RuntimeError("disabled by config (vllm=False)")
    if config.model != "gemma":
        raise RuntimeError("vLLM is measured on Gemma 3 270M only (model='gemma')")
    if not config.vllm_python.exists():
        raise RuntimeError(f"no vLLM interpreter at {config.vllm_python} (see docs/reasoning.md to build .venv-vllm)")
    request = {
        "model": str(gemma3_270m_dir()),
        "header": header,
        "rounds": [[warm]],  # the warm-up prompt (also caches the header)
        "n": config.n,
        "max_new_tokens": config.max_new_tokens,
        "temperature": 1.0,
        "seed": config.seed,
        "stop": None,
        "engine": {"enforce_eager": True, "max_context": 2048, "dtype": "bfloat16"},
    }
    env = dict(
        os.environ,
        VLLM_CPU_OMP_THREADS_BIND=vllm_threads_bind(config),
        VLLM_CPU_KVCACHE_SPACE="4",
        TOKENIZERS_PARALLELISM="false",
    )
    return Worker(config.vllm_python, request, env, tmp / "vllm.log", config.vllm_timeout_s)


def _summary(turns: list[dict]) -> dict[str, Any]:
    """An arm's rounds → its median and best tokens/s, with every round kept."""
    rates = [t["tokens_per_s"] for t in turns]
    return {"tokens_per_s": statistics.median(rates), "best_tokens_per_s": max(rates), "rounds": turns}


def _identical(a: list[Outputs], b: list[Outputs]) -> float:
    """Share of (node, sibling) sequences with the same token ids in both, over the rounds `b` has."""
    pairs = [
        (x.token_ids, y.token_ids)
        for out_a, out_b in zip(a, b, strict=False)
        for row_a, row_b in zip(out_a, out_b, strict=False)
        for x, y in zip(row_a, row_b, strict=True)
    ]
    return sum(x == y for x, y in pairs) / len(pairs)


def _mean_logprob(outputs: list[Outputs]) -> float:
    """Mean log-prob per generated token under the engine's own model: engines sampling the same
    distribution agree on it even where their random draws (hence tokens) differ."""
    logprobs = [lp for out in outputs for row in out for g in row for lp in g.logprobs]
    return sum(logprobs) / len(logprobs)


def _prm_throughput(config: SearchBenchConfig) -> dict[str, float]:
    task = make_task(config.family, config.difficulty)
    problems = task.generate("val", config.prm_states, seed=config.seed + 1)
    states = [State(p, p.steps) for p in problems]
    scores, seconds = _timed(OracleScorer(task).score, states)
    steps = sum(len(s) for s in scores)
    return {"scorer": "oracle", "states_per_s": len(states) / seconds, "steps_per_s": steps / seconds}


def _alternate(
    arms: dict[str, Any], config: SearchBenchConfig, prompts: list[list[str]]
) -> tuple[dict[str, list[Outputs]], dict[str, list[dict]], dict[str, str]]:
    """Round r of every arm, in `arms`' order, before round r + 1 of any → (outputs, turns, errors).

    An arm is an HFBackend or the vLLM Worker; an arm that fails is dropped with its error."""
    outputs: dict[str, list[Outputs]] = {name: [] for name in arms}
    turns: dict[str, list[dict]] = {name: [] for name in arms}
    errors: dict[str, str] = {}
    for round_prompts in prompts:
        for name, arm in arms.items():
            if name in errors:
                continue
            try:
                if isinstance(arm, Worker):
                    out, turn = _vllm_round(arm, round_prompts)
                else:
                    out, turn = _ours_round(arm, config, round_prompts)
            except RuntimeError as err:
                errors[name] = str(err)
                continue
            outputs[name].append(out)
            turns[name].append(turn)
    return outputs, turns, errors


def _our_arms(
    config: SearchBenchConfig, header: str, warm: str, where: Placement, second: Placement | None
) -> tuple[HFBackend, dict[str, HFBackend]]:
    """Our backends, warmed up (first-call overheads; the header cached): ours, ours without cascade
    attention and ours without the KV store (same model), ours in the second dtype (its own copy)
    → (ours, arms by name)."""
    ours = _backend(config, header, where)
    arms = {
        "ours": ours,
        "ours_without_cascade": HFBackend(ours.model, ours.tokenizer, header, threads=config.threads, cascade=False),
        "ours_without_kv_store": HFBackend(
            ours.model, ours.tokenizer, header, kv_store_tokens=0, threads=config.threads
        ),
    }
    if second is not None:
        arms["ours_second_dtype"] = _backend(config, header, second)
    for arm in arms.values():
        arm.generate_texts([warm], *_args(config))
    return ours, arms


def run(config: SearchBenchConfig) -> dict[str, Any]:
    where = placement(config.device, config.dtype)  # a bad --device/--dtype fails before any model is built
    second = placement(config.device, config.second_dtype, dtype_flag="--second-dtype") if config.second_dtype else None
    bind = vllm_threads_bind(config)
    load_start = os.getloadavg()
    header, rounds = workload(config)
    warm = State(make_task(config.family, config.difficulty).generate("val", 1, seed=config.seed + 99)[0]).prompt(
        header
    )
    prompts = [[s.prompt(header) for s in r] for r in rounds]
    with tempfile.TemporaryDirectory() as tmp:
        try:  # vLLM first: its engine load (minutes) must not overlap our timed rounds
            worker, vllm_error = _vllm_worker(config, header, warm, Path(tmp)), None
        except (RuntimeError, OSError, ValueError) as err:
            worker, vllm_error = None, str(err)
        try:
            ours_backend, arms = _our_arms(config, header, warm, where, second)
            if worker is not None:
                arms = {"ours": arms.pop("ours"), "vllm": worker} | arms
            outputs, turns, errors = _alternate(arms, config, prompts)
        finally:
            if worker is not None:
                worker.close()
    vllm_error = vllm_error or errors.pop("vllm", None)
    if errors:
        raise RuntimeError(f"our arms failed: {errors}")
    path_prompts = prompts[0][: config.per_path_nodes]
    per_path_loadavg, per_path_started = os.getloadavg(), time.time()
    per_path_out, per_path_s = _timed(ours_backend.generate_texts_per_path, path_prompts, *_args(config))
    per_path = _turn(per_path_out, per_path_s, per_path_loadavg, per_path_started)
    ours = _summary(turns["ours"])
    no_store = _summary(turns["ours_without_kv_store"])
    no_cascade = _summary(turns["ours_without_cascade"])
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
        "alternation": {"order": list(arms), "rounds": config.rounds, "statistic": "median round"},
        "ours": ours
        | {
            "device": str(where.device),
            "dtype": config.dtype,
            "threads": config.threads,
            "kv_store_hit_tokens": ours_backend.store.hits,  # 0: the store was off (a prompt past the window)
            "cascade": ours_backend.cascade,  # shared-prefix attention ran (False: the model is not on SDPA)
            "mean_logprob": _mean_logprob(outputs["ours"]),
        },
        "ours_without_kv_store": no_store,
        "ours_without_cascade": no_cascade
        | {
            "identical_to_ours_fraction": _identical(outputs["ours"], outputs["ours_without_cascade"]),
            "mean_logprob": _mean_logprob(outputs["ours_without_cascade"]),
        },
        "per_path_generate": per_path,
        "outputs_identical_fraction": _identical(outputs["ours"], [per_path_out]),
        "prefix_reuse_speedup": ours["tokens_per_s"] / per_path["tokens_per_s"],
        "kv_store_speedup": ours["tokens_per_s"] / no_store["tokens_per_s"],
        "cascade_speedup": ours["tokens_per_s"] / no_cascade["tokens_per_s"],
        "cascade_speedup_rounds": [
            a["tokens_per_s"] / b["tokens_per_s"]
            for a, b in zip(turns["ours"], turns["ours_without_cascade"], strict=True)
        ],
        "prm_scoring": _prm_throughput(config),
    }
    if second is not None:
        result["second_arm"] = _summary(turns["ours_second_dtype"]) | {
            "dtype": config.second_dtype,
            "identical_to_headline_fraction": _identical(outputs["ours"], outputs["ours_second_dtype"]),
            "mean_logprob": _mean_logprob(outputs["ours_second_dtype"]),
        }
    if vllm_error is None:
        vllm = _summary(turns["vllm"])
        result["vllm"] = vllm | {
            "dtype": "bfloat16",
            "prefix_caching": True,
            "threads": config.threads,
            "threads_bind": bind,
            "load_seconds": worker.load_seconds,
            "mean_logprob": _mean_logprob(outputs["vllm"]),
            "identical_to_ours_fraction": _identical(outputs["ours"], outputs["vllm"]),  # own RNG: ~0 expected
        }
        result["vs_vllm_ratio"] = ours["tokens_per_s"] / vllm["tokens_per_s"]
        result["vs_vllm_ratio_best"] = ours["best_tokens_per_s"] / vllm["best_tokens_per_s"]
        result["vs_vllm_ratio_rounds"] = [
            a["tokens_per_s"] / b["tokens_per_s"] for a, b in zip(turns["ours"], turns["vllm"], strict=False)
        ]
        if second is not None:
            result["second_arm"]["vs_vllm_ratio"] = result["second_arm"]["tokens_per_s"] / vllm["tokens_per_s"]
    else:
        result["vs_vllm_ratio"] = None
        result["vllm_error"] = vllm_error
    result["machine"]["loadavg_end"] = os.getloadavg()
    atomic_write_json(config.out, result)
    print(
        f"tree expansion ({config.dtype}, {config.threads} threads, median of {config.rounds} alternating rounds): "
        f"ours {ours['tokens_per_s']:.1f} tok/s, per-path generate {per_path['tokens_per_s']:.1f} tok/s → "
        f"prefix_reuse_speedup {result['prefix_reuse_speedup']:.2f}× (identical outputs "
        f"{result['outputs_identical_fraction']:.0%}); cascade attention {result['cascade_speedup']:.2f}×; "
        f"vs vLLM: {result['vs_vllm_ratio']}"
    )
    return result
