"""VLM co-training data: answers agree with the simulator (segmentation, pixels, contacts), splits hold out."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow.parquet as pq
import pytest

from reasonact.data.vlm import HELDOUT_COMBOS, PRESETS, answers, generate, records
from reasonact.envs import make_env, make_expert
from reasonact.envs.metaworld import COLORS, GRIPPER_OPEN, color_name


def test_vqa_answers_agree_with_the_simulator():
    """Checked against what the simulator renders and reports, not against the Scene the answers came from."""
    env = make_env("pick-place-v3", image_size=64, privileged=True, randomize_colors=True)
    expert = make_expert("pick-place-v3")
    raw = env.unwrapped
    checked = {"color": 0, "gripper": 0, "contact": 0, "box": 0}
    contact_seen = set()
    for seed in (0,):
        obs, _ = env.reset(seed=seed)
        for step in range(60):
            if step % 6 == 0:
                truth = answers(raw.scene(), "puck")
                image, seg = obs["images"]["corner"], raw.renderer.segmentation(raw.raw.data, "corner")
                puck = np.isin(seg, raw._obj_geoms)
                if puck.sum() > 4:  # visible: the pixels say which colour it is and where it is
                    assert truth["color"] == color_name(image[puck].mean(0) / 255.0)
                    ys, xs = np.nonzero(puck)
                    x0, y0, x1, y1 = (float(v) for v in truth["box"].strip("[]").split(","))
                    assert x0 - 1.5 <= xs.mean() <= x1 + 1.5 and y0 - 1.5 <= ys.mean() <= y1 + 1.5
                    checked["color"] += 1
                    checked["box"] += 1
                assert truth["gripper"] == ("open" if obs["privileged"][3] > GRIPPER_OPEN else "closed")
                checked["gripper"] += 1
                touching = any(
                    {c.geom1, c.geom2} & set(raw._obj_geoms) and {c.geom1, c.geom2} & raw._gripper_geoms
                    for c in raw.raw.data.contact[: raw.raw.data.ncon]
                )
                assert truth["contact"] == ("yes" if touching else "no")
                contact_seen.add(touching)
                checked["contact"] += 1
            obs, *_ = env.step(expert.act(obs))
    env.close()
    assert min(checked.values()) >= 2, checked
    assert contact_seen == {True, False}  # both answers occurred, so the check could fail either way


def test_left_right_answers_agree_with_segmentation():
    env = make_env("push-v3", image_size=96)
    raw, sides = env.unwrapped, []
    for seed in range(10):
        env.reset(seed=seed)
        truth = answers(raw.scene(), "puck").get("relation")
        seg = raw.renderer.segmentation(raw.raw.data, "corner")
        puck_x = np.nonzero(np.isin(seg, raw._obj_geoms))[1].mean()
        grip_x = np.nonzero(np.isin(seg, list(raw._gripper_geoms)))[1].mean()
        if truth is not None and abs(puck_x - grip_x) > 2:
            assert truth == ("left" if puck_x < grip_x else "right"), seed
            sides.append(truth)
    env.close()
    assert len(sides) >= 3, sides


def test_heldout_combos_are_never_training_records():
    env = make_env("push-v3", image_size=16, randomize_colors=True)
    rng = np.random.default_rng(0)
    seen = set()
    for seed in range(30):
        env.reset(seed=seed)
        scene = env.unwrapped.scene()
        colour = scene.object("puck").color
        seen.add(colour)
        for record in records(scene, "puck", rng):
            if ("puck", colour) in HELDOUT_COMBOS:
                assert record["split"] == "heldout_combo"
            else:
                assert record["split"] in ("train", "heldout_template")
    env.close()
    assert seen <= set(COLORS) and len(seen) >= 5 and {c for _, c in HELDOUT_COMBOS} & seen


@pytest.mark.slow
def test_generate_writes_records_with_all_kinds_and_splits(tmp_path):
    config = dataclasses.replace(PRESETS["tiny"][1], out=tmp_path, episodes_per_task=2, every=5)
    report = generate(config)
    table = pq.read_table(tmp_path / "vlm.parquet")
    assert table.num_rows == report["records"] > 0
    rows = table.drop(["image"]).to_pylist()
    assert {r["kind"] for r in rows} >= {"caption", "color", "gripper", "contact", "progress", "box", "plan", "next"}
    assert report["splits"]["train"] > 0 and report["splits"]["heldout_template"] > 0
    plans = [r["answer"] for r in rows if r["kind"] == "plan"]
    assert plans[0] == "reach the puck" and "move the puck to the goal" in plans
