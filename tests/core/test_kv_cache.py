"""The preallocated KV buffer (`reasonact.kv_cache`): in-place writes at tensor columns, prefix fill with
sibling rows, one allocation per shape."""

from __future__ import annotations

import torch

from reasonact.kv_cache import KVBuffer, reuse_or_allocate


def test_write_puts_columns_in_place_and_fill_repeats_rows() -> None:
    buffer = KVBuffer(layers=2, batch=4, heads=1, capacity=5, head_dim=2, dtype=torch.float32, device="cpu")
    keys = buffer.keys[1]
    prefix = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 1, 3, 2)  # 2 prompts, 3 columns
    buffer.fill(1, prefix, -prefix, rows=2)  # each prompt's prefix serves its 2 sampled rows
    k, v = buffer.write(1, torch.tensor([4]), torch.full((4, 1, 1, 2), 7.0), torch.full((4, 1, 1, 2), 8.0))
    assert k is keys  # the same memory, written in place
    torch.testing.assert_close(k[:, :, :3], prefix.repeat_interleave(2, 0), rtol=0, atol=0)
    torch.testing.assert_close(v[:, :, :3], -prefix.repeat_interleave(2, 0), rtol=0, atol=0)
    assert (k[:, :, 3] == 0).all() and (k[:, :, 4] == 7).all() and (v[:, :, 4] == 8).all()
    assert (buffer.keys[0] == 0).all()  # other layers untouched


def test_a_buffer_is_reused_while_its_shape_stays() -> None:
    spec = dict(layers=2, batch=1, heads=1, capacity=8, head_dim=4, dtype=torch.float32, device=torch.device("cpu"))
    first = reuse_or_allocate(None, **spec)
    assert reuse_or_allocate(first, **spec) is first
    assert reuse_or_allocate(first, **(spec | {"capacity": 9})).capacity == 9
    assert reuse_or_allocate(first, **(spec | {"dtype": torch.bfloat16})).keys[0].dtype == torch.bfloat16
