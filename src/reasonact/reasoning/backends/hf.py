"""HF transformers backend: batched step generation with shared-prefix KV reuse.

One call prefills each distinct prompt once, starting from the longest cached prefix in a
`KVStore` (the few-shot header, the parent node's prompt + step), and decodes all (prompts × n)
rows in one batch, a token at a time, until each row hits the step boundary. The n sampled siblings
of a prompt read its KV once per step: shared-prefix ("cascade") attention over one copy of the
prompt's KV plus each row's own generated columns, merged exactly (`cascade.py`). With
`cascade=False` (or a model not on SDPA attention) the prompt's KV is instead copied to each sibling,
into a preallocated buffer of the final length (`buffer_cache.py`). Either way each step writes its
column in place instead of re-concatenating the whole cache.
Rows of different lengths are left-padded inside the KV (padding columns are masked and positions
are counted over real tokens only), so every row sees exactly the computation it would see alone.
`generate_texts_per_path` is the reference: one `model.generate` call per (prompt, sample) with the
same sampling uniforms, hence the same tokens. The backend runs where its model's weights are
(`from_pretrained(..., device=...)`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from transformers import (
    Cache,
    DynamicCache,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)

from reasonact.reasoning.backends import cascade as shared_prefix
from reasonact.reasoning.backends.base import (
    Backend,
    Generation,
    cut_at_stop,
    pick_tokens,
    row_uniforms,
    sample_tokens,
    token_logprobs,
)
from reasonact.reasoning.backends.buffer_cache import buffer_cache
from reasonact.reasoning.backends.kv_store import KVStore, LayerKV
from reasonact.reasoning.mdp import STEP_BOUNDARY
from reasonact.threads import torch_threads

RowEnd = Callable[[torch.Tensor], torch.Tensor]  # each row's new token (R,) → whether that row ends here (R,) bool


class _InverseCDF(LogitsProcessor):
    """Forces HF `generate` (greedy mode) to pick the token `pick_tokens` would pick with uniforms u."""

    def __init__(self, uniforms: torch.Tensor, prompt_length: int, temperature: float) -> None:
        self.uniforms, self.prompt_length, self.temperature = uniforms, prompt_length, temperature

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:  # scores (1, V)
        t = input_ids.shape[1] - self.prompt_length
        token = pick_tokens(scores, self.uniforms[t : t + 1], self.temperature)  # (1,)
        forced = torch.full_like(scores, float("-inf"))
        forced[0, token] = 0.0
        return forced


class _StepEnd(StoppingCriteria):
    """Stops HF `generate` at the first token containing the step boundary, as `HFBackend` does."""

    def __init__(self, backend: HFBackend, stop: str) -> None:
        self.backend, self.stop = backend, stop

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:  # (b, s) → (b,)
        return self.backend.ends_step(input_ids[:, -1], self.stop)


class HFBackend(Backend):
    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,  # a transformers tokenizer of `model`
        header: str = "",
        kv_store_tokens: int = 65_536,
        max_rows: int = 64,
        store_generations: bool = True,
        threads: int | None = None,
        cascade: bool = True,
    ) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device  # inputs, KV and sampling live where the weights are
        self.tokenizer = tokenizer
        self.header = header  # few-shot text before every question
        self.store = KVStore(kv_store_tokens)  # prefix KV reuse across calls; 0 turns it off
        self.max_rows = max_rows  # decoded rows per batch (prompts × n)
        self.store_generations = store_generations  # keep each sampled step's KV for its children
        self.threads = threads  # torch intra-op threads while generating (None: leave torch's setting)
        # siblings attend to one shared copy of their prompt's KV (cascade.py; needs the model on SDPA attention)
        self.cascade = cascade and shared_prefix.enable(model)
        text_config = model.config.get_text_config()
        self.max_context = int(getattr(text_config, "max_position_embeddings", 2048))
        self.window = getattr(text_config, "sliding_window", None)  # sliding layers keep only this many tokens
        self.eos_id = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id
        self._token_texts: dict[int, str] = {}

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        header: str = "",
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        **kwargs,
    ) -> HFBackend:
        """Load a model directory in `dtype` onto `device` (validate user flags first: `reasonact.devices`)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)
        return cls(model, AutoTokenizer.from_pretrained(path), header, **kwargs)

    def encode(self, text: str) -> tuple[int, ...]:
        return tuple(self.tokenizer(text)["input_ids"])

    def ends_step(self, tokens: torch.Tensor, stop: str) -> torch.Tensor:
        """Which tokens' text contains `stop` (e.g. "\\n", ".\\n", "\\n\\n"); texts are decoded once per id.

        tokens (r,) → (r,) bool"""
        for token in tokens.tolist():
            if token not in self._token_texts:
                self._token_texts[token] = self.tokenizer.decode([token])
        return torch.tensor([stop in self._token_texts[t] for t in tokens.tolist()], device=tokens.device)

    @torch.inference_mode()
    def generate_texts(
        self,
        prompts: Sequence[str],
        n: int,
        max_new_tokens: int,
        temperature: float = 1.0,
        seed: int = 0,
        stop: str | None = STEP_BOUNDARY,
    ) -> list[list[Generation]]:
        return self._batches(prompts, n, max_new_tokens, temperature, seed, stop)

    @torch.inference_mode()
    def generate_until(
        self,
        prompts: Sequence[str],
        n: int,
        max_new_tokens: int,
        ends: Callable[[int], RowEnd],
        temperature: float = 1.0,
        seed: int = 0,
    ) -> list[list[Generation]]:
        """Like `generate_texts`, but each row decodes until the stateful rule `ends(rows)` (built
        once per batch of rows, prompt-major) says it is done: whole solutions in one call instead
        of one call per step. The prefix-KV store is not used (every row continues its own KV).
        A row the rule ends finishes "stop", one that runs out of tokens "length"."""
        return self._batches(prompts, n, max_new_tokens, temperature, seed, None, ends)

    def _batches(
        self,
        prompts: Sequence[str],
        n: int,
        max_new_tokens: int,
        temperature: float,
        seed: int,
        stop: str | None,
        ends: Callable[[int], RowEnd] | None = None,
    ) -> list[list[Generation]]:
        """Prompts that fit the context, `max_rows // n` at a time through `_generate`."""
        self.check_request(prompts, n, max_new_tokens, temperature)
        encoded = [self.encode(p) for p in prompts]
        out: list[list[Generation]] = [[Generation("", (), (), "too_long")] * n for _ in prompts]
        fits = [i for i, ids in enumerate(encoded) if len(ids) + max_new_tokens <= self.max_context]
        per_batch = max(1, self.max_rows // n)
        with self._threads():
            for start in range(0, len(fits), per_batch):
                chunk = fits[start : start + per_batch]
                rule = ends(len(chunk) * n) if ends is not None else None
                results = self._generate(
                    [encoded[i] for i in chunk], chunk, n, max_new_tokens, temperature, seed, stop, rule
                )
                for i, generations in zip(chunk, results, strict=True):
                    out[i] = generations
        return out

    def _threads(self):  # a context manager
        """Run with `self.threads` torch threads (`reasonact.threads`), then restore the count."""
        return torch_threads(self.threads)

    def _use_store(self, longest: int) -> bool:
        return self.store.max_tokens > 0 and (self.window is None or longest < self.window - 1)

    def _prefill(
        self, prompts: list[tuple[int, ...]], use_store: bool
    ) -> tuple[DynamicCache, torch.Tensor, torch.Tensor]:
        """Run each prompt from its longest cached prefix → (cache, mask (B, L), last logits (B, V))."""
        cached = [self.store.longest_prefix(ids, len(ids) - 1) if use_store else (0, None) for ids in prompts]
        past = max(p for p, _ in cached)
        suffixes = [ids[p:] for ids, (p, _) in zip(prompts, cached, strict=True)]
        width = max(len(s) for s in suffixes)
        cache = DynamicCache()  # full layers: sliding-window layers keep every column, their mask applies the window
        if past:
            reference = next(kv for p, kv in cached if p)  # any cached row: gives the KV shapes
            for layer in range(len(reference)):
                keys, values = zip(*(self._left_pad(kv or reference, layer, past, p) for p, kv in cached), strict=True)
                cache.update(torch.cat(keys), torch.cat(values), layer)
        mask = torch.zeros(len(prompts), past + width, dtype=torch.long)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        for b, ((p, _), suffix) in enumerate(zip(cached, suffixes, strict=True)):
            mask[b, past - p : past] = 1
            mask[b, past + width - len(suffix) :] = 1
            input_ids[b, width - len(suffix) :] = torch.tensor(suffix)
        self.store.hits += sum(p for p, _ in cached)
        self.store.misses += sum(len(s) for s in suffixes)
        mask, input_ids = mask.to(self.device), input_ids.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, past:]  # (B, width)
        logits = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,  # only the last position's logits: the LM head over every prompt token is waste
        ).logits[:, -1]  # (B, V)
        return cache, mask, logits

    @staticmethod
    def _left_pad(kv: LayerKV, layer: int, past: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first `length` cached columns of `layer`, zero-padded on the left to `past`.  # (1, h, past, d)"""
        keys, values = (x[:, :, :length] for x in kv[layer])
        pad = (0, 0, past - length, 0)
        return torch.nn.functional.pad(keys, pad), torch.nn.functional.pad(values, pad)

    def _save(self, ids: tuple[int, ...], cache: Cache, row: int, columns: torch.Tensor) -> None:
        """Store one row's KV (its real, unpadded columns (L,) bool) under its token ids."""
        if isinstance(cache, shared_prefix.SharedPrefixCache):
            whole = cache.row(row)  # (1, h, L, d) per layer
        else:
            whole = [(layer.keys[row : row + 1], layer.values[row : row + 1]) for layer in cache.layers]
        self.store.put(ids, [(keys[:, :, columns], values[:, :, columns]) for keys, values in whole])

    def _generate(
        self,
        prompts: list[tuple[int, ...]],
        indices: list[int],
        n: int,
        max_new_tokens: int,
        temperature: float,
        seed: int,
        stop: str | None,
        ends: RowEnd | None = None,
    ) -> list[list[Generation]]:
        use_store = ends is None and self._use_store(max(len(p) for p in prompts) + max_new_tokens)
        cache, mask, logits = self._prefill(prompts, use_store)
        if use_store:
            for b, ids in enumerate(prompts):
                self._save(ids, cache, b, mask[b].bool())
        if self.cascade:  # siblings read one copy of their prompt's KV; decoding writes their own columns in place
            cache = shared_prefix.SharedPrefixCache(cache, n, max_new_tokens)
            step_kwargs = {"cascade": cache}
        else:  # each sibling gets its own copy of its prompt's KV
            cache, step_kwargs = buffer_cache(cache, n, max_new_tokens), {}
        if n > 1:
            mask, logits = mask.repeat_interleave(n, 0), logits.repeat_interleave(n, 0)
        rows = len(prompts) * n
        uniforms = torch.stack([row_uniforms(seed, i, j, max_new_tokens) for i in indices for j in range(n)])  # (R, T)
        uniforms, device = uniforms.to(self.device), self.device
        tokens = torch.full((rows, max_new_tokens), self.pad_id, dtype=torch.long, device=device)  # (R, T)
        logprobs = torch.zeros(rows, max_new_tokens, device=device)  # (R, T)
        lengths = torch.full((rows,), max_new_tokens, device=device)  # (R,)
        fed = torch.zeros(rows, dtype=torch.long, device=device)  # generated tokens whose KV is in the cache
        done = torch.zeros(rows, dtype=torch.bool, device=device)  # (R,)
        position = mask.sum(-1)  # (R,) position id of the next token
        for t in range(max_new_tokens):
            picked, logprobs[:, t] = sample_tokens(logits, uniforms[:, t], temperature)  # (R,), (R,)
            token = torch.where(done, self.pad_id, picked)  # (R,)
            tokens[:, t] = token
            if ends is not None:
                ended = ~done & ends(token)
            elif stop is not None:
                ended = ~done & (self.ends_step(token, stop) | (token == self.eos_id))
            if ends is not None or stop is not None:
                lengths[ended] = t + 1
                done |= ended
            if t == max_new_tokens - 1 or bool(done.all()):
                break
            live = (~done | (lengths == t + 1)).long()  # rows still writing, plus rows that just stopped
            mask = torch.cat([mask, live[:, None]], 1)
            fed += live
            logits = self.model(
                input_ids=token[:, None],
                attention_mask=mask,
                position_ids=position[:, None],
                cache=cache,
                **step_kwargs,
            ).logits[:, -1]  # (R, V)
            position += 1
        out: list[list[Generation]] = []
        for b, ids in enumerate(prompts):
            samples = []
            for j in range(n):
                r = b * n + j
                ids_r = tokens[r, : lengths[r]].tolist()
                text, stopped = cut_at_stop(self.tokenizer.decode(ids_r, skip_special_tokens=True), stop)
                finish = "stop" if stopped else "eos" if stop is not None and ids_r[-1] == self.eos_id else "length"
                if ends is not None:
                    finish = "stop" if done[r] else "length"
                samples.append(Generation(text, tuple(ids_r), tuple(logprobs[r, : lengths[r]].tolist()), finish))
                if use_store and self.store_generations and stop is not None and fed[r] > 0:
                    self._save(ids + tuple(ids_r[: fed[r]]), cache, r, mask[r].bool())
            out.append(samples)
        return out

    @torch.inference_mode()
    def generate_texts_per_path(
        self,
        prompts: Sequence[str],
        n: int,
        max_new_tokens: int,
        temperature: float = 1.0,
        seed: int = 0,
        stop: str | None = STEP_BOUNDARY,
    ) -> list[list[Generation]]:
        """Reference: one `model.generate` per (prompt, sample), no batching, no prefix reuse."""
        self.check_request(prompts, n, max_new_tokens, temperature)
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=[] if stop is None else self.eos_id,  # []: None would fall back to the model's eos
            pad_token_id=self.pad_id,
            return_dict_in_generate=True,
            output_logits=True,
        )
        out = []
        for i, prompt in enumerate(prompts):
            ids = torch.tensor([self.encode(prompt)], device=self.device)  # (1, s)
            samples = []
            for j in range(n):
                force = _InverseCDF(row_uniforms(seed, i, j, max_new_tokens), ids.shape[1], temperature)
                ends = [] if stop is None else [_StepEnd(self, stop)]
                with self._threads():
                    result = self.model.generate(
                        ids,
                        generation_config=config,
                        logits_processor=LogitsProcessorList([force]),
                        stopping_criteria=StoppingCriteriaList(ends),
                    )
                new = result.sequences[0, ids.shape[1] :].tolist()
                logits = torch.cat(result.logits)  # (t, V)
                lps = token_logprobs(logits, torch.tensor(new, device=logits.device))
                text, stopped = cut_at_stop(self.tokenizer.decode(new, skip_special_tokens=True), stop)
                finish = "stop" if stopped else "eos" if stop is not None and new[-1] == self.eos_id else "length"
                samples.append(Generation(text, tuple(new), tuple(lps.tolist()), finish))
            out.append(samples)
        return out
