"""Demo section: the shipped `small` VLA and the shipped CNN behaviour-cloning baseline acting closed loop
in MetaWorld, each beside the scripted expert and a random policy on the same seeds (SPEC §2.6).

Both checkpoints were trained here on the same expert demonstrations (50 per MT10 task, 100 for reach,
push, pick-place and peg-insert; one 128 px camera, robot state and instruction; no privileged object state)
for the same CPU time and ship with the package; their full MT10 evaluations (50 episodes per task) are
`benchmarks/results/vla_eval_small.json` (with the baselines) and `bc_eval_small.json`.
"""

from __future__ import annotations

from pathlib import Path

from reasonact.bc.policy import load_bc
from reasonact.demo.config import DemoConfig
from reasonact.runs import Run
from reasonact.vla.evaluate import VLAEvalConfig
from reasonact.vla.evaluate import run as evaluate
from reasonact.vla.policy import load_checkpoint

PACKAGE = Path(__file__).resolve().parents[1]
SHIPPED = {  # policy name in the report → (output stem, checkpoint directory, its loader)
    "VLA": ("vla", PACKAGE / "vla" / "policies" / "mt10-small-128", load_checkpoint),
    "CNN BC": ("cnn_bc", PACKAGE / "bc" / "policies" / "mt10-small-128", load_bc),
}


def section(config: DemoConfig, run: Run) -> tuple[str, dict]:
    """Evaluate every shipped policy on `config.closed_loop.tasks` × `episodes` seeds (GIF of the first
    episode per task); the expert and the random policy run once on the same seeds."""
    cfg = config.closed_loop
    out = run.path / "closed_loop"
    reports = {}
    for i, (name, (stem, checkpoint, load)) in enumerate(SHIPPED.items()):
        eval_config = VLAEvalConfig(
            checkpoint=checkpoint,
            suite="mt10",
            tasks=cfg.tasks,
            episodes=cfg.episodes,
            seed=cfg.seed,
            num_envs=cfg.num_envs,
            n_action_steps=cfg.n_action_steps,
            baselines=("random",) if i == 0 else (),  # the random policy once, on the same seeds
            expert_cache=out / "expert",
            out=out / f"{stem}.json",
        )
        reports[name] = evaluate(eval_config, load)
    first = next(iter(reports.values()))
    names = list(reports)
    header = " | ".join(f"{n} [95% CI]" for n in names)
    rows = []
    for task in cfg.tasks:
        cells = [f"{r['tasks'][task]['success']:.2f} [{r['tasks'][task]['ci'][0]:.2f}, {r['tasks'][task]['ci'][1]:.2f}]"
                 for r in reports.values()]  # fmt: skip
        expert = first["tasks"][task]["expert_success"]
        random = first["tasks"][task]["baselines"]["random"]["success"]
        rows.append(f"| {task} | {' | '.join(cells)} | {expert:.2f} | {random:.2f} |")
    means = " | ".join(f"**{r['mean_success']:.2f}**" for r in reports.values())
    rows.append(
        f"| mean | {means} | {first['expert_mean_success']:.2f} | {first['baselines']['random']['mean_success']:.2f} |"
    )
    gifs = "\n".join(
        f"![{n}, {task}](closed_loop/{stem}/vla/videos/{task}_ep0.gif)"
        for task in cfg.tasks
        for n, (stem, _, _) in SHIPPED.items()
    )
    text = f"""## Acting: shipped policies, closed loop in MetaWorld

The shipped `small` VLA ({first["variant"]}, step {first["step"]}) and the CNN behaviour-cloning baseline trained
on the same data, {cfg.episodes} episode(s) per task from seed {cfg.seed} (seeds the data collection never used),
each executing {cfg.n_action_steps or "all"} actions of a chunk before re-planning, beside the scripted expert
and a uniformly random policy on the same seeds. Few episodes: the intervals are wide; the full MT10
evaluation is `reasonact vla eval src/reasonact/vla/policies/mt10-small-128 --n-action-steps {cfg.n_action_steps}`.

| task | {header} | expert | random |
|---|{"---|" * len(names)}---|---|
{chr(10).join(rows)}

{gifs}
"""
    numbers = {name: {k: r[k] for k in ("mean_success", "ci", "tasks")} for name, r in reports.items()}
    numbers["expert_mean_success"] = first["expert_mean_success"]
    numbers["random_mean_success"] = first["baselines"]["random"]["mean_success"]
    return text, numbers


__all__ = ["SHIPPED", "section"]
