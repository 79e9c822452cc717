"""Vision-language co-training data generated from simulator state (knowledge-insulation study).

From the same scenes the demonstrations come from, every `every`-th frame of an expert rollout
(and its final frame) becomes records of nine kinds: a caption, VQA (object colour, left/right of
the gripper, gripper open/closed, contact, task progress), localisation (the object's box in
pixels) and planning (the current and the next subtask). Answers are read from simulator facts,
never from the image, so they are right by construction:

* boxes: the tight pixel box of the object's geoms in MuJoCo's segmentation of the very frame;
* progress: from the expert's subtask phase and the success flag ("done" only on success);
* colour: each episode recolours the object from `COLORS` (with `EnvConfig.randomize_colors`).

Generalisation splits are whole episodes, so no held-out answer can be read off training records
of the same episode: "heldout_scene" (every `heldout_scene_every`-th episode: layouts never
trained on), "heldout_combo" (an object in a colour it is never trained in, while that colour is
trained on other objects: `HELDOUT_COMBOS`), "heldout_template" (all questions phrased with the
held-out template of their kind), else "train". Training must use only "train".

Tasks: MetaWorld tasks whose instruction names an object. reach-v3 (no object to manipulate),
PushT (pygame drawing, no MuJoCo segmentation) and LIBERO are refused up front with the reason.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reasonact.atomic import atomic_write_parquet
from reasonact.envs import EnvConfig, Scene, make_expert, make_vector_env, rollout, simulator_of
from reasonact.envs.metaworld import COLORS

TEMPLATES: dict[str, tuple[tuple[str, ...], str]] = {  # kind → (training templates, held-out template)
    "caption": (("Describe the scene.", "What is happening in the image?"), "Summarise what you see."),
    "color": (("What colour is the {obj}?", "Which colour does the {obj} have?"), "Name the colour of the {obj}."),
    "relation": (
        ("Is the {obj} left or right of the gripper?",),
        "From the camera's view, on which side of the gripper is the {obj}?",
    ),
    "gripper": (("Is the gripper open or closed?",), "Are the robot's fingers open or shut?"),
    "contact": (("Is the robot touching the {obj}?",), "Is there contact between the gripper and the {obj}?"),
    "progress": (("How far along is the task?",), "How much of the task is done?"),
    "box": (("Where is the {obj}? Answer with a box [x0, y0, x1, y1].",), "Locate the {obj} as [x0, y0, x1, y1]."),
    "plan": (("What should the robot do now?",), "What is the robot's current step?"),
    "next": (("What should the robot do after this step?",), "Which step comes next?"),
}
# (object, colour) pairs never trained on; each colour is trained on the other objects
HELDOUT_COMBOS = (
    ("puck", "green"),
    ("drawer handle", "red"),
    ("door handle", "blue"),
    ("peg", "yellow"),
    ("button", "purple"),
    ("window handle", "orange"),
)
SPLITS = ("train", "heldout_template", "heldout_combo", "heldout_scene")
MIN_PIXELS = 4  # an object covering fewer pixels counts as not visible (no box, no left/right)
EFFECTOR = "gripper"


@dataclass(frozen=True)
class VlmConfig:
    tasks: tuple[str, ...] = ("push-v3", "pick-place-v3", "drawer-open-v3", "door-open-v3")  # MetaWorld tasks
    episodes_per_task: int = 5  # expert rollouts per task
    every: int = 10  # keep every n-th frame of a rollout (and the final one)
    env: EnvConfig = field(default_factory=lambda: EnvConfig(image_size=96, randomize_colors=True))
    out: Path = Path("runs/vlm/mt")  # directory receiving vlm.parquet
    heldout_fraction: float = 0.2  # share of (remaining) episodes asked with the held-out template of each kind
    heldout_scene_every: int = 5  # every n-th episode of a task is a held-out scene; 0 = none
    seed: int = 0


PRESETS: dict[str, tuple[str, VlmConfig]] = {
    "tiny": (
        "Seconds: 1 task, 1 episode, 64 px (the puck covers a handful of pixels).",
        VlmConfig(
            tasks=("pick-place-v3",),
            episodes_per_task=1,
            every=20,
            env=EnvConfig(image_size=64, randomize_colors=True),
            out=Path("runs/vlm/tiny"),
        ),
    ),
    "small": ("4 MT10 tasks × 5 episodes, 96 px, recoloured objects.", VlmConfig()),
}


def refusal(task: str) -> str | None:
    """Why `task` cannot give VLM records, or None when it can."""
    simulator = simulator_of(task)
    if simulator.vlm_unsupported:
        return simulator.vlm_unsupported
    if task == "reach-v3":
        return "reach-v3 has no object to manipulate (its puck stays out of the way), so no object to ask about"
    from reasonact.envs.tasks import MT10

    if task not in MT10:
        return "only MT10 tasks name their object in language (the other MetaWorld tasks say 'object')"
    return None


def check_tasks(tasks: tuple[str, ...]) -> None:
    reasons = {task: why for task in tasks if (why := refusal(task))}
    if reasons:
        listed = "; ".join(f"{task}: {why}" for task, why in reasons.items())
        raise ValueError(f"tasks: cannot generate VLM data for {listed}")


def subject_geoms(raw) -> np.ndarray:
    """Geom ids drawn for the task's object: the visible geom of a movable body nearest to the object
    position MetaWorld reports (the puck, the door's handle, the drawer's handle, the peg, the button)."""
    m, d = raw.raw.model, raw.raw.data
    visible = [g for g in sorted(raw._object_geoms) if m.geom_group[g] <= 2 and m.geom_rgba[g, 3] > 0]
    distance = [float(np.linalg.norm(d.geom_xpos[g] - raw._obs[4:7])) for g in visible]
    return np.asarray([visible[int(np.argmin(distance))]])


def recolor(raw, geoms: np.ndarray, color: str) -> None:
    """Paint `geoms` in a palette colour (an explicit rgba overrides the material)."""
    for g in geoms:
        raw.raw.model.geom_matid[g] = -1
        raw.raw.model.geom_rgba[g] = (*COLORS[color], 1.0)


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Tight pixel box (x0, y0, x1, y1) of a bool mask (h, w), pixel edges (x1 = last column + 1);
    None under `MIN_PIXELS`."""
    if mask.sum() < MIN_PIXELS:
        return None
    ys, xs = np.nonzero(mask)
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def segmented_scene(raw, obj: str, geoms: np.ndarray, color: str) -> Scene:
    """The env's scene with the object's and gripper's boxes taken from the segmentation of the first
    camera's frame, and the object's colour as painted."""
    scene = raw.scene()
    seg = raw.renderer.segmentation(raw.raw.data, raw.cameras[0])  # (h, w) geom ids
    boxes = {obj: mask_box(np.isin(seg, geoms)), EFFECTOR: mask_box(np.isin(seg, list(raw._gripper_geoms)))}
    objects = tuple(
        dataclasses.replace(o, box=boxes[o.name], color=color if o.name == obj else o.color)
        for o in scene.objects
        if o.name in boxes
    )
    return dataclasses.replace(scene, objects=objects)


def progress_words(scene: Scene) -> str:
    """ "done" on success (`progress` is 1 only then), else the expert's step: "step 2 of 3"."""
    if scene.progress >= 1.0:
        return "done"
    return f"step {scene.phase + 1} of {len(scene.phases)}"


def side(scene: Scene, obj: str) -> str | None:
    """'left'/'right' of the gripper in the image (box centres), None when within 2 px or not visible."""
    a, b = scene.object(obj).box, scene.object(EFFECTOR).box
    if a is None or b is None:
        return None
    dx = (a[0] + a[2]) / 2 - (b[0] + b[2]) / 2
    return None if abs(dx) < 2 else "left" if dx < 0 else "right"


def answers(scene: Scene, obj: str) -> dict[str, str]:
    """Ground-truth answer per kind; kinds the scene cannot answer are left out."""
    thing = scene.object(obj)
    out = {"progress": progress_words(scene), "plan": scene.phases[scene.phase]}
    out["next"] = (
        scene.phases[scene.phase + 1] if scene.phase + 1 < len(scene.phases) else "nothing, this is the last step"
    )
    out["contact"] = "yes" if scene.contact else "no"
    if scene.gripper_open is not None:
        out["gripper"] = "open" if scene.gripper_open else "closed"
    if thing.color:
        out["color"] = thing.color
    if (rel := side(scene, obj)) is not None:
        out["relation"] = rel
    if thing.box is not None:
        out["box"] = "[" + ", ".join(str(round(v)) for v in thing.box) + "]"
    colour = f"{thing.color} " if thing.color else ""
    grip = "" if scene.gripper_open is None else f" with its gripper {out['gripper']}"
    out["caption"] = (
        f"A robot arm{grip} is working on a {colour}{obj}; it is about to "
        f"{out['plan']}, and the task is {'done' if out['progress'] == 'done' else 'at ' + out['progress']}."
    )
    return out


def episode_split(obj: str, color: str, episode: int, rng: np.random.Generator, config: VlmConfig) -> str:
    """One split for all records of an episode: held-out scene, then held-out combo, then template."""
    if config.heldout_scene_every and episode % config.heldout_scene_every == config.heldout_scene_every - 1:
        return "heldout_scene"
    if (obj, color) in HELDOUT_COMBOS:
        return "heldout_combo"
    return "heldout_template" if rng.random() < config.heldout_fraction else "train"


def records(scene: Scene, obj: str, split: str, rng: np.random.Generator) -> list[dict]:
    """One record per answerable kind; "heldout_template" episodes ask with the held-out template of
    each kind, the others with one of the training templates."""
    out = []
    for kind, answer in answers(scene, obj).items():
        train, heldout = TEMPLATES[kind]
        template = heldout if split == "heldout_template" else train[int(rng.integers(len(train)))]
        out.append({"kind": kind, "question": template.format(obj=obj), "answer": answer, "split": split})
    return out


def frame_rows(image: np.ndarray, scene: Scene, obj: str, split: str, rng, where: dict) -> list[dict]:
    """The records of one frame (h, w, 3): its image (PNG) + `where` (task, episode, frame) + Q/A."""
    import imageio.v3 as iio

    png = iio.imwrite("<bytes>", image, extension=".png")
    return [{"image": {"bytes": png, "path": None}, **where, **r} for r in records(scene, obj, split, rng)]


def task_rows(config: VlmConfig, t_index: int, task: str, rng: np.random.Generator) -> list[dict]:
    """The records of the `config.episodes_per_task` expert episodes of `task` (the `t_index`-th task)."""
    env_config = dataclasses.replace(config.env, task=task, privileged=True, randomize_colors=False)
    # in-process, so the hooks below paint and segment its model; colours are ours: the env's own
    # recolouring covers only pucks
    envs = make_vector_env([env_config], asynchronous=False)
    expert, raw = make_expert(task), envs.envs[0].unwrapped
    obj, cam = raw.language.obj, raw.cameras[0]
    envs.reset(seed=[config.seed])
    geoms = subject_geoms(raw)
    seeds = [config.seed * 10_000 + t_index * 1_000 + episode for episode in range(config.episodes_per_task)]
    colors, splits = {}, {}
    for episode, seed in enumerate(seeds):
        draw = np.random.default_rng([config.seed, t_index, episode])  # colour and split: the episode's own
        colors[seed] = list(COLORS)[draw.integers(len(COLORS))] if config.env.randomize_colors else raw._native_color()
        splits[seed] = episode_split(obj, colors[seed], episode, draw, config)
    painted = {}  # the colour of the episode running

    def paint(slot: int, seed: int) -> None:
        painted["color"] = colors[seed]
        if config.env.randomize_colors:
            recolor(raw, geoms, colors[seed])

    try:
        episodes = rollout(
            envs,
            seeds,
            lambda slot, seed: expert,
            record=("images", "probe"),
            before_reset=paint,
            probe=lambda slot, step, ended: (  # only the frames kept: segmentation renders the scene again
                segmented_scene(raw, obj, geoms, painted["color"]) if ended or step % config.every == 0 else None
            ),
        )
    finally:
        envs.close()
    rows = []
    for episode, ep in enumerate(episodes):
        where, split = {"task": task, "episode": episode}, splits[ep.seed]
        images, scenes = ep.frames[f"images/{cam}"], ep.frames["probe"]
        for step in range(0, ep.length, config.every):
            rows += frame_rows(images[step], scenes[step], obj, split, rng, {**where, "frame": step})
        # the final frame: the only one answered "done" when it succeeded
        rows += frame_rows(ep.final_images[cam], ep.final_probe, obj, split, rng, {**where, "frame": ep.length})
    return rows


def generate(config: VlmConfig) -> dict:
    """Roll out experts, write `out/vlm.parquet` (image + question/answer/kind/split/task); return counts."""
    import pyarrow as pa

    from reasonact.checks import check_range

    check_range(config.heldout_fraction, "heldout_fraction", 0.0, 1.0)
    check_range(config.every, "every", low=1)
    check_range(config.heldout_scene_every, "heldout_scene_every", low=0)
    check_tasks(config.tasks)
    rng = np.random.default_rng(config.seed)
    rows = [row for t_index, task in enumerate(config.tasks) for row in task_rows(config, t_index, task, rng)]
    import datasets

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "task": datasets.Value("string"),
            "episode": datasets.Value("int64"),
            "frame": datasets.Value("int64"),
            **{k: datasets.Value("string") for k in ("kind", "question", "answer", "split")},
        }
    )
    table = pa.Table.from_pylist(rows, schema=features.arrow_schema)
    atomic_write_parquet(config.out / "vlm.parquet", table)
    splits = {s: sum(r["split"] == s for r in rows) for s in SPLITS}
    kinds = {k: sum(r["kind"] == k for r in rows) for k in TEMPLATES}
    return {"records": len(rows), "splits": splits, "kinds": kinds, "path": str(config.out / "vlm.parquet")}
