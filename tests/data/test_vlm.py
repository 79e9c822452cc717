"""VLM co-training data: answers agree with the simulator (segmentation, pixels, contacts), splits hold out
whole episodes, unsupported tasks are refused before any rollout."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import mujoco
import numpy as np
import pyarrow.parquet as pq
import pytest

from reasonact.data.vlm import (
    HELDOUT_COMBOS,
    PRESETS,
    answers,
    generate,
    progress_words,
    recolor,
    segmented_scene,
    subject_geoms,
)
from reasonact.envs import EnvConfig, make_env, make_expert
from reasonact.envs.metaworld import COLORS, GRIPPER_OPEN, color_name

# The object's geoms by their names in MetaWorld's models: independent of `subject_geoms`'s nearest-geom rule.
NAMED = {"push-v3": "objGeom", "drawer-open-v3": "objGeom", "door-open-v3": "handle", "peg-insert-side-v3": "peg"}


# Hashes of the rows `generate` wrote before it ran on `reasonact.envs.rollout` (its own loop then).
REFERENCE = json.loads((Path(__file__).parent / "reference_vlm.json").read_text())
REFERENCE_CONFIGS = {
    "recoloured": dataclasses.replace(
        PRESETS["tiny"][1],
        tasks=("push-v3", "drawer-open-v3"),
        episodes_per_task=2,
        every=25,
        heldout_scene_every=2,
        heldout_fraction=0.5,
        env=EnvConfig(image_size=64, randomize_colors=True, max_steps=120),
    ),
    "native": dataclasses.replace(PRESETS["tiny"][1], every=30, env=EnvConfig(image_size=48, max_steps=200)),
}


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_unsupported_tasks_are_refused_up_front(tmp_path):
    config = dataclasses.replace(PRESETS["tiny"][1], tasks=("pick-place-v3", "reach-v3", "pusht"), out=tmp_path / "o")
    with pytest.raises(ValueError, match=r"tasks: .*reach-v3: .*no object to manipulate.*pusht: .*segmentation"):
        generate(config)
    assert not (tmp_path / "o").exists()


def test_progress_words_come_from_phase_and_success():
    env = make_env("pick-place-v3", image_size=0)
    env.reset(seed=0)
    scene = env.unwrapped.scene()
    env.close()
    assert progress_words(dataclasses.replace(scene, phase=1, progress=0.99)) == "step 2 of 3"
    assert progress_words(dataclasses.replace(scene, phase=0, progress=0.5)) == "step 1 of 3"  # shaped reward ignored
    assert progress_words(dataclasses.replace(scene, phase=2, progress=1.0)) == "done"  # 1.0 only on success


@pytest.mark.slow
@pytest.mark.smoke
def test_boxes_are_the_segmented_object_and_answers_agree_with_the_simulator():
    """Checked against what the simulator renders and reports, for the puck and for handles and a peg."""
    ious, pixels, checked, contact_seen, progress = [], [], {"color": 0, "gripper": 0, "contact": 0}, set(), {}
    for task, geom_name in NAMED.items():
        env = make_env(task, image_size=96, privileged=True)
        expert, raw = make_expert(task), env.unwrapped
        obj, named = raw.language.obj, [mujoco.mj_name2id(raw.raw.model, mujoco.mjtObj.mjOBJ_GEOM, geom_name)]
        obs, _ = env.reset(seed=1)
        geoms = subject_geoms(raw)
        np.testing.assert_array_equal(geoms, named)  # the nearest-visible-geom rule finds the named object
        recolor(raw, geoms, "red")
        obs, _ = env.reset(seed=1)
        labels = []
        for step in range(200):
            if step % 4 == 0:
                truth = answers(segmented_scene(raw, obj, geoms, "red"), obj)
                labels.append(truth["progress"])
                seg = raw.renderer.segmentation(raw.raw.data, "corner")
                mask = np.isin(seg, named)
                if mask.sum() >= 4:
                    ys, xs = np.nonzero(mask)
                    box = [float(v) for v in truth["box"].strip("[]").split(",")]
                    ious.append(_iou(box, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)))
                    assert truth["color"] == "red"
                    pixels.append(color_name(np.median(obs["images"]["corner"][mask], 0) / 255.0))
                    checked["color"] += 1
                assert truth["gripper"] == ("open" if obs["privileged"][3] > GRIPPER_OPEN else "closed")
                touching = any(
                    {c.geom1, c.geom2} & raw._object_geoms and {c.geom1, c.geom2} & raw._gripper_geoms
                    for c in raw.raw.data.contact[: raw.raw.data.ncon]
                )
                assert truth["contact"] == ("yes" if touching else "no")
                contact_seen.add(touching)
                checked["gripper"] += 1
                checked["contact"] += 1
            obs, _, terminated, _, _ = env.step(expert.act(obs))
            if terminated:
                labels.append(answers(segmented_scene(raw, obj, geoms, "red"), obj)["progress"])
                break
        progress[task] = labels
        env.close()
    assert len(ious) >= 40 and np.mean(np.asarray(ious) >= 0.7) >= 0.95, sorted(ious)[:10]
    assert min(checked.values()) >= 10 and contact_seen == {True, False}, checked
    assert pixels.count("red") >= 0.9 * len(pixels), pixels  # the painted colour is what the camera sees
    for task, labels in progress.items():  # phases only advance; "done" exactly once, at the successful end
        assert labels[-1] == "done" and labels.count("done") == 1, (task, labels)
        steps = [int(w.split()[1]) for w in labels[:-1]]
        assert steps == sorted(steps) and steps[0] == 1 and steps[-1] > 1, (task, labels)


@pytest.mark.slow
def test_splits_hold_out_whole_episodes_combos_and_scenes(tmp_path):
    config = dataclasses.replace(
        PRESETS["tiny"][1],
        tasks=("push-v3", "drawer-open-v3"),
        episodes_per_task=10,
        every=40,
        env=EnvConfig(image_size=64, randomize_colors=True, max_steps=40),
        heldout_fraction=0.3,
        out=tmp_path,
    )
    report = generate(config)
    rows = pq.read_table(tmp_path / "vlm.parquet").drop(["image"]).to_pylist()
    assert report["records"] == len(rows) and all(report["splits"].values()), report["splits"]
    episodes: dict[tuple, set] = {}
    colour: dict[tuple, str] = {}
    for r in rows:
        key = (r["task"], r["episode"])
        episodes.setdefault(key, set()).add(r["split"])
        if r["kind"] == "color":
            colour[key] = r["answer"]
    # one split per episode: a held-out answer (colour, box, progress …) is never in a training record of its episode
    assert all(len(splits) == 1 for splits in episodes.values()), episodes
    split = {key: next(iter(s)) for key, s in episodes.items()}
    obj = {"push-v3": "puck", "drawer-open-v3": "drawer handle"}
    for key, s in split.items():
        assert (s == "heldout_scene") == (key[1] % 5 == 4)  # every 5th layout is never trained on
        if s != "heldout_scene":
            assert (s == "heldout_combo") == ((obj[key[0]], colour[key]) in HELDOUT_COMBOS), key
    held = {c for _, c in HELDOUT_COMBOS}
    assert held <= set(COLORS) and len(held) == len(HELDOUT_COMBOS)  # one held-out object per colour …
    for o, c in HELDOUT_COMBOS:  # … so each held-out colour is a training colour of every other object
        assert sum(oo != o and cc == c for oo, cc in HELDOUT_COMBOS) == 0
    train = [r for r in rows if r["split"] == "train"]
    assert {r["question"] for r in rows if r["split"] == "heldout_template"}.isdisjoint(r["question"] for r in train)
    assert {r["kind"] for r in rows} >= {"caption", "color", "gripper", "contact", "progress", "box", "plan", "next"}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REFERENCE_CONFIGS))
def test_rows_equal_the_reference_recorded_before_the_shared_rollout(tmp_path, name):
    report = generate(dataclasses.replace(REFERENCE_CONFIGS[name], out=tmp_path))
    digest = hashlib.sha256()
    rows = pq.read_table(report["path"]).to_pylist()
    for row in rows:  # image bytes (PNG of the very frame) and every other column, in order
        digest.update(row["image"]["bytes"])
        digest.update(json.dumps({k: v for k, v in row.items() if k != "image"}, sort_keys=True).encode())
    assert {"rows": len(rows), "sha256": digest.hexdigest()[:16]} == REFERENCE[name]
