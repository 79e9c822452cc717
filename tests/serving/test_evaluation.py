"""A served policy runs closed loop in a real simulator: the evaluation harness drives MetaWorld with a
`PolicyClient` as its policy, every action chunk coming over the websocket."""

from __future__ import annotations

from pathlib import Path

from reasonact.envs import EnvConfig
from reasonact.evaluation import EvalConfig, evaluate
from reasonact.serving import EchoPolicy, PolicyClient, PolicySpec, health, serve_in_thread


def test_evaluation_harness_runs_a_served_policy_in_metaworld(tmp_path: Path) -> None:
    spec = PolicySpec(cameras=("corner",), image_size=32, state_dim=4, action_dim=4, horizon=5)  # reach-v3 at 32 px
    config = EvalConfig(tasks=("reach-v3",), episodes=2, env=EnvConfig(image_size=32, max_steps=20), num_envs=1,
                        asynchronous=False, videos_per_task=0, out=tmp_path)  # fmt: skip
    with serve_in_thread(EchoPolicy(spec)) as url, PolicyClient(url) as client:
        results = evaluate(config, client, show_progress=False)
        counts = health(url)
    task = results["tasks"]["reach-v3"]
    assert task["episodes"] == 2 and task["crashed"] == 0 and 0.0 <= task["success_rate"] <= 1.0
    steps = task["mean_length"] * task["episodes"]
    assert counts["replies"] >= steps / spec.horizon > 1 and counts["errors"] == 0  # one request per 5-step chunk
