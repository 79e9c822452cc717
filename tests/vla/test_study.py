"""`reasonact vla study`: the tiny study end to end on real MetaWorld data and the real simulator — pre-stage once,
variants × seeds from its backbone, interrupted after one run and resumed without retraining it, a diverging run
recorded as failed with its step and kept out of the means, and the report regenerated from the run directories."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from reasonact.atomic import read_json
from reasonact.data.collect import CollectConfig, collect
from reasonact.data.vlm import PRESETS as VLM_PRESETS
from reasonact.data.vlm import generate
from reasonact.envs import EnvConfig
from reasonact.studies.ki import PRESETS, StudyConfig, study

REPORT_KEYS = {"final_success", "success_ci", "steps_to_reach_pi0_final", "vqa_retention",
               "heldout_instruction_success", "language_following", "language_following_closed_loop",
               "language_following_closed_loop_ci", "latency_ms", "seeds"}  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    """2 expert episodes of reach-v3 (32 px) and the tiny VLM records (pick-place-v3, 64 px)."""
    root = tmp_path_factory.mktemp("study_data")
    robot = CollectConfig(tasks=("reach-v3",), episodes_per_task=2, out=root / "robot",
                          env=EnvConfig(image_size=32, max_steps=40), keep_failures=True)  # fmt: skip
    collect(robot, progress=False)
    generate(dataclasses.replace(VLM_PRESETS["tiny"][1], out=root / "vlm"))
    return robot.out, root / "vlm" / "vlm.parquet"


def files_and_mtimes(path: Path) -> dict[str, int]:
    return {str(p.relative_to(path)): p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()}


def tiny_config(data: tuple[Path, Path], save_every: int = 10, **changes: object) -> StudyConfig:
    """The tiny preset on the fixture's robot episodes and VLM records, checkpointing every `save_every` steps."""
    robot, vlm = data
    base = PRESETS["tiny"][1]
    return dataclasses.replace(
        base,
        train=dataclasses.replace(base.train, datasets=(robot,), vlm=(vlm,), save_every=save_every),
        pretrain=dataclasses.replace(base.pretrain, records=(vlm,)),
        **changes,
    )


def checkpoint_steps(run: Path) -> list[int]:
    return sorted(int(p.name.split("_")[1]) for p in (run / "checkpoints").glob("step_*"))


@pytest.mark.slow
@pytest.mark.smoke
def test_tiny_study_resumes_records_failures_and_reports(tmp_path: Path, data: tuple[Path, Path]) -> None:
    config = tiny_config(
        data,
        save_every=5,
        planned_variants=("pi0", "ki", "pi05"),
        variants=("pi0", "ki"),
        eval_every=10,  # success vs step at 10 and 20 of the checkpoints every 5 steps
        out=tmp_path / "study",
        report=tmp_path / "report",
        max_runs=1,
    )
    study(dataclasses.replace(config, stage="pretrain"))  # what runs before processes share a study
    assert (config.out / "pretrain" / "backbone.safetensors").exists() and not (config.out / "runs").exists()
    partial = study(config)  # interrupted: the pre-stage and one run only
    first = config.out / "runs" / "pi0_s0"
    assert (first / "eval.json").exists() and not (config.out / "runs" / "pi0_s1").exists()
    assert checkpoint_steps(first) == [10, 20]  # the schedule's checkpoints; 5 and 15 were deleted
    before = files_and_mtimes(first)
    curve = {p for p in before if p.startswith("study/closed_loop_step_") and p.count("/") == 1}
    assert curve == {"study/closed_loop_step_000000010.json", "study/closed_loop_step_000000020.json"}
    assert {"study/heldout_instruction.json", "study/language_following.json", "study/vqa.json",
            "study/latency.json"} <= set(before)  # fmt: skip
    follow = read_json(first / "study" / "language_following.json")  # reach-v3 given push / pick-place instructions
    assert set(follow["pairs"]) == {"reach-v3→push-v3", "reach-v3→pick-place-v3"} and follow["frames"] >= 8
    assert np.isfinite(follow["following"]) and follow["sensitivity"] > 0  # a text-blind model would score 0
    closed = follow["closed_loop"]  # reach-v3 rolled out told reach, push, pick-place: 1 episode each
    assert set(closed["pairs"]) == {"reach-v3→push-v3", "reach-v3→pick-place-v3"} and closed["paired_episodes"] == 2
    assert closed["following"] == closed["success_told_own"] - closed["success_told_other"]
    # the partial report covers the plan: one run measured, the other five listed as missing, claims marked
    assert partial["planned_runs"] == 6 and partial["missing_runs"] == [
        "pi0_s1",
        "ki_s0",
        "ki_s1",
        "pi05_s0",
        "pi05_s1",
    ]
    assert partial["variants"]["pi0"]["seeds"] == [0]
    assert partial["variants"]["pi0"]["missing"] == [{"seed": 1, "state": "untrained"}]
    assert partial["claims"]["ki_trains_fast"].startswith("not measurable (partial: ki lacks seeds [0, 1]; pi0 lacks")
    assert "**Partial study: 5 of 6 planned runs are not measured yet**" in (config.report / "ki_study.md").read_text()
    pretrain_files = files_and_mtimes(config.out / "pretrain")

    # a run trained (--stage train, e.g. on a GPU) but not measured yet is missing from the report, not averaged in
    trained_only = study(dataclasses.replace(config, stage="train", variants=("pi0",), seeds=(1,), max_runs=0))
    second = config.out / "runs" / "pi0_s1"
    assert (second / "eval.json").exists() and not (second / "study").exists() and checkpoint_steps(second) == [10, 20]
    assert trained_only["variants"]["pi0"]["missing"] == [{"seed": 1, "state": "trained"}]

    summary = study(dataclasses.replace(config, max_runs=0))  # the rest: measures pi0_s1, trains + measures ki
    assert files_and_mtimes(first) == before  # the finished run was neither retrained nor re-measured
    assert files_and_mtimes(config.out / "pretrain") == pretrain_files  # the pre-stage ran once
    assert (second / "study" / "latency.json").exists()
    for name in ("pi0", "ki"):
        s = summary["variants"][name]
        assert set(s) >= REPORT_KEYS and s["seeds"] == [0, 1] and s["failed"] == [] and s["missing"] == []
        assert s["episodes"] == 2 and 0.0 <= s["success_ci"][0] <= s["final_success"] <= s["success_ci"][1]
        assert set(s["success_vs_step"]) == {"10", "20"} and s["latency_ms"] > 0
        assert 0.0 <= s["heldout_instruction_success"] <= 1.0 and s["caption_perplexity_ratio"] > 0
        assert len(s["language_following_per_seed"]) == 2 and np.isfinite(s["language_following"])
        low, high = s["language_following_ci"]
        assert low <= high and high - low < 1.0  # pooled over both seeds' frames
        assert len(s["language_following_closed_loop_per_seed"]) == 2
        low, high = s["language_following_closed_loop_ci"]  # 2 seeds × 2 pairs in 1 scene: one cluster
        assert low == high == s["language_following_closed_loop"]
        # retention is after / before on the same records: undefined (null) when the pre-stage scores 0
        assert (s["vqa_retention"] is None) == (summary["pretrain_vqa_accuracy"] == 0.0)
    pi0_final = summary["variants"]["pi0"]["final_success"]
    assert summary["pi0_final_success"] == pi0_final
    reach = summary["variants"]["pi0"]["steps_to_reach_pi0_final"]
    assert reach is not None and summary["variants"]["pi0"]["success_vs_step"][str(reach)]["mean"] >= pi0_final
    assert summary["claims"]["ki_trains_fast"].startswith("not measurable:") == (pi0_final == 0.0)

    # a diverging run (absurd lr) is recorded as failed at its step and never averaged in
    absurd = dataclasses.replace(config.train, lr=1e12, final_lr=1e12, warmup=0)
    diverging = dataclasses.replace(config, variants=("pi05",), seeds=(0,), max_runs=0, train=absurd)
    failed = study(diverging)["variants"]["pi05"]
    record = read_json(config.out / "runs" / "pi05_s0" / "failed.json")
    assert failed["failed"] == [{"seed": 0, **record}] and 0 < record["step"] < 20 and "non-finite" in record["error"]
    assert failed["seeds"] == [] and failed["final_success"] is None and failed["success_ci"] is None
    assert failed["missing"] == [{"seed": 1, "state": "untrained"}]

    # --report-only regenerates the report of all three from the run directories alone
    report = study(dataclasses.replace(config, report_only=True, max_runs=0))
    written = read_json(config.report / "ki_study.json")
    assert (
        written == report
        and set(written["variants"]) == {"pi0", "ki", "pi05"}
        and report["missing_runs"] == ["pi05_s1"]
    )
    text = (config.report / "ki_study.md").read_text()
    assert "| pi05 | — |" in text and "0@" in text and "1 (untrained)" in text and "ki_trains_fast" in text
    assert "ki_keeps_language_following" in text and "ki_keeps_language_following_closed_loop" in text
    assert {p.name for p in (config.report / "plots").iterdir()} == {
        "success_vs_step.png", "vqa_retention.png", "language_following.png", "language_following_closed_loop.png",
        "latency_ms.png"}  # fmt: skip


@pytest.mark.slow
def test_a_run_interrupted_on_one_machine_finishes_on_another(
    tmp_path: Path, data: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A study whose machine goes away right after a run's step-10 checkpoint is copied (checkpoints + JSON, paths
    relative to the study root as on any machine) and resumed elsewhere with other launch settings (threads here;
    --device cuda on a GPU machine): the run continues from step 10 and the measurement happens there."""
    from reasonact.training.vla_trainer import Trainer

    config = tiny_config(
        data,
        planned_variants=("ki",),
        planned_seeds=(0,),
        follow_closed_loop=0,
        out=Path("study"),
        report=Path("report"),
    )
    save = Trainer.save

    def machine_goes_away(trainer: Trainer) -> None:
        save(trainer)
        if trainer.step == 10:
            raise KeyboardInterrupt

    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(Trainer, "save", machine_goes_away)
        study(dataclasses.replace(config, stage="train"))
    run = Path("study/runs/ki_s0")
    assert checkpoint_steps(run) == [10] and not (run / "eval.json").exists()
    logged = (run / "metrics.jsonl").read_text()

    shutil.copytree(tmp_path / "a" / "study", tmp_path / "b" / "study")
    monkeypatch.chdir(tmp_path / "b")
    moved = dataclasses.replace(config, train=dataclasses.replace(config.train, threads=2))
    summary = study(moved)
    assert summary["variants"]["ki"]["seeds"] == [0] and summary["missing_runs"] == []
    assert (run / "metrics.jsonl").read_text().startswith(logged)  # continued after step 10, not restarted
    assert read_json(run / "config.json")["threads"] == 2 and checkpoint_steps(run) == [10, 20]
    assert not (tmp_path / "a" / "study" / "runs" / "ki_s0" / "eval.json").exists()


def test_bad_selections_and_schedules_are_refused() -> None:
    base = PRESETS["tiny"][1]
    with pytest.raises(ValueError, match=r"seeds: \[5\] are not in the study's planned_seeds \[0, 1\]"):
        study(dataclasses.replace(base, seeds=(5,)))
    with pytest.raises(ValueError, match=r"planned_variants: expected names from .*received \['pi1'\]"):
        study(dataclasses.replace(base, planned_variants=("pi1",)))
    with pytest.raises(ValueError, match=r"eval_every: expected 0 or a multiple of train.save_every \(10\), "
                       r"received 15"):  # fmt: skip
        study(dataclasses.replace(base, eval_every=15))
    with pytest.raises(ValueError, match=r"--device: 'cuda:7' needs a CUDA GPU|--device: expected cuda:N"):
        study(dataclasses.replace(base, device="cuda:7"))


@pytest.mark.slow
def test_estimate_times_the_pieces_and_projects_the_study(tmp_path: Path, data: tuple[Path, Path]) -> None:
    from reasonact.studies.ki_cost import episodes_per_run

    config = tiny_config(data, planned_variants=("pi0", "pi0_fast"), out=tmp_path / "study", estimate=True)
    # curve points 10, 20 and the held-out instructions: 3 × 1 task × 1 episode; following: reach told 3 instructions
    assert episodes_per_run(config) == 3 + 3
    report = study(config)
    assert report == read_json(config.out / "estimate.json") and not (config.out / "estimate").exists()
    pi0, fast = report["variants"]["pi0"], report["variants"]["pi0_fast"]
    assert pi0["step_s"] > 0 and report["pretrain_step_s"] > 0 and report["closed_loop"]["episodes"] == 1
    assert fast["latency_ms"] > pi0["latency_ms"]  # autoregressive FAST decoding vs 10 Euler steps of the expert
    assert fast["episode_s"] > pi0["episode_s"] == report["closed_loop"]["episode_s"]
    hours = report["pretrain_h"] + 2 * sum(v["train_h"] + v["measure_h"] for v in report["variants"].values())
    assert report["study_h"] == pytest.approx(hours, rel=1e-12)
    assert pi0["measure_h"] == pytest.approx(6 * pi0["episode_s"] / 3600, rel=1e-12)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_trains_on_its_pre_stage_backbone(preset: str) -> None:
    """The backbone the pre-stage exports must load into every run (same vision / LM / prompt length)."""
    config = PRESETS[preset][1]
    train, pre = config.train.model, config.pretrain.model
    assert (train.vision, train.lm, train.max_prompt_tokens) == (pre.vision, pre.lm, pre.max_prompt_tokens)
    assert config.train.vlm == config.pretrain.records and config.train.save_every < config.train.steps


@pytest.mark.parametrize(
    ("ki", "pi0", "verdict"),
    [
        ([0.2, 0.5], [-0.1, 0.1], "reproduced"),
        ([0.1, 0.5], [-0.1, 0.05], "reproduced"),  # exactly the minimum counts
        ([0.2, 0.5], [0.3, 0.6], "not reproduced"),  # overlapping intervals: no clear difference
        ([0.05, 0.4], [0.15, 0.3], "not reproduced"),  # pi0 clears the minimum, KI's interval does not
        ([-0.05, 0.1], [-0.1, 0.05], "not measurable"),  # neither follows language measurably
        ([0.02, 0.3], [-0.2, 0.0], "not measurable"),  # above 0, below the minimum: not following
        ([0.099, 0.3], [-0.2, -0.1], "not measurable"),  # just below the minimum
    ],
)
@pytest.mark.parametrize("key", ["language_following", "language_following_closed_loop"])
def test_language_following_claims_need_the_minimum_effect(
    ki: list[float], pi0: list[float], verdict: str, key: str
) -> None:
    from reasonact.studies.ki_report import MIN_FOLLOWING, claims

    assert MIN_FOLLOWING == 0.1  # the edges above are placed around it
    variants = {name: {key: sum(ci) / 2, f"{key}_ci": ci} for name, ci in (("ki", ki), ("pi0", pi0))}
    claim = f"ki_keeps_{key}"
    assert claims(variants, 20)[claim].startswith(verdict + ":")
    other = next(c for c in ("ki_keeps_language_following", "ki_keeps_language_following_closed_loop") if c != claim)
    assert claims(variants, 20)[other].startswith("not measurable:")  # the other measure is absent


def test_pooled_following_resamples_scenes_across_seeds() -> None:
    """Two seeds' runs measured on the same two scenes: pooled open and closed loop, one cluster per scene."""
    from reasonact.studies.ki_report import pooled_following

    def report(dot: list[float], own: list[bool]) -> dict:
        scenes = ["drawer-open-v3@10000", "drawer-open-v3@10001"]
        paired = [{"pair": "drawer-open-v3→drawer-close-v3", "scene": s, "told_own": o, "told_other": False}
                  for s, o in zip(scenes, own, strict=True)]  # fmt: skip
        closed = {"following": sum(own) / 2, "paired": paired}
        return {"checkpoint": "c", "following": sum(dot) / 2, "sensitivity": 1.0, "frame_dot": dot,
                "frame_scale": [1.0, 1.0], "frame_episode": scenes, "closed_loop": closed}  # fmt: skip

    # each scene reads the same in both seeds, the scenes differ: the interval spans them
    pooled = pooled_following([report([0.2, 0.6], [True, False]), report([0.2, 0.6], [True, False])])
    assert pooled["language_following"] == pytest.approx(0.4) and pooled["language_following_ci"] == [0.2, 0.6]
    assert pooled["language_following_closed_loop"] == 0.5 and pooled["language_following_closed_loop_ci"] == [0, 1]
    assert pooled["language_following_closed_loop_per_seed"] == [0.5, 0.5] and pooled["success_told_other"] == 0.0
    stale = report([0.2, 0.6], [True, True])
    del stale["frame_episode"]
    with pytest.raises(ValueError, match=r"language_following.json: of \['c'\] predates scene labels"):
        pooled_following([stale])


def test_device_script_refuses_unknown_arguments() -> None:
    """benchmarks/ki_study_device.sh (the GPU session's prepared check; run with DEVICE=cpu --tiny here: 1.8 min)."""
    import subprocess

    script = Path(__file__).parents[2] / "benchmarks" / "ki_study_device.sh"
    done = subprocess.run(["bash", str(script), "--fast"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "unknown argument '--fast' (expected --tiny or nothing)" in done.stderr
