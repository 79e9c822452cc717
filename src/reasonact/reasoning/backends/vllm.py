"""vLLM backend: the same `generate_steps` contract served by vLLM's engine (paged KV, automatic
prefix caching, continuous batching); the backend to pick on GPUs.

vLLM is an optional extra; on this CPU it lives in its own venv (`.venv-vllm`, see
docs/reasoning.md). Build the engine under `if __name__ == "__main__":` (it spawns processes).
`reasonact.reasoning.backends.vllm_worker` runs one request file through it from that venv.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reasonact.reasoning.backends.base import Backend, Generation, row_seed
from reasonact.reasoning.mdp import STEP_BOUNDARY


class VLLMBackend(Backend):
    def __init__(
        self,
        model: str | Path,
        header: str = "",
        dtype: str = "bfloat16",
        prefix_caching: bool = True,
        max_context: int = 2048,
        **engine,  # further `vllm.LLM` arguments (enforce_eager, gpu_memory_utilization, …)
    ) -> None:
        from vllm import LLM

        self.header = header
        self.max_context = max_context
        self.llm = LLM(
            model=str(model), dtype=dtype, enable_prefix_caching=prefix_caching, max_model_len=max_context, **engine
        )
        self.tokenizer = self.llm.get_tokenizer()

    def generate_texts(
        self,
        prompts: Sequence[str],
        n: int,
        max_new_tokens: int,
        temperature: float = 1.0,
        seed: int = 0,
        stop: str | None = STEP_BOUNDARY,
    ) -> list[list[Generation]]:
        from vllm import SamplingParams

        self.check_request(prompts, n, max_new_tokens, temperature)
        lengths = [len(self.tokenizer(p)["input_ids"]) for p in prompts]
        fits = [i for i, length in enumerate(lengths) if length + max_new_tokens <= self.max_context]
        params = [
            SamplingParams(
                n=n,
                temperature=temperature,
                max_tokens=max_new_tokens,
                stop=[stop] if stop is not None else None,
                ignore_eos=stop is None,  # stop=None: exactly max_new_tokens, as the HF backend
                logprobs=0,  # the sampled token's log-prob
                seed=row_seed(seed, i, 0),
            )
            for i in fits
        ]
        results = self.llm.generate([prompts[i] for i in fits], params, use_tqdm=False)
        out: list[list[Generation]] = [[Generation("", (), (), "too_long")] * n for _ in prompts]
        for i, result in zip(fits, results, strict=True):
            samples = []
            for c in result.outputs:
                logprobs = tuple(step[t].logprob for step, t in zip(c.logprobs or [], c.token_ids, strict=False))
                finish = "stop" if c.finish_reason == "stop" and stop is not None else "length"
                if c.finish_reason == "stop" and c.stop_reason is None:
                    finish = "eos"
                samples.append(Generation(c.text, tuple(c.token_ids), logprobs, finish))
            out[i] = samples
        return out
