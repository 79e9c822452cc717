"""Run one generation request through `VLLMBackend` and write generations + timings as JSON.

Used from the vLLM venv by the benchmark and the slow test:

    .venv-vllm/bin/python -m reasonact.reasoning.backends.vllm_worker request.json result.json

request: {"model", "header", "rounds": [[prompt, …], …], "n", "max_new_tokens", "temperature",
"seed", "stop", "engine": {…}}; each round is timed separately after one untimed warm-up round.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict


def main(request_path: str, result_path: str) -> None:
    from reasonact.reasoning.backends.vllm import VLLMBackend

    with open(request_path) as f:
        request = json.load(f)
    started = time.perf_counter()
    backend = VLLMBackend(request["model"], header=request.get("header", ""), **request.get("engine", {}))
    load_seconds = time.perf_counter() - started
    args = (request["n"], request["max_new_tokens"], request["temperature"], request["seed"], request["stop"])
    backend.generate_texts(request["rounds"][0][:1], *args)  # warm-up: first-call overheads, not the workload
    rounds = []
    for prompts in request["rounds"]:
        start = time.perf_counter()
        generations = backend.generate_texts(prompts, *args)
        rounds.append(
            {"seconds": time.perf_counter() - start, "generations": [[asdict(g) for g in gs] for gs in generations]}
        )
    with open(result_path, "w") as f:
        json.dump({"load_seconds": load_seconds, "rounds": rounds}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
