"""SFT on the run layer: the loss goes down on its data, a killed run resumes bit for bit, bad input is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from reasonact.reasoning.mdp import render, solution_text
from reasonact.reasoning.tasks import make_task
from reasonact.runs import Run
from reasonact.training.run_loop import OptimConfig, fit
from reasonact.training.sequences import Example, completion_logprobs, encode, load_policy, resolve_policy
from reasonact.training.sft import SFTConfig, train_sft


def examples(n: int = 8) -> list[Example]:
    return [
        Example(render(p), solution_text(p.steps)) for p in make_task("arithmetic", "easy").generate("val", n, seed=3)
    ]


def test_encode_masks_the_prompt_and_appends_eos() -> None:
    _, tokenizer = load_policy(resolve_policy("tiny", "arithmetic"))
    ids, labels = encode(tokenizer, [Example("Question: a\n", "b\n"), Example("Q\n", "xy\n", eos=False)])
    assert labels[0].tolist().count(-100) == ids.shape[1] - 3  # "b", "\n", <eos> are the only targets
    assert labels[0, labels[0] != -100].tolist() == [*tokenizer("b\n", add_special_tokens=False)["input_ids"], 2]
    assert (labels[1] != -100).sum() == 3 and ids[1, -1] == tokenizer.pad_token_id
    with pytest.raises(ValueError, match="examples"):
        encode(tokenizer, [])
    with pytest.raises(ValueError, match=r"examples\[0\].completion"):
        encode(tokenizer, [Example("Q\n", "", eos=False)])


def test_sft_raises_the_likelihood_of_its_completions(tmp_path: Path) -> None:
    data = examples()
    model, tokenizer = load_policy(resolve_policy("tiny", "arithmetic"))
    ids, labels = encode(tokenizer, data)
    with torch.no_grad():
        before = completion_logprobs(model, ids, labels)
    config = SFTConfig(batch=8, optim=OptimConfig(steps=8, lr=1e-3, checkpoint_every=4), root=tmp_path)
    out = train_sft(config, data)
    trained, _ = load_policy(out)
    with torch.no_grad():
        after = completion_logprobs(trained, ids, labels)
    assert after.mean() > before.mean() + 0.05
    assert [m["step"] for m in Run(tmp_path / "sft").metrics()] == list(range(1, 9))
    assert (tmp_path / "sft" / "plots" / "metrics.png").exists()
    assert train_sft(config, data) == out  # a finished run returns its policy without training again
    with pytest.raises(ValueError, match="data: differs"):
        train_sft(config, data[:4])


class Crash(Exception):
    """Stands for a killed process."""


def _toy(seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    return torch.nn.Linear(4, 1), torch.randn(32, 4)  # model, inputs (32, 4)


def test_fit_resumes_an_interrupted_run_exactly(tmp_path: Path) -> None:
    optim = OptimConfig(steps=6, lr=1e-2, checkpoint_every=2)

    def run(name: str, crash_at: int | None) -> tuple[torch.nn.Module, list[dict]]:
        model, x = _toy()
        crashed: list[int] = []

        def loss_fn(step: int):
            if step == crash_at and not crashed:
                crashed.append(step)
                raise Crash
            noise = torch.randn(8)  # global RNG: restored from the checkpoint on resume
            pick = torch.arange(8) + 4 * (step % 4)
            return ((model(x[pick])[:, 0] - noise) ** 2).mean(), {"noise0": float(noise[0])}

        torch.manual_seed(1234)
        if crash_at is not None:
            with pytest.raises(Crash):
                fit(Run.open(tmp_path, name, optim), model, optim, loss_fn)
            model, _ = _toy(seed=99)  # a fresh process: other weights and RNG state, restored from disk
        fit(Run.open(tmp_path, name, optim, resume=True), model, optim, loss_fn)
        return model, [{k: v for k, v in m.items() if k != "step_s"} for m in Run(tmp_path / name).metrics()]

    straight, straight_metrics = run("straight", None)
    resumed, resumed_metrics = run("resumed", crash_at=3)
    assert resumed_metrics == straight_metrics
    assert torch.equal(resumed.weight, straight.weight) and torch.equal(resumed.bias, straight.bias)


def test_fit_stops_on_a_non_finite_loss_and_keeps_the_checkpoint(tmp_path: Path) -> None:
    model, x = _toy()
    optim = OptimConfig(steps=4, lr=1e-2, checkpoint_every=1)

    def loss_fn(step: int):
        loss = model(x).mean()
        return (loss * float("nan") if step == 2 else loss), {}

    run = Run.open(tmp_path, "nan", optim)
    with pytest.raises(FloatingPointError, match="loss: expected a finite value at step 2"):
        fit(run, model, optim, loss_fn)
    assert run.latest().name == "step_000000002"
    assert json.loads((run.path / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 2


def test_optim_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="steps"):
        OptimConfig(steps=0)
    with pytest.raises(ValueError, match="lr"):
        OptimConfig(lr=0.0)
    with pytest.raises(ValueError, match="warmup"):
        OptimConfig(warmup=1.0)


def test_loss_equals_trl_sft_trainer_on_the_same_pairs(tmp_path: Path) -> None:
    trl = pytest.importorskip("trl")
    from datasets import Dataset

    model, tokenizer = load_policy(resolve_policy("tiny", "arithmetic"))
    data = examples(2)
    args = trl.SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, use_cpu=True, report_to=[])
    dataset = Dataset.from_list([{"prompt": e.prompt, "completion": e.completion} for e in data])
    trainer = trl.SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    batch = next(iter(trainer.get_train_dataloader()))
    ids, labels = encode(tokenizer, data)
    assert batch["labels"][:, : ids.shape[1]].tolist() == labels.tolist()  # same tokens, same completion mask
    with torch.no_grad():
        ours = model(input_ids=ids, labels=labels).loss
        theirs = trainer.compute_loss(model, batch)
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-5)
