"""A trained checkpoint as a policy: trained for a few steps by the real trainer on a MetaWorld dataset collected
by the scripted expert, loaded (EMA weights, config check), run closed loop by `reasonact vla eval` in MetaWorld
beside the expert and the baselines, batched over sub-envs with per-sub-env chunk queues, and served."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from reasonact.atomic import atomic_write_json, read_json
from reasonact.data.collect import CollectConfig, collect
from reasonact.demo.closed_loop import SHIPPED as SHIPPED_POLICIES
from reasonact.envs import EnvConfig, make_vector_env, rollout
from reasonact.evaluation import EvalConfig
from reasonact.serving import PolicyClient, serve_in_thread
from reasonact.serving.policy import CheckpointServed, load_policy
from reasonact.training.vla_config import VLATrainConfig
from reasonact.training.vla_trainer import Trainer
from reasonact.vla.config import ExpertConfig
from reasonact.vla.evaluate import VLAEvalConfig, expert_results
from reasonact.vla.policy import load_checkpoint

TASKS = ("reach-v3", "drawer-close-v3")
STEPS = 12  # optimizer steps of the tiny run


def tiny_run(dataset: Path, out: Path, name: str, **changes) -> Path:
    config = VLATrainConfig(datasets=(dataset,), out=out, name=name, steps=STEPS, batch_size=4, warmup=2,
                            log_every=STEPS, save_every=STEPS, eval_samples=8)  # fmt: skip
    Trainer(dataclasses.replace(config, **changes)).fit()
    return out / name


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny `ki` checkpoint trained on 2 MetaWorld tasks × 2 expert episodes (32 px corner camera)."""
    root = tmp_path_factory.mktemp("policy")
    data = CollectConfig(tasks=TASKS, episodes_per_task=2, out=root / "data",
                         env=EnvConfig(image_size=32, max_steps=60), keep_failures=True)  # fmt: skip
    collect(data, progress=False)
    return tiny_run(data.out, root / "runs", "ki")


def env_obs(n: int = 2) -> dict:
    envs = make_vector_env([EnvConfig(task="reach-v3", image_size=32)] * n, asynchronous=False)
    obs, _ = envs.reset(seed=list(range(n)))
    envs.close()
    return obs


def test_loads_the_ema_weights_and_predicts_robot_unit_chunks(run: Path) -> None:
    policy = load_checkpoint(run)
    assert policy.metadata["weights"] == "ema" and policy.metadata["step"] == STEPS
    spec = policy.spec
    assert (
        CheckpointServed(policy).spec == spec
        and spec.cameras == ("corner",)
        and (spec.state_dim, spec.action_dim) == (4, 4)
    )
    ema, transforms = policy.model, policy.transforms
    raw = load_checkpoint(run / "checkpoints" / f"step_{STEPS:09d}", ema=False)
    assert raw.metadata["weights"] == "model"
    obs = env_obs()
    noise = torch.randn(2, 10, 4, generator=torch.Generator().manual_seed(0))
    chunks = policy.predict(obs["images"], obs["state"], obs["instruction"], noise)
    assert chunks.shape == (2, 10, 4) and chunks.dtype == np.float32
    with torch.no_grad():
        expected = ema.sample_actions(transforms.env_observation(obs), noise=noise)
    np.testing.assert_allclose(chunks, transforms.actions_to_robot(expected), rtol=0, atol=1e-6)
    assert not np.allclose(chunks, raw.predict(obs["images"], obs["state"], obs["instruction"], noise))


def test_each_sub_env_has_its_chunk_queue_and_executes_n_action_steps(run: Path) -> None:
    policy = load_checkpoint(run, n_action_steps=3)
    obs = env_obs()
    policy.begin(0, 7)
    policy.begin(1, 8)
    actions = [policy.act_batch(obs, [0, 1]) for _ in range(3)] + [policy.act_batch(obs, [1])]  # 4th: sub-env 1
    generators = {s: torch.Generator().manual_seed(s) for s in (7, 8)}  # as `begin` seeds them: 2 chunks each
    noise = {s: torch.stack([torch.randn(10, 4, generator=g) for _ in range(2)]) for s, g in generators.items()}
    first = policy.predict(obs["images"], obs["state"], obs["instruction"], torch.stack([noise[7][0], noise[8][0]]))
    second = policy.predict({k: v[1:] for k, v in obs["images"].items()}, obs["state"][1:], obs["instruction"][1:],
                            noise[8][1:2])  # fmt: skip
    np.testing.assert_allclose(np.stack(actions[:3], 1), first[:, :3], atol=1e-6)  # one chunk, 3 steps of it
    np.testing.assert_allclose(actions[3][0], second[0, 0], atol=1e-6)  # then the next chunk of sub-env 1 alone
    with pytest.raises(ValueError, match=r"slots: sub-envs \[5\] act before"):
        policy.act_batch(obs, [5])
    with pytest.raises(ValueError, match="n_action_steps"):
        load_checkpoint(run, n_action_steps=11)


@pytest.mark.slow
def test_batched_rollouts_equal_one_env_at_a_time(run: Path) -> None:
    """Same seeds on 1 and on 2 sub-envs: every episode executes the same actions (noise per episode seed)."""
    episodes = {}
    for n in (1, 2):
        envs = make_vector_env([EnvConfig(task="reach-v3", image_size=32, max_steps=25)] * n, asynchronous=False)
        policy = load_checkpoint(run, n_action_steps=4)
        episodes[n] = rollout(envs, [3, 4, 5], policy, record=("action",))
        envs.close()
    for one, two in zip(episodes[1], episodes[2], strict=True):
        assert (one.seed, one.length, one.success) == (two.seed, two.length, two.success)
        np.testing.assert_allclose(one.frames["action"], two.frames["action"], rtol=0, atol=1e-5)
    assert not np.allclose(episodes[1][0].frames["action"], episodes[1][1].frames["action"])


@pytest.mark.slow
@pytest.mark.smoke
def test_vla_eval_cli_reports_success_ci_expert_and_baselines(run: Path, tmp_path: Path) -> None:
    from reasonact.cli import main

    out, cache = tmp_path / "eval.json", tmp_path / "expert"
    baselines = ["--baselines", "mean-chunk", "nearest-state", "random"]
    args = ["vla", "eval", "tiny", str(run), "--tasks", *TASKS, "--episodes", "2", "--max-steps", "60",
            "--num-envs", "2", "--out", str(out), "--expert-cache", str(cache), *baselines]  # fmt: skip
    main(args)
    report = read_json(out)
    assert set(report["tasks"]) == set(TASKS) and report["episodes"] == 2 and report["weights"] == "ema"
    for row in report["tasks"].values():
        assert {"success", "ci", "expert_success"} <= set(row) and set(row["baselines"]) == {
            "mean-chunk", "nearest-state", "random"}  # fmt: skip
        assert row["ci"][0] <= row["success"] <= row["ci"][1] and row["success"] in (0.0, 0.5, 1.0)
    assert report["mean_success"] == np.mean([r["success"] for r in report["tasks"].values()])
    assert report["tasks"]["reach-v3"]["expert_success"] == 1.0  # the expert reaches in 52–54 steps
    for policy in ("vla", "mean-chunk", "nearest-state", "random"):
        videos = sorted(p.name for p in (out.with_suffix("") / policy / "videos").iterdir())
        assert videos == [f"{task}_ep0.{ext}" for task in ("drawer-close-v3", "reach-v3") for ext in ("gif", "mp4")]
    cached = sorted(cache.glob("*.json"))
    assert [p.name for p in cached] == ["drawer-close-v3__s10000_k2_t60.json", "reach-v3__s10000_k2_t60.json"]
    atomic_write_json(cached[1], {**read_json(cached[1]), "success_rate": 0.25})  # later evaluations read the cache
    config = VLAEvalConfig(episodes=2, max_steps=60, expert_cache=cache)
    assert expert_results(config, EvalConfig(), ["reach-v3"])["reach-v3"]["success_rate"] == 0.25


def test_vla_eval_runs_the_policy_with_its_thread_count(run: Path, tmp_path: Path) -> None:
    from reasonact.vla.evaluate import run as run_eval

    seen: list[int] = []

    def load(path: Path, ema: bool, n_action_steps: int):
        policy = load_checkpoint(path, ema, n_action_steps)
        chunks = policy.chunks

        def counted(obs, slots):
            seen.append(torch.get_num_threads())
            return chunks(obs, slots)

        policy.chunks = counted
        return policy

    config = VLAEvalConfig(checkpoint=run, tasks=("reach-v3",), episodes=1, max_steps=16, num_envs=1,
                           asynchronous=False, videos_per_task=0, expert=False, out=tmp_path / "e.json")  # fmt: skip
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run_eval(config, load)
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2  # restored afterwards
        with pytest.raises(ValueError, match="threads"):
            run_eval(dataclasses.replace(config, threads=0), load)
    finally:
        torch.set_num_threads(before)


def test_a_two_camera_run_maps_cameras_in_order_and_evaluates_with_both(tmp_path: Path) -> None:
    """Two dataset cameras: `image_camera` feeds the first model camera, the other the second; the policy asks
    the robot for both by their names and `vla eval` renders both."""
    from reasonact.vla.evaluate import run as run_eval

    data = CollectConfig(tasks=("reach-v3",), episodes_per_task=2, out=tmp_path / "data", keep_failures=True,
                         env=EnvConfig(image_size=32, max_steps=24, cameras=("corner", "topview")))  # fmt: skip
    collect(data, progress=False)
    model = dataclasses.replace(VLATrainConfig().model, cameras=("base", "top"))
    policy = load_checkpoint(tiny_run(data.out, tmp_path, "two", model=model, image_camera="topview", steps=2))
    assert policy.spec.cameras == ("topview", "corner")
    assert policy.transforms.cameras == (("base", "topview"), ("top", "corner"))
    obs = make_vector_env([dataclasses.replace(data.env, task="reach-v3")], asynchronous=False).reset(seed=[0])[0]
    seen = policy.transforms.env_observation(obs).images  # model camera → (1, 32, 32, 3) in [-1, 1]
    swapped = policy.transforms.env_observation(
        {**obs, "images": {"corner": obs["images"]["topview"], "topview": obs["images"]["corner"]}}
    ).images
    assert not torch.equal(seen["base"], seen["top"])
    assert torch.equal(swapped["base"], seen["top"]) and torch.equal(swapped["top"], seen["base"])
    noise = torch.randn(1, 10, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="missing camera 'corner'"):
        policy.predict({"topview": obs["images"]["topview"]}, obs["state"], obs["instruction"], noise)
    config = VLAEvalConfig(checkpoint=tmp_path / "two", tasks=("reach-v3",), episodes=1, max_steps=8, num_envs=1,
                           asynchronous=False, videos_per_task=0, expert=False, out=tmp_path / "e.json")  # fmt: skip
    row = run_eval(config)["tasks"]["reach-v3"]  # rendered both cameras, or the policy would have raised
    assert 0 < row["mean_length"] <= 8 and not row["crashed"]


def test_a_checkpoint_from_another_config_is_refused(run: Path, tmp_path: Path) -> None:
    model = dataclasses.replace(VLATrainConfig().model, horizon=6, expert=ExpertConfig(width=48))
    other = tiny_run(Path(read_json(run / "config.json")["datasets"][0]), tmp_path, "other", model=model, steps=2,
                     save_every=2)  # fmt: skip
    alien = run / "checkpoints" / "step_000000002"
    shutil.copytree(other / "checkpoints" / "step_000000002", alien)
    try:
        fields = r"model\.json: expert\.width=48 \(model\.json: 32\), horizon=6 \(model\.json: 10\)"
        with pytest.raises(ValueError, match=rf"checkpoint: .* was written by another config than .*{fields}"):
            load_checkpoint(alien)
        state = read_json(alien / "state.json")
        atomic_write_json(alien / "state.json", {**state, "extra": {}})  # a checkpoint that records no config
        with pytest.raises(ValueError, match=r"tensor shapes differ: .*\(model\.json builds"):
            load_checkpoint(alien)
    finally:
        shutil.rmtree(alien)
    with pytest.raises(FileNotFoundError, match="is neither a `reasonact vla train` run directory"):
        load_checkpoint(tmp_path)


def test_the_server_serves_a_checkpoint(run: Path) -> None:
    policy = load_policy(str(run))
    obs = env_obs()
    with serve_in_thread(policy) as url, PolicyClient(url) as client:
        assert client.metadata["spec"]["cameras"] == ["corner"] and client.metadata["weights"] == "ema"
        one = client.infer({"images": {"corner": obs["images"]["corner"][0]}, "state": obs["state"][0],
                            "instruction": str(obs["instruction"][0])})["actions"]  # fmt: skip
        many = client.infer({"images": obs["images"], "state": obs["state"],
                             "instruction": [str(i) for i in obs["instruction"]]})["actions"]  # fmt: skip
    assert one.shape == (10, 4) and many.shape == (2, 10, 4) and np.isfinite(many).all()
    normalised = policy.policy.transforms.action.normalize(many)  # robot units come back: near the data's [-1, 1] range
    assert np.abs(normalised).max() < 5 and not np.allclose(many[0], many[1])


SHIPPED = SHIPPED_POLICIES["VLA"][1]  # the checkpoint `make demo` evaluates


def test_the_shipped_mt10_vla_loads_and_acts() -> None:
    """The committed `vla train small-128-extra` policy: ≤ 20 MB, beats the mean chunk and the nearest-state lookup
    open loop, reads its camera, acts on a 128 px MetaWorld observation with one 8-step chunk."""
    size = sum(f.stat().st_size for f in SHIPPED.rglob("*") if f.is_file())
    assert size <= 20e6, f"{size / 1e6:.1f} MB"
    policy = load_checkpoint(SHIPPED)
    assert policy.metadata["weights"] == "ema" and policy.metadata["variant"] == "pi0" and policy.spec.horizon == 8
    report = read_json(SHIPPED / "eval.json")
    assert (
        report["mae"] < min(report["mean_chunk_mae"], report["nearest_state_mae"])
        and report["image_dependence"]["flow_real"] < report["image_dependence"]["flow_shuffled"]
    )
    envs = make_vector_env([EnvConfig(task="drawer-open-v3", image_size=128)], asynchronous=False)
    obs, _ = envs.reset(seed=[10_000])
    envs.close()
    policy.begin(0, 10_000)
    action = policy.act_batch(obs, [0])  # (1, 4)
    assert action.shape == (1, 4) and np.isfinite(action).all() and len(policy.queues[0]) == 7
