"""torch.distributed for the trainers: one process, or `torchrun --nproc_per_node=N` with DDP.

torchrun sets RANK / WORLD_SIZE / MASTER_ADDR; `Distributed.from_env` joins that group (gloo on CPU,
nccl on CUDA) and `wrap` puts the model in `DistributedDataParallel`, which averages gradients across
processes. With the same global batch split evenly and per-sample losses averaged over the local batch,
the averaged gradient equals the single-process gradient of the global batch (tested).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Distributed:
    rank: int = 0  # this process
    world: int = 1  # number of processes

    @classmethod
    def from_env(cls, backend: str | None = None) -> Distributed:
        """Join torchrun's process group if WORLD_SIZE > 1; otherwise a single process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group(backend or ("nccl" if torch.cuda.is_available() else "gloo"))
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes logs, checkpoints and plots."""
        return self.rank == 0

    def shard(self, global_batch: int) -> slice:
        """This process's rows of a global batch (the batch must split evenly)."""
        if global_batch % self.world:
            raise ValueError(f"batch_size: expected a multiple of the {self.world} processes, received {global_batch}")
        n = global_batch // self.world
        return slice(self.rank * n, (self.rank + 1) * n)

    def wrap(self, model: nn.Module) -> nn.Module:
        """DDP over the group (unused parameters allowed: a shard may hold no action or no text sample)."""
        if self.world == 1:
            return model
        return nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar over processes (for logging)."""
        if self.world == 1:
            return value
        out = value.detach().clone()
        dist.all_reduce(out)
        return out / self.world

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
