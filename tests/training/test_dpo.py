"""DPO: eq. 7 by hand, pairs from trees (sequence and step level), training moves the preference."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from reasonact.reasoning.mdp import render
from reasonact.reasoning.tasks import make_task
from reasonact.reasoning.tree import Tree
from reasonact.training.dpo import DPOConfig, Preference, clean_pairs, dpo_loss, train_dpo
from reasonact.training.dpo_pairs import PairStats, sequence_pairs, step_pairs
from reasonact.training.run_loop import OptimConfig
from reasonact.training.sequences import Example, completion_logprobs, encode, load_policy


def test_dpo_loss_is_eq_7() -> None:
    policy_w, policy_l = torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -1.0])
    ref_w, ref_l = torch.tensor([-2.0, -2.0]), torch.tensor([-2.0, -2.0])
    loss, metrics = dpo_loss(policy_w, policy_l, ref_w, ref_l, beta=0.5)
    margins = [0.5 * ((-1 + 2) - (-3 + 2)), 0.5 * ((-2 + 2) - (-1 + 2))]  # 1.0, -0.5
    expected = sum(-math.log(1 / (1 + math.exp(-m))) for m in margins) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert metrics["pair_accuracy"] == 0.5 and metrics["reward_margin"] == pytest.approx(0.25)
    same, _ = dpo_loss(ref_w, ref_l, ref_w, ref_l, beta=0.1)
    assert same.item() == pytest.approx(math.log(2), rel=1e-6)  # policy = reference: no preference yet


def arithmetic_tree() -> Tree:
    """Question 3 + 4 * 2 - 5 style tree: a right and a wrong first step, a right and a wrong answer."""
    task = make_task("arithmetic", "easy")
    problem = task.generate("val", 1, seed=11)[0]
    tree = Tree(problem)
    right = tree.add(0, problem.steps[0], [], -1.0)
    tree.add(0, "1 + 1", [], -2.0)  # wrong first step
    node = right
    for step in problem.steps[1:-1]:
        node = tree.add(node.id, step, [], -1.0)
    tree.add(node.id, problem.steps[-1], [], -1.0)  # right answer
    tree.add(node.id, "Answer: 12345", [], -1.0)  # wrong answer
    return tree


def test_pairs_from_a_tree() -> None:
    task = make_task("arithmetic", "easy")
    tree = arithmetic_tree()
    stats = PairStats()
    steps = step_pairs([tree], task, stats=stats)
    assert {(p.chosen, p.rejected) for p in steps} == {
        (tree.problem.steps[0] + "\n", "1 + 1\n"),
        (tree.problem.steps[-1] + "\n", "Answer: 12345\n"),
    }
    root_pair = next(p for p in steps if p.rejected == "1 + 1\n")
    assert root_pair.prompt == render(tree.problem) and not root_pair.eos
    seq = sequence_pairs([tree], task)
    assert len(seq) == 1 and seq[0].chosen.endswith(tree.problem.steps[-1] + "\n") and seq[0].eos
    assert seq[0].rejected.endswith("Answer: 12345\n")
    no_correct = Tree(tree.problem)
    no_correct.add(0, "Answer: 12345", [], -1.0)
    sequence_pairs([no_correct], task, stats=stats)
    assert stats.no_correct == 1 and stats.trees == 2


def test_degenerate_pairs_are_dropped_and_counted(tmp_path: Path) -> None:
    pairs = [Preference("Q\n", "a\n", "a\n"), Preference("Q\n", " ", "b\n"), Preference("Q\n", "a\n", "b\n")]
    kept, dropped = clean_pairs(pairs)
    assert kept == [pairs[2]] and dropped == 2
    with pytest.raises(ValueError, match=r"pairs: no usable preference pair \(2 dropped"):
        train_dpo(DPOConfig(root=tmp_path), pairs[:2])
    with pytest.raises(ValueError, match="beta"):
        DPOConfig(beta=0.0)


def test_step_dpo_prefers_the_accepted_step_after_training(tmp_path: Path) -> None:
    pairs = step_pairs([arithmetic_tree()], make_task("arithmetic", "easy"))
    config = DPOConfig(beta=0.5, batch=4, optim=OptimConfig(steps=6, lr=1e-3, checkpoint_every=3), root=tmp_path)
    out = train_dpo(config, pairs)

    def margin(path) -> torch.Tensor:
        model, tokenizer = load_policy(path)
        w = encode(tokenizer, [Example(p.prompt, p.chosen, p.eos) for p in pairs])
        lose = encode(tokenizer, [Example(p.prompt, p.rejected, p.eos) for p in pairs])
        with torch.no_grad():
            return completion_logprobs(model, *w) - completion_logprobs(model, *lose)  # (pairs,)

    from reasonact.training.sequences import resolve_policy

    assert (margin(out) > margin(resolve_policy("tiny", "arithmetic")) + 0.1).all()


def test_loss_equals_trl_dpo_trainer_on_the_same_pairs(tmp_path: Path) -> None:
    trl = pytest.importorskip("trl")
    from datasets import Dataset

    from reasonact.training.sequences import resolve_policy

    model, tokenizer = load_policy(resolve_policy("tiny", "arithmetic"))
    reference, _ = load_policy(resolve_policy("tiny", "arithmetic"))
    with torch.no_grad():
        for p in reference.parameters():
            p.mul_(0.97)  # π_ref ≠ π, or every loss is log 2
    pairs = sequence_pairs([arithmetic_tree(), arithmetic_tree()], make_task("arithmetic", "easy"))
    args = trl.DPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, beta=0.1, use_cpu=True, report_to=[])
    dataset = Dataset.from_list([{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs])
    trainer = trl.DPOTrainer(
        model=model, ref_model=reference, args=args, train_dataset=dataset, processing_class=tokenizer
    )
    batch = next(iter(trainer.get_train_dataloader()))
    w = encode(tokenizer, [Example(p.prompt, p.chosen) for p in pairs])
    lose = encode(tokenizer, [Example(p.prompt, p.rejected) for p in pairs])
    with torch.no_grad():
        theirs = trainer.compute_loss(model, batch)
        ours, _ = dpo_loss(
            completion_logprobs(model, *w),
            completion_logprobs(model, *lose),
            completion_logprobs(reference, *w),
            completion_logprobs(reference, *lose),
            beta=0.1,
        )
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-5)
