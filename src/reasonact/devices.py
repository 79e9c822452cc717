"""Where a model runs and in which floating-point type: the `--device` and `--dtype` flags of every command
that builds a model (`vla bench`, `vla train`, `vla eval`, `serve`; issue 15).

`placement(device, dtype)` parses and validates both *before* any model is built, so `--device cuda` on a
machine without a GPU, a typo, or bfloat16 on a GPU without bfloat16 kernels fails at once with an error
naming the flag, what it accepts, and what it received — not minutes later inside a forward pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

DEVICE_FORMS = "cpu, cuda, cuda:N or mps"
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_DEVICE = re.compile(r"(cpu|mps|cuda)(?::(\d+))?")


@dataclass(frozen=True)
class Placement:
    """A validated device and dtype."""

    device: torch.device  # where parameters and inputs live
    dtype: torch.dtype  # floating-point type of the parameters

    def __str__(self) -> str:
        return f"{self.device} {str(self.dtype).removeprefix('torch.')}"


def parse_device(text: str, flag: str = "--device") -> torch.device:
    """ "cpu" | "cuda" | "cuda:N" | "mps" → a torch.device that exists on this machine."""
    match = _DEVICE.fullmatch(text.strip().lower())
    if match is None or (match[1] != "cuda" and match[2] is not None):
        raise ValueError(f"{flag}: expected {DEVICE_FORMS}, received {text!r}")
    kind = match[1]
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{flag}: {text!r} needs a CUDA GPU, but torch sees none on this machine "
                             f"(torch {torch.__version__}); use {flag} cpu")  # fmt: skip
        index = int(match[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise ValueError(f"{flag}: expected cuda:N with N < {count} (GPUs visible), received {text!r}")
        return torch.device("cuda", index)
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{flag}: 'mps' needs Apple-silicon Metal support, unavailable here; use {flag} cpu")
    return torch.device(kind)


def parse_dtype(text: str, flag: str = "--dtype") -> torch.dtype:
    """ "float32" | "bfloat16" | "float16" → the torch dtype."""
    dtype = DTYPES.get(text.strip().lower())
    if dtype is None:
        raise ValueError(f"{flag}: expected one of {', '.join(DTYPES)}, received {text!r}")
    return dtype


def check_supported(device: torch.device, dtype: torch.dtype, dtype_flag: str = "--dtype") -> None:
    """Refuse a dtype the device has no kernels for (bfloat16 on a pre-Ampere GPU)."""
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(device)
        raise ValueError(f"{dtype_flag}: bfloat16 is not supported by {device} ({name}); use float16 or float32")


def placement(device: str, dtype: str, device_flag: str = "--device", dtype_flag: str = "--dtype") -> Placement:
    """Parse and validate `--device` and `--dtype` together (call before building anything)."""
    where = parse_device(device, device_flag)
    kind = parse_dtype(dtype, dtype_flag)
    check_supported(where, kind, dtype_flag)
    return Placement(where, kind)
