"""The vLLM backend for real: Gemma 3 270M through `VLLMBackend` in the `.venv-vllm` venv.

vLLM is not installed in the main venv (it pins its own transformers); the test runs the worker
under `.venv-vllm/bin/python` and is skipped, saying why, where that venv is missing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from reasonact.reasoning.mdp import State, few_shot_header
from reasonact.reasoning.tasks import ArithmeticTask

VLLM_PYTHON = Path(__file__).resolve().parents[2] / ".venv-vllm" / "bin" / "python"


@pytest.mark.slow
@pytest.mark.skipif(
    not VLLM_PYTHON.exists(), reason=f"vLLM venv not built ({VLLM_PYTHON} missing; see docs/reasoning.md)"
)
def test_vllm_backend_generates_steps_with_gemma(tmp_path) -> None:
    from reasonact.weights import gemma3_270m_dir

    task = ArithmeticTask()
    header = few_shot_header(task.generate("train", 3, seed=5))
    prompts = [State(p).prompt(header) for p in task.generate("test", 2)] + ["Question: " + "1 + " * 1500 + "\n"]
    request = {
        "model": str(gemma3_270m_dir()),
        "rounds": [prompts],
        "n": 3,
        "max_new_tokens": 16,
        "temperature": 1.0,
        "seed": 0,
        "stop": "\n",
        "engine": {"enforce_eager": True, "max_context": 2048},
    }
    (tmp_path / "request.json").write_text(json.dumps(request))
    env = dict(os.environ, VLLM_CPU_OMP_THREADS_BIND="0-1", VLLM_CPU_KVCACHE_SPACE="2")
    cmd = [str(VLLM_PYTHON), "-m", "reasonact.reasoning.backends.vllm_worker", "request.json", "result.json"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    [round_] = json.loads((tmp_path / "result.json").read_text())["rounds"]
    generations = round_["generations"]
    assert [len(row) for row in generations] == [3, 3, 3]
    for g in generations[0] + generations[1]:
        assert "\n" not in g["text"] and g["finish"] in ("stop", "length", "eos")
        assert len(g["logprobs"]) == len(g["token_ids"]) > 0 and all(lp <= 0 for lp in g["logprobs"])
    assert any(g["finish"] == "stop" for g in generations[0] + generations[1])
    assert [g["finish"] for g in generations[2]] == ["too_long"] * 3  # > max_context: a record, not a crash
