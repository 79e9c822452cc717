"""The HF backend's preallocated decode cache (`backends/buffer_cache.py`): decoding through it computes what
transformers' own `DynamicCache` computes — on a Gemma 3 with sliding-window layers, past the window too —
while every step writes into the same memory."""

from __future__ import annotations

import torch
from transformers import DynamicCache, Gemma3ForCausalLM, Gemma3TextConfig

from reasonact.reasoning.backends.buffer_cache import buffer_cache


def _decode(model, cache, prompt: torch.Tensor, tokens: torch.Tensor) -> list[torch.Tensor]:
    """Feed `tokens` (b, t) one at a time after a prefilled prompt (b, L) → the logits (b, V) of each step."""
    b, length = prompt.shape
    mask = torch.ones(b, length, dtype=torch.long)
    out = []
    for t in range(tokens.shape[1]):
        mask = torch.cat([mask, torch.ones(b, 1, dtype=torch.long)], 1)
        logits = model(input_ids=tokens[:, t : t + 1], attention_mask=mask, cache=cache).logits[:, -1]
        out.append(logits)
    return out


@torch.inference_mode()
def test_buffer_cache_decodes_as_the_dynamic_cache_past_the_sliding_window() -> None:
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=1, head_dim=8, sliding_window=6, layer_types=["sliding_attention", "full_attention"] * 2,
        max_position_embeddings=128, pad_token_id=0,
    )  # fmt: skip
    model = Gemma3ForCausalLM(config).eval()
    prompt, tokens = torch.randint(3, 64, (2, 5)), torch.randint(3, 64, (4, 9))  # 2 prompts × 2 siblings
    reference_cache = DynamicCache(config=config)  # transformers' own: sliding layers drop old columns
    model(input_ids=prompt, cache=reference_cache)
    reference_cache.batch_repeat_interleave(2)
    reference = _decode(model, reference_cache, prompt.repeat_interleave(2, 0), tokens)
    prefill = DynamicCache()
    model(input_ids=prompt, cache=prefill)
    ours = buffer_cache(prefill, rows=2, new_tokens=9)
    memory = ours.layers[0].buffer.keys[0].data_ptr()
    decoded = _decode(model, ours, prompt.repeat_interleave(2, 0), tokens)
    for step, (a, b) in enumerate(zip(decoded, reference, strict=True)):  # 5 + 9 = 14 tokens > the window of 6
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=f"step {step}")
    assert ours.get_seq_length() == 14 and ours.layers[0].keys.shape == (4, 1, 14, 8)
    assert ours.layers[0].buffer.keys[0].data_ptr() == memory  # written in place, never reallocated
    config.sliding_window = 128  # the same weights without a binding window decode differently: it was applied
    unwindowed = Gemma3ForCausalLM(config).eval()
    unwindowed.load_state_dict(model.state_dict())
    full = DynamicCache(config=config)
    unwindowed(input_ids=prompt, cache=full)
    full.batch_repeat_interleave(2)
    assert not torch.allclose(_decode(unwindowed, full, prompt.repeat_interleave(2, 0), tokens)[-1], decoded[-1])
