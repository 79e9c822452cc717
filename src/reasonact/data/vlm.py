"""Vision-language co-training data generated from simulator state (knowledge-insulation study).

From the same scenes the demonstrations come from, every `every`-th frame of an expert rollout
becomes records of five kinds: a caption, VQA (object colour, left/right of the gripper,
gripper open/closed, contact, task progress), localisation (the object's box in pixels, from
its projected 3-D position) and planning (the current and the next subtask). Answers are read
from `Scene` facts, never from the image, so they are right by construction; the tests check
them against the renderer (segmentation masks, pixel colours).

Generalisation splits: each kind has training templates and one held-out template, and with
`randomize_colors` some (object, colour) pairs are held out. Each record's `split` is "train",
"heldout_template" or "heldout_combo"; training must use only "train".
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reasonact.envs import EnvConfig, Scene, make_env, make_expert

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
HELDOUT_COMBOS = (("puck", "green"), ("puck", "purple"))  # (object, colour) pairs never trained on


@dataclass(frozen=True)
class VlmConfig:
    tasks: tuple[str, ...] = ("push-v3", "pick-place-v3", "drawer-open-v3", "door-open-v3")  # MetaWorld tasks
    episodes_per_task: int = 5  # expert rollouts per task
    every: int = 10  # keep every n-th frame of a rollout
    env: EnvConfig = field(default_factory=lambda: EnvConfig(image_size=96, randomize_colors=True))
    out: Path = Path("runs/vlm/mt")  # directory receiving vlm.parquet
    heldout_fraction: float = 0.2  # share of records asked with the held-out template of their kind
    seed: int = 0


PRESETS: dict[str, tuple[str, VlmConfig]] = {
    "tiny": (
        "Seconds: 1 task, 1 episode, 48 px.",
        VlmConfig(
            tasks=("pick-place-v3",),
            episodes_per_task=1,
            every=20,
            env=EnvConfig(image_size=48, randomize_colors=True),
            out=Path("runs/vlm/tiny"),
        ),
    ),
    "small": ("4 MT10 tasks × 5 episodes, 96 px, recoloured objects.", VlmConfig()),
}


def progress_words(progress: float) -> str:
    return (
        "done"
        if progress >= 1.0
        else "almost done"
        if progress > 0.66
        else "halfway"
        if progress > 0.33
        else "just started"
    )


def side(scene: Scene, obj: str) -> str | None:
    """'left'/'right' of the gripper in the image (box centres), None when within 2 px or off-screen."""
    a, b = scene.object(obj).box, scene.object("gripper").box
    if a is None or b is None:
        return None
    dx = (a[0] + a[2]) / 2 - (b[0] + b[2]) / 2
    return None if abs(dx) < 2 else "left" if dx < 0 else "right"


def answers(scene: Scene, obj: str) -> dict[str, str]:
    """Ground-truth answer per kind; kinds the scene cannot answer are left out."""
    thing = scene.object(obj)
    out = {"progress": progress_words(scene.progress), "plan": scene.phases[scene.phase]}
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
        f"{out['plan']}, and the task is {out['progress']}."
    )
    return out


def records(scene: Scene, obj: str, rng: np.random.Generator, heldout_fraction: float = 0.2) -> list[dict]:
    """One record per answerable kind; its question uses the held-out template with probability
    `heldout_fraction`, else one of the training templates."""
    held_combo = (obj, scene.object(obj).color) in HELDOUT_COMBOS
    out = []
    for kind, answer in answers(scene, obj).items():
        train, heldout = TEMPLATES[kind]
        use_heldout = rng.random() < heldout_fraction
        template = heldout if use_heldout else train[int(rng.integers(len(train)))]
        split = "heldout_combo" if held_combo else "heldout_template" if use_heldout else "train"
        out.append({"kind": kind, "question": template.format(obj=obj), "answer": answer, "split": split})
    return out


def generate(config: VlmConfig) -> dict:
    """Roll out experts, write `out/vlm.parquet` (image + question/answer/kind/split/task); return counts."""
    import imageio.v3 as iio
    import pyarrow as pa
    import pyarrow.parquet as pq

    from reasonact.checks import check_range

    check_range(config.heldout_fraction, "heldout_fraction", 0.0, 1.0)
    check_range(config.every, "every", low=1)
    rng = np.random.default_rng(config.seed)
    rows: list[dict] = []
    for t_index, task in enumerate(config.tasks):
        env = make_env(dataclasses.replace(config.env, task=task, privileged=True))
        expert, obj = make_expert(task), env.unwrapped.language.obj
        camera = env.unwrapped.cameras[0]
        for episode in range(config.episodes_per_task):
            obs, _ = env.reset(seed=config.seed * 10_000 + t_index * 1_000 + episode)
            expert.reset()
            for step in range(env.unwrapped.max_steps):
                if step % config.every == 0:
                    png = iio.imwrite("<bytes>", obs["images"][camera], extension=".png")
                    for record in records(env.unwrapped.scene(), obj, rng, config.heldout_fraction):
                        rows.append(
                            {
                                "image": {"bytes": png, "path": None},
                                "task": task,
                                "episode": episode,
                                "frame": step,
                                **record,
                            }
                        )
                obs, _, terminated, truncated, _ = env.step(expert.act(obs))
                if terminated or truncated:
                    break
        env.close()
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
    config.out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    from reasonact.atomic import atomic_write_bytes

    atomic_write_bytes(config.out / "vlm.parquet", buffer.getvalue())
    splits = {s: sum(r["split"] == s for r in rows) for s in ("train", "heldout_template", "heldout_combo")}
    kinds = {k: sum(r["kind"] == k for r in rows) for k in TEMPLATES}
    return {"records": len(rows), "splits": splits, "kinds": kinds, "path": str(config.out / "vlm.parquet")}
