"""The shared weights cache: a complete cache is used as is; the first use converts the packaged
GGUF once, says so on stderr, and leaves a directory transformers loads."""

from __future__ import annotations

import pytest

from reasonact import weights


def test_complete_cache_is_used_without_converting(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("REASONACT_CACHE", str(tmp_path))
    target = tmp_path / weights.GEMMA3_270M
    target.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (target / name).write_text("{}")
    monkeypatch.setattr(weights, "_convert_gguf", lambda target: pytest.fail("converted a complete cache"))
    assert weights.gemma3_270m_dir() == target
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_first_use_converts_the_gguf_once_with_a_message(tmp_path, monkeypatch, capsys) -> None:
    from transformers import AutoConfig

    monkeypatch.setenv("REASONACT_CACHE", str(tmp_path))
    path = weights.gemma3_270m_dir()
    err = capsys.readouterr().err
    assert "converting Gemma 3 270M" in err and "cached in" in err
    assert (path / "model.safetensors").stat().st_size > 500_000_000  # fp32: dequantised, not the 4-bit GGUF
    assert AutoConfig.from_pretrained(path).model_type.startswith("gemma3")
    assert weights.gemma3_270m_dir() == path and capsys.readouterr().err == ""  # second use: no conversion
    assert len(weights.load_gemma_tokenizer()) >= 262_144
