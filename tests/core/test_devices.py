"""`--device` / `--dtype` parsing: valid placements, and a clear error naming the flag for everything else."""

from __future__ import annotations

import pytest
import torch

from reasonact.devices import Placement, check_supported, placement


def test_cpu_placements_in_every_dtype() -> None:
    assert placement("cpu", "float32") == Placement(torch.device("cpu"), torch.float32)
    assert placement(" CPU ", "bfloat16").dtype == torch.bfloat16
    assert str(placement("cpu", "float16")) == "cpu float16"


@pytest.mark.parametrize(
    ("device", "dtype", "message"),
    [
        ("gpu", "float32", "--device: expected cpu, cuda, cuda:N or mps, received 'gpu'"),
        ("cpu:1", "float32", "--device: expected cpu, cuda, cuda:N or mps, received 'cpu:1'"),
        ("cpu", "fp8", "--dtype: expected one of float32, bfloat16, float16, received 'fp8'"),
        ("cpu", "int8", "--dtype: expected one of float32, bfloat16, float16, received 'int8'"),
    ],
)
def test_unknown_devices_and_dtypes_are_refused(device: str, dtype: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        placement(device, dtype)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_is_refused_naming_the_flag(device: str) -> None:
    with pytest.raises(ValueError, match=rf"--device: '{device}' needs a CUDA GPU, but torch sees none"):
        placement(device, "float32")
    with pytest.raises(ValueError, match=r"policy\.device: 'cuda'"):
        placement("cuda", "float32", device_flag="policy.device")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="checks the error on a machine without MPS")
def test_mps_without_metal_is_refused() -> None:
    with pytest.raises(ValueError, match="--device: 'mps' needs Apple-silicon Metal support"):
        placement("mps", "float32")


def test_bfloat16_on_a_gpu_without_bfloat16_kernels_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # No pre-Ampere GPU here: stand in for its two answers (the CPU path below is real).
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100")
    with pytest.raises(ValueError, match=r"--dtype: bfloat16 is not supported by cuda:0 \(Tesla V100\)"):
        check_supported(torch.device("cuda", 0), torch.bfloat16)
    check_supported(torch.device("cuda", 0), torch.float16)
    check_supported(torch.device("cpu"), torch.bfloat16)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "no-such-policy", "--device", "gpu"], "--device: expected cpu, cuda, cuda:N or mps, received 'gpu'"),
        (["serve", "no-such-policy", "--dtype", "fp8"], "--dtype: expected one of float32, bfloat16, float16"),
        (["vla", "eval", "no/such/run", "--dtype", "double"], "--dtype: expected one of float32, bfloat16, float16"),
        (["vla", "bench", "tiny", "--device", "tpu"], "--device: expected cpu, cuda, cuda:N or mps, received 'tpu'"),
        (["vla", "train", "tiny", "--device", "gpu", "--out", "no/such/dir"], "--device: expected cpu, cuda, cuda:N"),
    ],
)
def test_commands_refuse_a_bad_placement_before_loading_anything(argv: list[str], message: str, capsys) -> None:
    # the policy / checkpoint / run directory named do not exist: the placement error has to come first
    from reasonact.cli import main

    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err
