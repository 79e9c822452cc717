"""Torch's intra-op thread count for a block of work, restored afterwards.

Small models run much faster with one thread on a busy machine: with two, every op waits at an
OpenMP barrier for a core another process holds (measured ~10× for the tiny reasoning policies on
this 2-core box)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with `threads` torch threads (None: leave the count alone)."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
