"""The real pretrained Gemma 3 270M LM loads into our decoder and reproduces transformers' logits."""

from __future__ import annotations

import pytest
import torch

from reasonact.vla.config import GEMMA270M
from reasonact.vla.model import build_model


@pytest.mark.slow
@pytest.mark.smoke
def test_gemma3_270m_backbone_matches_transformers_logits() -> None:
    from transformers import AutoModelForCausalLM

    from reasonact.weights import gemma3_270m_dir, load_gemma_tokenizer

    model = build_model(GEMMA270M.with_variant("ki")).eval()
    tokenizer = load_gemma_tokenizer()
    ids = torch.tensor([tokenizer.encode("The capital of France is Paris. The robot picks up the red")])
    n = ids.shape[1]
    with torch.no_grad():
        # causal: token 0 is the prefix, every later token its own autoregressive block
        hidden, _ = model.lm(model.lm.embed_tokens(ids), torch.arange(n)[None], torch.arange(n)[None],
                             torch.ones(1, n, dtype=torch.bool))  # fmt: skip
        ours = model.lm.logits(hidden)[..., : GEMMA270M.lm.vocab_size]
        reference = AutoModelForCausalLM.from_pretrained(gemma3_270m_dir(), dtype=torch.float32).eval()
        theirs = reference(ids).logits
    torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=2e-3)
    assert tokenizer.decode(int(ours[0, -1].argmax())).strip()  # a real next-token prediction
    # the extra rows (state/FAST/BOA/EOA) exist beyond the text vocabulary
    assert model.lm.embed.weight.shape[0] == GEMMA270M.embed_vocab > GEMMA270M.lm.vocab_size


@pytest.mark.slow
def test_gemma270m_vla_trains_and_samples_with_the_real_tokenizer_and_text_state() -> None:
    from reasonact.actions import FastConfig, FastTokenizer
    from reasonact.data.trajectories import chunk_trajectories, smooth_trajectories
    from reasonact.vla.contract import Observation
    from reasonact.vla.prompt import PromptTokenizer
    from reasonact.weights import load_gemma_tokenizer

    torch.manual_seed(0)
    cfg = GEMMA270M
    chunks = chunk_trajectories(smooth_trajectories(60, 150, cfg.action_dim, 0), cfg.horizon, 10)
    model = build_model(cfg, FastTokenizer.fit(chunks, FastConfig(vocab_size=cfg.fast_vocab)))
    tokenizer = load_gemma_tokenizer()
    state = torch.linspace(-1, 1, cfg.state_dim)[None]
    tokens, mask = PromptTokenizer(cfg, tokenizer)(["pick up the red cube"], state.numpy())
    assert "State: 0 36 73 109 146 182 219 255;" in tokenizer.decode(tokens[0][mask[0]])
    size = cfg.vision.image_size
    obs = Observation({"base": torch.zeros(1, size, size, 3, dtype=torch.uint8)}, state, tokens, mask)
    losses = model.compute_loss(obs, torch.tensor(chunks[:1], dtype=torch.float32))
    assert set(losses) == {"ce", "flow", "loss"} and torch.isfinite(losses["loss"])
    assert model.sample_actions(obs, steps=2).shape == (1, cfg.horizon, cfg.action_dim)
