"""Agent fine-tuning: outcome-filtered SFT data, GRPO over whole episodes, the before/after study."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from reasonact.agents.agent import FLOWS, EpisodeConfig, run_episode
from reasonact.agents.envs import make_env
from reasonact.agents.envs.base import Step, TextEnv
from reasonact.agents.finetune import EpisodeGRPO, EpisodeGRPOConfig, sft_examples, teacher_traces
from reasonact.agents.policy import ScriptedLM, clip_prompt
from reasonact.training.run_loop import OptimConfig
from reasonact.training.sequences import save_policy, token_logprobs


def test_sft_examples_come_only_from_successful_episodes(rule_lm):
    env = make_env("problems:arithmetic", split="train")
    good = teacher_traces(("problems:arithmetic",), "structured", 3, EpisodeConfig())
    wrong = ScriptedLM(lambda p: "answer 999999")
    bad = [run_episode(env, FLOWS["structured"], wrong, s, "structured") for s in (0, 1)]
    assert all(t.success for t in good) and not any(t.success for t in bad)
    examples = sft_examples([*bad, *good], window=200)
    assert len(examples) == sum(len(t.events) for t in good) == 12  # plan, think, use_tool, act × 3
    assert all(len(e.prompt) <= 200 and e.completion.endswith("\n") and not e.eos for e in examples)
    assert {e.completion for e in examples} >= {" compute the value, then answer\n", " use the calculator\n"}
    assert not any("999999" in e.completion for e in examples)


def test_clip_prompt_keeps_whole_lines_from_the_end():
    prompt = "first line\nsecond\nthird\nAction:"
    assert clip_prompt(prompt, None) == clip_prompt(prompt, 100) == prompt
    assert clip_prompt(prompt, len("third\nAction:")) == "third\nAction:"
    assert clip_prompt(prompt, len("third\nAction:") + 2) == "third\nAction:"  # never half a line
    assert clip_prompt(prompt, 4) == "ion:"  # a last line longer than the window is cut


class ParityEnv(TextEnv):
    """One action per episode; success when most of its characters have even codes (about half of a
    random LM's lines), so every token of a line carries the outcome's signal."""

    name = "parity"
    max_steps = 1
    action_forms = "any line"

    def reset(self, seed: int) -> dict[str, str]:
        return {"agent": "Say anything."}

    def task(self, role: str) -> str:
        return "write one line"

    def instructions(self, role: str) -> str:
        return "Write a line."

    def parse_action(self, text: str) -> str | None:
        return text or None

    def step(self, role: str, action: str) -> Step:
        even = sum(ord(c) % 2 == 0 for c in action)
        return Step("done", done=True, success=2 * even > len(action))


@pytest.fixture
def random_policy(tmp_path) -> Path:
    from reasonact.reasoning.step_lm import build_step_lm, char_tokenizer

    tokenizer = char_tokenizer()
    return save_policy(build_step_lm(32, 1, 2, len(tokenizer), seed=0), tokenizer, tmp_path / "random")


def test_grpo_over_episodes_moves_log_probs_towards_rewarded_episodes(random_policy, tmp_path):
    config = EpisodeGRPOConfig(
        envs=("parity",), flow="flat", init=str(random_policy), window=None, pool=1, questions=1, group=16,
        max_rows=64, beta=0.0, optim=OptimConfig(steps=1, lr=3e-2, warmup=0.0), root=tmp_path, name="grpo",
    )  # fmt: skip
    trainer = EpisodeGRPO(config, envs={"parity": ParityEnv()})
    rows, metrics = trainer.sample(0)
    assert metrics["flat_groups"] == 0 and 0 < metrics["reward"] < 1  # both outcomes in the group
    ids, labels, old, _ = trainer.tensors(rows)
    won = torch.tensor([r.advantage > 0 for r in rows])
    policy = trainer.train()
    trainer.model.load_state_dict(type(trainer.model).from_pretrained(policy).state_dict())
    with torch.no_grad():
        new, mask = token_logprobs(trainer.model, ids, labels)  # (b, s-1)
    gain = ((new - old) * mask).sum(-1) / mask.sum(-1)  # (b,) mean per-token log-prob change
    assert gain[won].mean() > 0.05 and gain[~won].mean() < -0.05  # rewarded episodes up, the others down
    assert torch.allclose((old * mask).sum(), (token_logprobs(trainer.reference, ids, labels)[0]).sum(), atol=1e-3)


@pytest.mark.slow
def test_grpo_over_episodes_raises_the_probability_of_success_on_a_trivial_env(random_policy, tmp_path):
    config = EpisodeGRPOConfig(
        envs=("parity",), flow="flat", init=str(random_policy), window=None, pool=4, questions=2, group=8,
        max_rows=64, beta=0.0, optim=OptimConfig(steps=6, lr=2e-2, warmup=0.0, checkpoint_every=6),
        root=tmp_path, name="grpo",
    )  # fmt: skip
    trainer = EpisodeGRPO(config, envs={"parity": ParityEnv()})
    prompt = trainer.sample(0)[0][0].call.prompt
    ids = torch.tensor([trainer.tokenizer(prompt)["input_ids"]])  # (1, s)
    texts = [trainer.tokenizer.decode([i]) for i in range(len(trainer.tokenizer))]
    even = torch.tensor([len(t) == 1 and ord(t) % 2 == 0 for t in texts])  # (V,) characters with even codes

    def p_even() -> float:  # P(the line's first character has an even code)
        with torch.no_grad():
            return float(torch.softmax(trainer.model(input_ids=ids).logits[0, -1], -1)[even].sum())

    before = p_even()
    trainer.train()
    assert p_even() > before + 0.05, (before, p_even())
    assert len((tmp_path / "grpo" / "metrics.jsonl").read_text().splitlines()) == 6


def test_episode_grpo_config_names_bad_fields():
    with pytest.raises(ValueError, match="flow: expected one of"):
        EpisodeGRPOConfig(flow="tree")
    with pytest.raises(ValueError, match="group: expected 2 <= G <= 64"):
        EpisodeGRPOConfig(group=1)


@pytest.mark.slow
@pytest.mark.smoke
def test_study_cli_fine_tuning_pipeline_writes_the_report_keys(tmp_path):
    from reasonact.cli import main

    out = tmp_path / "agent_study.json"
    main(["agent", "study", "tiny", "--seeds", "1", "--out", str(out), "--traces", str(tmp_path / "traces"),
          "--finetune.root", str(tmp_path / "runs")])  # fmt: skip
    summary = json.loads(out.read_text())
    assert summary["seeds"] == [0] and summary["finetune_seeds"] == [0]
    assert summary["structured_minus_flat"] == summary["structured_success"] - summary["flat_success"]
    for flow in ("structured", "flat"):
        assert set(summary[flow]) == {"teacher", "before", "after_sft", "after_grpo"}
        assert summary[flow]["teacher"] == 1.0  # the rule-based expert solves the held-out problem
        assert summary["stages"]["after_grpo"][flow]["episodes"] == 1
    assert (tmp_path / "runs" / "grpo_flat_seed0" / "policy" / "config.json").exists()
    assert (tmp_path / "traces" / "after_sft_seed0" / "problems_arithmetic" / "flat" / "seed_0.json").exists()
    assert "| problems:arithmetic | structured |" in out.with_suffix(".md").read_text()
