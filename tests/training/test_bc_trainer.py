"""`reasonact bc train`: the CNN behaviour-cloning baseline on a MetaWorld dataset collected by the scripted
expert: it fits its training chunks, resumes exactly, loads as a policy (EMA weights) that acts in a vector env
with per-sub-env chunk queues, refuses unknown instructions, and `reasonact bc eval` runs it closed loop; on two
cameras it feeds each camera's image to its own slot of the shared trunk and evaluates with both."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reasonact.atomic import read_json
from reasonact.bc.model import BCConfig, CNNPolicy
from reasonact.bc.policy import evaluate, load_bc
from reasonact.data.collect import CollectConfig, collect
from reasonact.demo.closed_loop import SHIPPED as SHIPPED_POLICIES
from reasonact.envs import EnvConfig, make_vector_env
from reasonact.training.bc_config import BCTrainConfig
from reasonact.training.bc_trainer import BCTrainer
from reasonact.vla.evaluate import VLAEvalConfig

TASKS = ("reach-v3", "drawer-close-v3")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """2 MetaWorld tasks × 2 expert episodes of 40 steps, 32 px corner camera."""
    data = CollectConfig(tasks=TASKS, episodes_per_task=2, out=tmp_path_factory.mktemp("bc") / "data",
                         env=EnvConfig(image_size=32, max_steps=40), keep_failures=True)  # fmt: skip
    collect(data, progress=False)
    return data.out


def _config(dataset: Path, tmp_path: Path, **changes) -> BCTrainConfig:
    base = BCTrainConfig(datasets=(dataset,), out=tmp_path, name="bc", steps=40, batch_size=16, warmup=4,
                         log_every=1, save_every=20, eval_samples=32, lr=3e-3)  # fmt: skip
    return dataclasses.replace(base, **changes)


def test_fits_resumes_exactly_and_acts_as_a_policy(dataset: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cfg = _config(dataset, tmp_path)
    trainer = BCTrainer(cfg)
    assert trainer.model_cfg.instructions == tuple(sorted({e.task for e in trainer.episodes}))
    report = trainer.fit()
    losses = [m["loss"] for m in trainer.run.metrics()]
    assert len(losses) == 40 and np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert set(report) == {"mae", "mean_chunk_mae", "nearest_state_mae", "heldout_frames"}
    final = {k: v.clone() for k, v in trainer.state.state_dict().items()}
    (trainer.run.checkpoints / "latest").write_text("step_000000020")  # as if killed after the step-20 save
    resumed = BCTrainer(dataclasses.replace(cfg, resume=True))
    assert resumed.step == 20
    resumed.fit()
    assert [m["loss"] for m in resumed.run.metrics()] == losses
    for name, value in resumed.state.state_dict().items():
        assert torch.equal(value, final[name]), name

    run = tmp_path / "bc"
    policy = load_bc(run, n_action_steps=3)
    assert policy.metadata["weights"] == "ema" and policy.metadata["step"] == 40 and policy.spec.horizon == 8
    envs = make_vector_env([EnvConfig(task="reach-v3", image_size=64)] * 2, asynchronous=False)  # resized to 32
    obs, _ = envs.reset(seed=[0, 1])
    envs.close()
    for slot, seed in enumerate((0, 1)):
        policy.begin(slot, seed)
    first = policy.act_batch(obs, [0, 1])  # (2, 4): both sub-envs predicted in one batch
    assert first.shape == (2, 4) and np.isfinite(first).all() and [len(policy.queues[i]) for i in (0, 1)] == [2, 2]
    bad = {**obs, "instruction": np.array(["dance", "dance"])}
    policy.begin(0, 0)
    with pytest.raises(ValueError, match=r"instruction: \['dance'\] not among the policy's training instructions"):
        policy.act_batch(bad, [0])


def test_two_cameras_map_in_order_through_the_shared_trunk_and_evaluate(tmp_path: Path) -> None:
    """`--cameras topview corner`: the policy asks the robot for both, in that order; swapping the two images
    swaps the model's input slots, and changing one camera's image changes only its trunk input."""
    torch.set_num_threads(1)
    data = CollectConfig(tasks=("reach-v3",), episodes_per_task=2, out=tmp_path / "data", keep_failures=True,
                         env=EnvConfig(image_size=32, max_steps=24, cameras=("corner", "topview")))  # fmt: skip
    collect(data, progress=False)
    with pytest.raises(ValueError, match=r"cameras: \['side'\] not among the cameras \['corner', 'topview'\]"):
        BCTrainer(_config(data.out, tmp_path, cameras=("topview", "side")))
    with pytest.raises(ValueError, match=r"cameras: expected distinct cameras, received \['corner', 'corner'\]"):
        BCTrainer(_config(data.out, tmp_path, cameras=("corner", "corner")))
    trainer = BCTrainer(_config(data.out, tmp_path, cameras=("topview", "corner"), steps=3, save_every=3))
    assert trainer.model_cfg.num_cameras == 2 and trainer.model.pixels.mean.shape == (2, 32, 32, 3)
    trainer.fit()
    policy = load_bc(tmp_path / "bc")
    assert policy.spec.cameras == ("topview", "corner") and policy.model.config.num_cameras == 2

    obs = make_vector_env([dataclasses.replace(data.env, task="reach-v3")], asynchronous=False).reset(seed=[0])[0]
    images = obs["images"]  # robot camera → (1, 32, 32, 3) uint8
    seen = policy.pixels(images)  # (1, 2, 32, 32, 3): the model's camera slots
    swapped = policy.pixels({"corner": images["topview"], "topview": images["corner"]})
    assert torch.equal(seen[:, 0], torch.from_numpy(images["topview"])) and not torch.equal(seen[:, 0], seen[:, 1])
    assert torch.equal(swapped[:, 0], seen[:, 1]) and torch.equal(swapped[:, 1], seen[:, 0])
    trunk_inputs: list[torch.Tensor] = []  # (2, 3, 32, 32) per call: row i is camera slot i
    hook = policy.model.conv.register_forward_hook(lambda module, args, out: trunk_inputs.append(args[0]))
    for corner in (images["corner"], 255 - images["corner"]):
        policy.predict({**images, "corner": corner}, obs["state"], list(obs["instruction"]))
    hook.remove()
    first, second = trunk_inputs
    assert torch.equal(first[0], second[0]) and not torch.equal(first[1], second[1])  # only the corner slot moved
    with pytest.raises(ValueError, match=r"images: missing camera\(s\) \['corner'\]"):
        policy.predict({"topview": images["topview"]}, obs["state"], list(obs["instruction"]))

    config = VLAEvalConfig(checkpoint=tmp_path / "bc", tasks=("reach-v3",), episodes=1, max_steps=8, num_envs=1,
                           asynchronous=False, videos_per_task=0, expert=False, out=tmp_path / "e.json")  # fmt: skip
    row = evaluate(config)["tasks"]["reach-v3"]  # rendered both cameras, or the policy would have raised
    assert 0 < row["mean_length"] <= 8 and not row["crashed"]


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="instructions: a BC policy needs the training instructions"):
        CNNPolicy(BCConfig())
    with pytest.raises(ValueError, match="num_cameras"):
        CNNPolicy(BCConfig(instructions=("a",), num_cameras=0))
    model = CNNPolicy(BCConfig(image_size=32, instructions=("a",), num_cameras=2))
    with pytest.raises(ValueError, match=r"images: expected size 2 on axis 1 of \(b, 2, 32, 32, 3\)"):
        model(torch.zeros(1, 1, 32, 32, 3, dtype=torch.uint8), torch.zeros(1, 4), torch.zeros(1, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"images: expected size 32 on axis 2 of \(b, 2, 32, 32, 3\)"):
        model(torch.zeros(1, 2, 16, 16, 3, dtype=torch.uint8), torch.zeros(1, 4), torch.zeros(1, dtype=torch.int64))


@pytest.mark.slow
def test_bc_eval_cli_reports_success_beside_the_expert(dataset: Path, tmp_path: Path) -> None:
    from reasonact.cli import main

    BCTrainer(_config(dataset, tmp_path, steps=10, save_every=10)).fit()
    out = tmp_path / "eval.json"
    main(["bc", "eval", "tiny", str(tmp_path / "bc"), "--tasks", *TASKS, "--episodes", "2", "--max-steps", "40",
          "--out", str(out), "--expert-cache", str(tmp_path / "expert"), "--baselines", "nearest-state"])  # fmt: skip
    report = read_json(out)
    assert report["variant"] == "cnn_bc" and set(report["tasks"]) == set(TASKS)
    for row in report["tasks"].values():
        assert row["ci"][0] <= row["success"] <= row["ci"][1] and "nearest-state" in row["baselines"]
    assert json.loads((tmp_path / "bc" / "bc.json").read_text())["horizon"] == 8


def test_the_shipped_mt10_baseline_loads_and_acts() -> None:
    """The committed `bc train small-128-extra` baseline (the shipped VLA's data and CPU time) loads and acts."""
    shipped = SHIPPED_POLICIES["CNN BC"][1]  # the checkpoint `make demo` evaluates
    policy = load_bc(shipped)
    assert policy.metadata["step"] == 5400 and len(policy.model.config.instructions) == 10
    assert read_json(shipped / "eval.json")["mae"] < read_json(shipped / "eval.json")["mean_chunk_mae"]
    envs = make_vector_env([EnvConfig(task="drawer-open-v3", image_size=128)], asynchronous=False)
    obs, _ = envs.reset(seed=[10_000])
    envs.close()
    policy.begin(0, 10_000)
    assert policy.act_batch(obs, [0]).shape == (1, 4) and len(policy.queues[0]) == 7  # 8-step chunk, one used
