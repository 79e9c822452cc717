"""GRPO: group advantages, the clipped + KL loss by hand, bad rewards counted, KL guard, exact resume,
and a backend whose weights change dropping its prefix-KV store."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from reasonact.reasoning.backends.hf import HFBackend
from reasonact.reasoning.mdp import State, render
from reasonact.reasoning.tasks import make_task
from reasonact.runs import Run
from reasonact.training.grpo import GRPOConfig, GRPOTrainer, group_advantages, grpo_loss, process_advantages
from reasonact.training.rollouts import sample_rollouts, sample_solutions
from reasonact.training.run_loop import OptimConfig
from reasonact.training.sequences import (
    IGNORE,
    load_policy,
    resolve_policy,
    shared_prompt_logprobs,
    token_logprobs,
)


def tiny(tmp_path: Path, **overrides) -> GRPOConfig:
    base = dict(questions=2, group=4, pool=12, max_steps=4, optim=OptimConfig(steps=2, lr=1e-4, warmup=0.0))
    return GRPOConfig(root=tmp_path, **(base | overrides))


def test_group_advantages() -> None:
    assert group_advantages([1.0, 0.0, 0.0, 1.0]) == [1.0, -1.0, -1.0, 1.0]
    assert group_advantages([1.0, 1.0, 1.0]) == [0.0, 0.0, 0.0]  # no signal in a flat group
    # process: rewards of all steps normalised together (mean 0.5, std 0.5), advantage = Σ of later steps
    adv = process_advantages([[1.0, 0.0], [1.0, 1.0, 0.0, 0.0]], [[2, 3], [1, 2, 3, 4]])
    assert adv == [[0.0, 0.0, -1.0], [0.0, -1.0, -2.0, -1.0]]
    own = process_advantages([[1.0, 0.0], [1.0, 1.0, 0.0, 0.0]], [[2, 3], [1, 2, 3, 4]], to_go=False)
    assert own == [[1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]]  # each step its own normalised reward


def test_grpo_loss_clips_and_penalises_kl() -> None:
    mask = torch.ones(1, 2)
    logps = torch.log(torch.tensor([[0.5, 0.5]]))
    old = torch.log(torch.tensor([[0.25, 0.5]]))  # ratios 2 and 1
    adv = torch.tensor([[1.0, 1.0]])
    loss, metrics = grpo_loss(logps, old, logps, adv, mask, epsilon=0.2, beta=0.1)
    assert loss.item() == pytest.approx(-(1.2 + 1.0) / 2)  # ratio 2 clipped to 1.2; π = π_ref: KL 0
    assert metrics["clip_fraction"] == 0.5 and metrics["kl"] == pytest.approx(0.0)
    ref = torch.log(torch.tensor([[0.25, 0.5]]))
    loss_kl, metrics = grpo_loss(logps, logps, ref, torch.zeros(1, 2), mask, epsilon=0.2, beta=1.0)
    k3 = 0.5 - math.log(0.5) - 1  # π_ref/π − log(π_ref/π) − 1 on the first token
    assert metrics["kl"] == pytest.approx(k3 / 2) and loss_kl.item() == pytest.approx(k3 / 2)


def test_config_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="group"):
        GRPOConfig(group=1)
    with pytest.raises(ValueError, match="epsilon"):
        GRPOConfig(epsilon=1.5)


def test_bad_rewards_are_counted_and_flat_steps_skipped(tmp_path: Path) -> None:
    calls = []

    def flaky(rollout) -> float | None:
        calls.append(rollout)
        return [None, float("nan"), 1.0, 0.0][len(calls) % 4]

    trainer = GRPOTrainer(tiny(tmp_path), reward=flaky)
    rollouts, advantages, counts = trainer.step_batch(0)
    assert counts["bad_rewards"] == 4 and len(rollouts) == 4  # 2 questions × 4 samples, half unusable
    assert sorted({a for row in advantages for a in row}) == [-1.0, 1.0]
    silent = GRPOTrainer(tiny(tmp_path, beta=0.0, name="flat"), reward=lambda r: None)
    loss, metrics = silent.loss_fn(0)
    assert loss is None and metrics["bad_rewards"] == 8


def test_kl_blow_up_stops_before_the_update(tmp_path: Path) -> None:
    config = tiny(tmp_path, max_kl=1e-12, optim=OptimConfig(steps=3, lr=5e-2, warmup=0.0, checkpoint_every=1))
    alternating = iter(range(1_000_000))  # every group has signal, so the first update moves π off π_ref
    with pytest.raises(FloatingPointError, match="kl: mean KL"):
        GRPOTrainer(config, reward=lambda r: float(next(alternating) % 2)).train()
    assert Run(tmp_path / "grpo").latest() is not None  # the first step's checkpoint survives


class Crash(Exception):
    """Stands for a killed process."""


def test_grpo_resumes_exactly(tmp_path: Path) -> None:
    config = tiny(tmp_path, optim=OptimConfig(steps=3, lr=1e-3, warmup=0.0, checkpoint_every=1))
    straight = GRPOTrainer(config)
    straight.train()
    crashing = GRPOTrainer(tiny(tmp_path / "b", optim=config.optim))
    original = crashing.loss_fn

    def loss_fn(step: int):
        if step == 2:
            raise Crash
        return original(step)

    crashing.loss_fn = loss_fn
    with pytest.raises(Crash):
        crashing.train()
    resumed = GRPOTrainer(tiny(tmp_path / "b", optim=config.optim)).train()
    a, _ = load_policy(tmp_path / "grpo" / "policy")
    b, _ = load_policy(resumed)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    drop = {"step_s", "generate_s"}
    clean = [{k: v for k, v in m.items() if k not in drop} for m in Run(tmp_path / "grpo").metrics()]
    assert clean == [{k: v for k, v in m.items() if k not in drop} for m in Run(tmp_path / "b" / "grpo").metrics()]


def test_changed_weights_drop_the_prefix_kv_store() -> None:
    path = resolve_policy("tiny", "arithmetic")
    model, tokenizer = load_policy(path)
    backend = HFBackend(model, tokenizer, threads=1)
    states = [State(p) for p in make_task("arithmetic", "easy").generate("val", 2)]
    backend.generate_steps(states, 2, 8, seed=1)
    assert backend.store.entries
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.05)  # a training step
    stale = backend.generate_steps(states, 2, 8, seed=1)
    backend.weights_changed()
    assert not backend.store.entries and backend.store.tokens == 0
    fresh_model, _ = load_policy(path)
    with torch.no_grad():
        for p in fresh_model.parameters():
            p.mul_(1.05)
    reference = HFBackend(fresh_model, tokenizer, kv_store_tokens=0, threads=1).generate_steps(states, 2, 8, seed=1)
    dropped = backend.generate_steps(states, 2, 8, seed=1)
    assert tokens(dropped) == tokens(reference) and gap(dropped, reference) < 1e-4
    assert gap(stale, reference) > 1e-3  # without dropping it, the old weights' KV leaks into generation


def tokens(generations) -> list:
    return [[g.token_ids for g in row] for row in generations]


def gap(a, b) -> float:
    """Largest log-prob difference over tokens both generations share."""
    pairs = [
        (x, y)
        for ra, rb in zip(a, b, strict=True)
        for ga, gb in zip(ra, rb, strict=True)
        for x, y in zip(ga.logprobs, gb.logprobs, strict=False)
    ]
    return max(abs(x - y) for x, y in pairs)


def test_whole_solutions_match_step_by_step_sampling_greedily() -> None:
    """One decode per solution (`sample_solutions`) stops where step-by-step sampling stops: at T = 0
    the same steps, tokens, step ends and failures, and the same log-probs up to float error."""
    model, tokenizer = load_policy(resolve_policy("tiny", "arithmetic"))
    backend = HFBackend(model, tokenizer, threads=1)
    problems = make_task("arithmetic", "easy").generate("val", 12, seed=4)
    for max_steps, max_step_tokens in ((6, 24), (2, 5)):  # the second cuts steps and solutions short
        steps = sample_rollouts(backend, problems, 1, max_steps, max_step_tokens, 0.0)
        whole = sample_solutions(backend, problems, 1, max_steps, max_step_tokens, 0.0)
        for (a,), (b,) in zip(steps, whole, strict=True):
            assert (a.steps, a.token_ids, a.step_ends, a.failure) == (b.steps, b.token_ids, b.step_ends, b.failure)
            assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs, strict=True)) < 1e-4
    assert {r.failure for (r,) in whole} >= {"length"}  # the short budget really cut solutions


def test_shared_prompt_completion_only_loss_equals_the_full_sequence_loss(tmp_path: Path) -> None:
    """The loss with each prompt run once for its group and logits only at completion positions equals
    the loss of the previous layout (right-padded prompt + completion, logits everywhere) ≤ 1e-6."""
    trainer = GRPOTrainer(tiny(tmp_path, questions=3, group=4))
    rollouts, advantages, _ = trainer.step_batch(0)
    advantages = [[(i % 3 - 1.0) * (1 + t / 10) for t in range(len(row))] for i, row in enumerate(advantages)]
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(1e-3 * torch.randn_like(p))  # π ≠ π_old ≠ π_ref, so ratio and KL terms are exercised
    prompts = [trainer.tokenizer(render(r.problem))["input_ids"] for r in rollouts]
    width = max(len(p) + len(r.token_ids) for p, r in zip(prompts, rollouts, strict=True))
    ids = torch.full((len(rollouts), width), trainer.tokenizer.pad_token_id)
    labels = torch.full((len(rollouts), width), IGNORE)
    old, adv = torch.zeros(len(rollouts), width), torch.zeros(len(rollouts), width)
    for i, (p, r) in enumerate(zip(prompts, rollouts, strict=True)):
        a, b = len(p), len(p) + len(r.token_ids)
        ids[i, :b], labels[i, a:b] = torch.tensor(p + r.token_ids), torch.tensor(r.token_ids)
        old[i, a:b], adv[i, a:b] = torch.tensor(r.logprobs), torch.tensor(advantages[i])
    logps, mask = token_logprobs(trainer.model, ids, labels)
    with torch.no_grad():
        ref, _ = token_logprobs(trainer.reference, ids, labels)
    c = trainer.config
    before, before_metrics = grpo_loss(logps, old[:, 1:], ref, adv[:, 1:], mask.float(), c.epsilon, c.beta)
    after, after_metrics = trainer.loss(*trainer.batch(rollouts, advantages))
    assert abs(before.item() - after.item()) <= 1e-6 and abs(before.item()) > 1e-3
    assert after_metrics["kl"] > 0 and abs(before_metrics["kl"] - after_metrics["kl"]) <= 1e-6
    (grad_before,) = torch.autograd.grad(before, trainer.model.model.embed_tokens.weight)
    (grad_after,) = torch.autograd.grad(after, trainer.model.model.embed_tokens.weight)
    assert torch.allclose(grad_before, grad_after, atol=1e-6)


def test_skip_flat_drops_groups_without_signal(tmp_path: Path) -> None:
    every_other = iter(range(1_000))
    trainer = GRPOTrainer(tiny(tmp_path, questions=4, skip_flat=True), reward=lambda r: float(next(every_other) < 8))
    rollouts, _, counts = trainer.step_batch(0)  # first two groups all 1, last two all 0
    assert counts["flat_groups"] == 4 and rollouts == []


@pytest.mark.parametrize(("generation", "temperature"), [("solutions", 1.0), ("steps", 1.0), ("solutions", 0.7)])
def test_first_update_is_on_policy(tmp_path: Path, generation: str, temperature: float) -> None:
    """Before the first update π = π_old = π_ref: the sampler's log-probs equal the training forward's
    (ρ = 1 up to float error, nothing clipped), the KL is exactly 0, and the loss's gradient is the
    plain policy gradient −∇ mean_i (1/|o_i|) Σ_t Â_i,t log π_T(o_i,t) of the tempered policy
    π_T = softmax(logits / T) that drew the samples (at T = 0.7 the gradient of log π_1 differs)."""
    config = tiny(tmp_path, questions=3, generation=generation, temperature=temperature)
    trainer = GRPOTrainer(config, reward=lambda r: float(len(r.token_ids) % 2))  # mixed rewards in every group
    rollouts, advantages, _ = trainer.step_batch(0)
    prompts, rows, completions, old, adv = trainer.batch(rollouts, advantages)
    loss, metrics = trainer.loss(prompts, rows, completions, old, adv)
    assert metrics["max_ratio_dev"] < 1e-4 and metrics["clip_fraction"] == 0 and metrics["kl"] == 0
    pad = trainer.tokenizer.pad_token_id
    logps, mask = shared_prompt_logprobs(trainer.model, prompts, rows, completions, pad, temperature=temperature)
    assert (adv * mask).abs().sum() > 0
    pg = -((adv * logps).sum(-1) / mask.sum(-1)).mean()
    weight = trainer.model.model.embed_tokens.weight
    (grad,), (expected,) = torch.autograd.grad(loss, weight), torch.autograd.grad(pg, weight)
    assert expected.abs().max() > 1e-4 and torch.allclose(grad, expected, atol=1e-5)


def test_dropout_does_not_make_the_first_update_off_policy(tmp_path: Path) -> None:
    """A starting policy with dropout: `fit` puts the model in train mode before every step, but the
    samples, π_old and the training forward must all be the deterministic policy, else ρ ≠ 1 before
    any update and the KL to π_ref is noise (before the fix: KL 967 at step 0, the blow-up guard tripped)."""
    model, tokenizer = load_policy(resolve_policy("tiny", "arithmetic"))
    model.config.attention_dropout = 0.3
    model.save_pretrained(tmp_path / "dropout")
    tokenizer.save_pretrained(tmp_path / "dropout")
    trainer = GRPOTrainer(tiny(tmp_path, init=str(tmp_path / "dropout")), reward=lambda r: float(len(r.token_ids) % 2))
    assert trainer.model.model.layers[0].self_attn.attention_dropout == 0.3
    trainer.model.train()  # as `fit` leaves it before calling the loss
    loss, metrics = trainer.loss_fn(0)
    assert loss is not None and metrics["max_ratio_dev"] < 1e-4 and metrics["kl"] < 1e-10


def test_the_tempered_policy_is_what_the_loss_scores(tmp_path: Path) -> None:
    """At T = 0.7, π, π_old and π_ref are softmax(logits / T): after the weights move, ρ is exactly 1
    (π_old is the policy that sampled, one update per batch) and the logged KL is the k3 estimator
    between the tempered policy and the tempered reference, computed here by hand from full forwards
    over [prompt | completion]; the untempered KL is another number."""
    trainer = GRPOTrainer(tiny(tmp_path, questions=3, temperature=0.7), reward=lambda r: float(len(r.token_ids) % 2))
    rollouts, advantages, _ = trainer.step_batch(0)
    batch = trainer.batch(rollouts, advantages)
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(3e-3 * torch.randn_like(p, generator=torch.Generator().manual_seed(p.numel())))
    _, metrics = trainer.loss(*batch)
    assert metrics["max_ratio_dev"] == 0 and metrics["clip_fraction"] == 0

    def kl_at(temperature: float) -> float:
        models, total, count = (trainer.model, trainer.reference), 0.0, 0
        for r in rollouts:
            prompt = trainer.tokenizer(render(r.problem))["input_ids"]
            ids = torch.tensor([prompt + r.token_ids])
            with torch.no_grad():  # position t scores token t + 1: the completion's tokens, (c, V) each
                pi, ref = (m(input_ids=ids).logits[0, len(prompt) - 1 : -1] / temperature for m in models)
            target = torch.tensor(r.token_ids)[:, None]
            log_ratio = (ref.log_softmax(-1) - pi.log_softmax(-1)).gather(-1, target)[:, 0]  # log π_ref/π per token
            total += float((log_ratio.exp() - log_ratio - 1).sum())
            count += len(r.token_ids)
        return total / count

    assert metrics["kl"] > 1e-4 and abs(metrics["kl"] - kl_at(0.7)) < 1e-6 * max(1.0, metrics["kl"])
    assert abs(kl_at(1.0) - kl_at(0.7)) > 1e-2 * metrics["kl"]  # the temperature matters to this number
