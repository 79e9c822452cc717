"""`reasonact vla train`: mixed robot/VLM batches train both heads; kill -9 + resume continues bit for bit;
torchrun with 2 gloo processes equals one process with the same global batch.

The datasets are written with the real LeRobot v3 writer from synthetic episodes (a scripted line in state
space, so it takes no simulator); `test_trains_on_collected_metaworld_data` uses `reasonact data collect`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from reasonact.data.lerobot import LeRobotWriter
from reasonact.evaluation.baselines import Demonstrations, baseline_factory
from reasonact.training.distributed import Distributed
from reasonact.training.vla_config import VLATrainConfig
from reasonact.training.vla_data import open_loop_baselines
from reasonact.training.vla_trainer import Trainer, train
from reasonact.vla.policy import load_checkpoint

SRC = str(Path(__file__).resolve().parents[2] / "src")
FEATURES = {
    "observation.images.corner": {"dtype": "image", "shape": [24, 24, 3], "names": ["height", "width", "channels"]},
    "observation.state": {"dtype": "float32", "shape": [3], "names": ["s0", "s1", "s2"]},
    "action": {"dtype": "float32", "shape": [2], "names": ["a0", "a1"]},
    "subtask": {"dtype": "string", "shape": [1], "names": None},
}


def write_dataset(root: Path, episodes_per_task: int = 3, length: int = 14) -> Path:
    """Two tasks; the action is a smooth function of the state, the image shows the state as a bright pixel."""
    writer = LeRobotWriter(root, fps=10, features=FEATURES, robot_type="synthetic", episodes_per_file=2)
    rng = np.random.default_rng(0)
    for task_id, task in enumerate(("reach the left goal", "reach the right goal")):
        for _ in range(episodes_per_task):
            start = rng.uniform(-1, 1, 3)
            t = np.linspace(0, 1, length)[:, None]
            state = (start + (task_id * 2 - 1) * t * np.array([1.0, 0.5, 0.0])).astype(np.float32)  # (T, 3)
            action = np.stack([np.sin(3 * t[:, 0] + task_id), np.cos(2 * t[:, 0])], 1).astype(np.float32)
            images = np.zeros((length, 24, 24, 3), dtype=np.uint8)
            for i, s in enumerate(state):
                images[i, int(12 + 5 * np.clip(s[0], -2, 2)), int(12 + 5 * np.clip(s[1], -2, 2))] = 255
            subtask = np.array(["approach" if i < length // 2 else "arrive" for i in range(length)], dtype=object)
            frames = {"observation.images.corner": images, "observation.state": state, "action": action,
                      "subtask": subtask}  # fmt: skip
            writer.add_episode(task, frames, extra={"env_task": f"task-{task_id}"})
    writer.flush()
    return root


def write_vlm(path: Path, n: int = 6) -> Path:
    import imageio.v3 as iio
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    rows = [
        {"image": {"bytes": iio.imwrite("<bytes>", rng.integers(0, 255, (48, 48, 3), dtype=np.uint8),
                                        extension=".png"), "path": None},
         "kind": "gripper", "question": "Is the gripper open or closed?", "answer": ["open", "closed"][i % 2],
         "split": "train" if i < n - 1 else "heldout_template"}
        for i in range(n)
    ]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("vla_data")
    return write_dataset(root / "ds"), write_vlm(root / "vlm" / "vlm.parquet")


def _config(data, tmp_path: Path, **changes) -> VLATrainConfig:
    base = VLATrainConfig(datasets=(data[0],), out=tmp_path, name="run", steps=12, batch_size=4, warmup=2,
                          log_every=1, save_every=4, eval_samples=16)  # fmt: skip
    import dataclasses

    return dataclasses.replace(base, **changes)


def test_mixed_batches_train_both_heads_and_the_run_is_complete(data, tmp_path) -> None:
    torch.set_num_threads(1)
    cfg = _config(data, tmp_path, vlm=(data[1],), vlm_fraction=0.25, subtask_targets=True, steps=40, lr=3e-3)
    trainer = Trainer(cfg)
    batch = trainer.sampler.batch(0, 4, slice(0, 4))
    assert batch.action_mask.tolist() == [True, True, True, False]  # 1 of 4 rows is a VLM record
    assert batch.obs.targets is not None and batch.obs.target_mask[3].any()  # its answer is a target
    assert not batch.actions[3].any() and not batch.obs.state[3].any()  # no actions, no state
    assert batch.obs.images["base"].shape == (4, 32, 32, 3)  # 24 px dataset and 48 px VLM images resized
    report = trainer.fit()
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, 41))
    first, last = np.mean([m["loss"] for m in metrics[:5]]), np.mean([m["loss"] for m in metrics[-5:]])
    assert last < 0.6 * first and all({"ce", "flow", "lr", "grad_norm"} <= set(m) for m in metrics)
    assert metrics[0]["lr"] < metrics[1]["lr"] and metrics[-1]["lr"] < metrics[10]["lr"]  # warmup, then decay
    assert set(report) == {"mae", "mean_chunk_mae", "nearest_state_mae", "heldout_frames", "image_dependence"}
    assert {"loss_real", "loss_shuffled", "loss_black", "flow_real", "ce_real"} <= set(report["image_dependence"])
    assert report["heldout_frames"] == 16 and np.isfinite(report["mae"])
    # one nearest-state baseline: the closed-loop controller `vla eval --baselines` fits gives the same error
    held = [(e, t) for e in trainer.heldout_ids for t in range(len(trainer.episodes[e].action))]
    truth = np.stack([trainer.sampler.chunk(e, t) for e, t in held])  # (28, H, d) robot units
    closed = baseline_factory("nearest-state", Demonstrations.load(cfg.datasets, 10, cfg.heldout_per_task))
    episodes = trainer.episodes
    lookup = np.stack([closed(episodes[e].env_task).act({"state": episodes[e].state[t]}) for e, t in held])
    horizon = trainer.transforms.config.horizon  # what eval.json reports, on all 28 frames:
    trained = open_loop_baselines(episodes, trainer.sampler.frames, held, truth, horizon)["nearest_state_mae"]
    assert trained == pytest.approx(float(np.abs(lookup - truth).mean()), rel=1e-6)
    run = tmp_path / "run"
    assert (run / "plots" / "metrics.png").stat().st_size > 0 and (run / "fast" / "fast.json").exists()
    policy = load_checkpoint(run)  # the EMA weights
    model, transforms = policy.model, policy.transforms
    obs, _, _ = trainer.sampler.assemble([(0, 0), (0, 1)], [])
    ema = model.sample_actions(obs, noise=torch.zeros(2, 10, 2))
    torch.testing.assert_close(ema, trainer.ema.model.sample_actions(obs, noise=torch.zeros(2, 10, 2)))
    assert transforms.actions_to_robot(ema).shape == (2, 10, 2)


def test_dataset_weights_choose_where_robot_rows_come_from(data, tmp_path) -> None:
    trainer = Trainer(_config(data, tmp_path, datasets=(data[0], data[0]), dataset_weights=(0.0, 1.0)))
    frames = trainer.sampler.frames[trainer.sampler.p > 0]
    assert {trainer.episodes[e].dataset for e, _ in frames} == {1} and len(trainer.episodes) == 12
    with pytest.raises(ValueError, match=r"dataset_weights: expected one weight >= 0 per dataset"):
        Trainer(_config(data, tmp_path, name="w", dataset_weights=(1.0,), datasets=(data[0], data[0])))


def test_shifted_batches_keep_their_draws_and_split_across_processes(data, tmp_path) -> None:
    plain = Trainer(_config(data, tmp_path, name="plain")).sampler
    shifted = Trainer(_config(data, tmp_path, name="shifted", shift=3)).sampler
    a, b = plain.batch(5, 4, slice(0, 4)), shifted.batch(5, 4, slice(0, 4))
    assert torch.equal(a.actions, b.actions) and torch.equal(a.noise, b.noise) and torch.equal(a.tau, b.tau)
    assert not torch.equal(a.obs.images["base"], b.obs.images["base"])  # only the images move
    halves = [shifted.batch(5, 4, slice(i, i + 2)).obs.images["base"] for i in (0, 2)]  # two processes' shards
    assert torch.equal(torch.cat(halves), b.obs.images["base"])
    with pytest.raises(ValueError, match="shift"):
        Trainer(_config(data, tmp_path, name="bad_shift", shift=-1))


def test_bad_inputs_are_named(data, tmp_path) -> None:
    with pytest.raises(ValueError, match="vlm: vlm_fraction > 0 needs VLM record files"):
        Trainer(_config(data, tmp_path, vlm_fraction=0.5))
    with pytest.raises(FileNotFoundError, match=r"info\.json"):
        Trainer(_config(data, tmp_path, datasets=(tmp_path / "nowhere",)))
    stats_path = data[0] / "meta" / "stats.json"
    saved = stats_path.read_text()
    try:
        stats = json.loads(saved)
        stats["action"]["mean"] = [0.0] * 5
        stats_path.write_text(json.dumps(stats))
        with pytest.raises(ValueError, match=r"stats.json: action has 5 dims, info.json says 2"):
            Trainer(_config(data, tmp_path, name="bad_stats"))
    finally:
        stats_path.write_text(saved)
    with pytest.raises(ValueError, match="batch_size: expected a multiple"):
        Distributed(rank=0, world=3).shard(4)


def _cli(data, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "reasonact.cli", "vla", "train", "tiny", "--datasets", str(data[0]), "--vlm",
            str(data[1]), "--vlm-fraction", "0.25", "--out", str(out), "--name", "run", "--steps", "30",
            "--batch-size", "4", "--warmup", "3", "--log-every", "1", "--save-every", "3", "--eval-samples", "8",
            *extra]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _curve(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "step_s"} for r in rows]  # wall time is the one thing that differs


@pytest.mark.slow
@pytest.mark.smoke
def test_kill_9_at_a_random_step_then_resume_continues_bit_for_bit(data, tmp_path) -> None:
    subprocess.run(_cli(data, tmp_path / "straight"), env=_env(), check=True, capture_output=True, timeout=600)
    kill_at = int(np.random.default_rng().integers(4, 25))
    interrupted = tmp_path / "killed"
    proc = subprocess.Popen(_cli(data, interrupted), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = interrupted / "run" / "metrics.jsonl"
    deadline = time.time() + 600
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= kill_at):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    resumed = subprocess.run(_cli(data, interrupted, "--resume"), env=_env(), capture_output=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    straight, again = _curve(tmp_path / "straight" / "run"), _curve(interrupted / "run")
    assert [r["step"] for r in again] == list(range(1, 31))
    assert again == straight, f"killed at step ~{kill_at}"


@pytest.mark.slow
def test_torchrun_two_gloo_processes_equal_one_process_with_the_same_global_batch(data, tmp_path) -> None:
    steps = ("--steps", "6", "--shift", "2")  # the image shifts are drawn for the global batch
    one = subprocess.run(_cli(data, tmp_path / "one", *steps), env=_env(), capture_output=True, timeout=600)
    assert one.returncode == 0, one.stderr.decode()[-2000:]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29513"]
    two = subprocess.run([*torchrun, *_cli(data, tmp_path / "two", *steps)[1:]], env=_env(),
                         capture_output=True, timeout=600)  # fmt: skip
    assert two.returncode == 0, two.stderr.decode()[-3000:]
    a, b = _curve(tmp_path / "one" / "run"), _curve(tmp_path / "two" / "run")
    np.testing.assert_allclose([r["loss"] for r in b], [r["loss"] for r in a], rtol=1e-5)
    np.testing.assert_allclose([r["grad_norm"] for r in b], [r["grad_norm"] for r in a], rtol=1e-4)
    from safetensors.torch import load_file

    def weights(name: str) -> dict[str, torch.Tensor]:
        checkpoints = tmp_path / name / "run" / "checkpoints"
        return load_file(str(checkpoints / (checkpoints / "latest").read_text().strip() / "model.safetensors"))

    wa, wb = weights("one"), weights("two")
    assert wa.keys() == wb.keys()
    for key in wa:  # atol 1e-5: Adam rescales float noise in gradients that are 0 in exact arithmetic (key biases)
        torch.testing.assert_close(wb[key], wa[key], rtol=1e-4, atol=1e-5, msg=key)


def test_bf16_run_and_resume_with_another_config_is_refused(data, tmp_path, capsys) -> None:
    report = train(_config(data, tmp_path, steps=3, heldout_per_task=0, bf16=True))
    assert report == {} and "→" in capsys.readouterr().out  # no held-out episodes: no evaluation
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 3 and all(np.isfinite(m["loss"]) for m in metrics)
    with pytest.raises(ValueError, match=r"config: differs from the run being resumed .* \['lr'\]"):
        Trainer(_config(data, tmp_path, steps=3, heldout_per_task=0, bf16=True, lr=0.5, resume=True))
