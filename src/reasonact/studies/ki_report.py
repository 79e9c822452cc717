"""The KI study's report (`reasonact vla study`, `studies/ki.py`): ki_study.json, ki_study.md and plots/, written
from the run directories alone, over the planned runs (failed ones listed, unmeasured ones `missing`, neither
averaged in), with each issue-17 claim as 'reproduced', 'not reproduced' or 'not measurable'."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reasonact.atomic import atomic_write_json, read_json
from reasonact.stats import bootstrap_interval, wilson_interval
from reasonact.studies.ki_config import (
    HELDOUT_SPLITS,
    StudyConfig,
    on_schedule,
    pretrain_dir,
    run_dir,
    run_name,
    run_state,
)


def trials(report: dict) -> tuple[int, int]:
    """(successes, episodes) of a `vla eval` report, over its tasks."""
    n = report["episodes"] * len(report["tasks"])
    return round(report["mean_success"] * n), n


def heldout_mean(vqa: dict, key: str = "accuracy") -> float | None:
    """Mean of a VQA metric over the held-out splits present (all splits when none is held out); NaNs skipped."""
    splits = [s for s in HELDOUT_SPLITS if s in vqa] or list(vqa)
    values = [vqa[s][key] for s in splits if np.isfinite(vqa[s].get(key, np.nan))]
    return float(np.mean(values)) if values else None


def ratio(after: float | None, before: float | None) -> float | None:
    return after / before if before and after is not None else None


def variant_summary(cfg: StudyConfig, variant: str, before: dict) -> dict:
    """Per-variant numbers from its run directories over the planned seeds: failed runs are listed and runs not
    measured yet are `missing` (with their state); neither is averaged in."""
    seeds, failed, curves, final, heldout, retention, perplexity, latency = [], [], [], [0, 0], [0, 0], [], [], []
    following: list[dict] = []
    missing: list[dict] = []
    for seed in cfg.planned_seeds:
        run = run_dir(cfg, variant, seed)
        state = run_state(cfg, run)
        if state == "failed":
            failed.append({"seed": seed, **read_json(run / "failed.json")})
            continue
        if state != "measured":
            missing.append({"seed": seed, "state": state})
            continue
        study = run / "study"
        seeds.append(seed)
        curve = sorted(study.glob("closed_loop_step_*.json"))  # measured under any schedule: keep this one's
        reports = [read_json(p) for p in curve if on_schedule(cfg, int(p.stem.rsplit("_", 1)[1]))]
        curves.append({r["step"]: r["mean_success"] for r in reports})
        for total, report in ((final, reports[-1]), (heldout, read_json(study / "heldout_instruction.json"))):
            k, n = trials(report)
            total[0], total[1] = total[0] + k, total[1] + n
        after = read_json(study / "vqa.json")
        retention.append(ratio(heldout_mean(after), heldout_mean(before)))
        perplexity.append(ratio(heldout_mean(after, "caption_perplexity"), heldout_mean(before, "caption_perplexity")))
        latency.append(read_json(study / "latency.json")["median_ms"])
        following.append(read_json(study / "language_following.json"))
    steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    curve = {s: [c[s] for c in curves] for s in steps}
    known = [r for r in retention if r is not None]
    return {
        "final_success": final[0] / final[1] if final[1] else None,
        "success_ci": list(wilson_interval(*final)) if final[1] else None,
        "episodes": final[1],
        "steps_to_reach_pi0_final": None,  # filled in by `summarise` once pi0's final success is known
        "vqa_retention": float(np.mean(known)) if known else None,
        "vqa_retention_per_seed": retention,
        "caption_perplexity_ratio": mean_known(perplexity),
        "heldout_instruction_success": heldout[0] / heldout[1] if heldout[1] else None,
        "heldout_instruction_ci": list(wilson_interval(*heldout)) if heldout[1] else None,
        **pooled_following(following),
        "latency_ms": float(np.median(latency)) if latency else None,
        "seeds": seeds,
        "failed": failed,
        "missing": missing,
        "success_vs_step": {
            str(s): {"mean": float(np.mean(v)), "min": min(v), "max": max(v)} for s, v in curve.items()
        },
    }


def pooled_following(reports: list[dict]) -> dict:
    """Language following of a variant, its seeds pooled: open loop Σ dot / Σ scale over all frames, closed loop
    the mean paired difference over all episode pairs, each with a 95 % bootstrap interval that resamples
    scenes whole (the seeds' runs are measured on the same scenes, so a scene's frames or episodes from every
    run form one cluster); the per-seed values and the mean sensitivity."""
    from reasonact.vla.language_following import closed_loop_scores

    stale = [r["checkpoint"] for r in reports if "frame_dot" in r and "frame_episode" not in r]
    if stale:
        raise ValueError(f"language_following.json: of {stale} predates scene labels (frame_episode); run the study "
                         "without --report-only to measure it again")  # fmt: skip
    dot = [x for r in reports for x in r.get("frame_dot", [])]
    scale = [x for r in reports for x in r.get("frame_scale", [])]
    ci = bootstrap_interval(dot, scale, clusters=[x for r in reports for x in r.get("frame_episode", [])])
    closed = [r["closed_loop"] for r in reports if r.get("closed_loop")]
    pooled = closed_loop_scores([p for c in closed for p in c["paired"]]) if closed else None
    return {
        "language_following": sum(dot) / sum(scale) if sum(scale) > 0 else None,
        "language_following_ci": list(ci) if ci else None,
        "language_following_per_seed": [r["following"] for r in reports],
        "instruction_sensitivity": mean_known([r["sensitivity"] for r in reports]),
        "language_following_closed_loop": pooled["following"] if pooled else None,
        "language_following_closed_loop_ci": pooled["following_ci"] if pooled else None,
        "language_following_closed_loop_per_seed": [c["following"] for c in closed],
        "success_told_own": pooled["success_told_own"] if pooled else None,
        "success_told_other": pooled["success_told_other"] if pooled else None,
    }


def mean_known(values: list[float | None]) -> float | None:
    """Mean over seeds; None when a seed has no value (or there is none)."""
    return float(np.mean(values)) if values and None not in values else None


def summarise(cfg: StudyConfig) -> dict:
    """The study's JSON from the run directories (steps_to_reach_pi0_final against pi0's final mean success)."""
    pre = pretrain_dir(cfg) / "study_vqa.json"
    before = read_json(pre) if pre.exists() else {}
    variants = {v: variant_summary(cfg, v, before) for v in cfg.planned_variants}
    target = variants.get("pi0", {}).get("final_success")
    for summary in variants.values():
        reached = [int(s) for s, v in summary["success_vs_step"].items() if target is not None and v["mean"] >= target]
        summary["steps_to_reach_pi0_final"] = min(reached) if reached else None
    return {
        "pretrain_vqa_accuracy": heldout_mean(before),
        "pretrain_caption_perplexity": heldout_mean(before, "caption_perplexity"),
        "pi0_final_success": target,
        "steps": cfg.train.steps,
        "batch_size": cfg.train.batch_size,
        "suite": cfg.suite,
        "tasks": list(cfg.tasks),
        "episodes_per_checkpoint": cfg.episodes,
        "eval_every": cfg.eval_every,
        "vlm_fraction": cfg.vlm_fraction,
        "planned_runs": len(cfg.planned_variants) * len(cfg.planned_seeds),
        "missing_runs": [run_name(v, m["seed"]) for v, s in variants.items() for m in s["missing"]],
        "variants": variants,
        "claims": claims(variants, cfg.train.steps),
    }


# The least language following the study counts as following, in either measure: a tenth of the experts'
# instruction-induced switch open loop, one more success in ten episode pairs closed loop. An interval that
# merely excludes 0 is reached by text that barely moves the action (the 20-step study's pi0-FAST read 0.004
# [0.00, 0.01] open loop, docs/vla.md), a change no rollout would show; the claim is about behaviour.
MIN_FOLLOWING = 0.1


def claims(v: dict, steps: int) -> dict[str, str]:
    """Each target of issue 17 → 'reproduced', 'not reproduced' or 'not measurable' (with the numbers), marked
    '(partial: …)' while a variant it compares has planned seeds not measured yet."""

    def get(name: str, key: str):
        return v.get(name, {}).get(key)

    def verdict(ok: bool | None, detail: str, *names: str) -> str:
        partial = [f"{n} lacks seeds {[m['seed'] for m in get(n, 'missing')]}" for n in names if get(n, "missing")]
        status = "not measurable" if ok is None else "reproduced" if ok else "not reproduced"
        return status + (f" (partial: {'; '.join(partial)})" if partial else "") + f": {detail}"

    reach = get("ki", "steps_to_reach_pi0_final")
    retention_ki, retention_pi0 = get("ki", "vqa_retention"), get("pi0", "vqa_retention")
    lat_ki, lat_pi0, lat_fast = get("ki", "latency_ms"), get("pi0", "latency_ms"), get("pi0_fast", "latency_ms")
    frozen, ki = get("frozen", "final_success"), get("ki", "final_success")

    def follows(key: str, what: str) -> str:
        """KI keeps more language following than π0 (`key`): KI's interval clears MIN_FOLLOWING and lies above
        π0's; not measurable while neither interval clears it."""
        value_ki, value_pi0 = (get(name, key) for name in ("ki", "pi0"))
        ci_ki, ci_pi0 = (get(name, key + "_ci") for name in ("ki", "pi0"))
        clear = [ci is not None and ci[0] >= MIN_FOLLOWING for ci in (ci_ki, ci_pi0)]
        ok = None if ci_ki is None or ci_pi0 is None or not any(clear) else clear[0] and ci_ki[0] > ci_pi0[1]
        return verdict(ok, f"{what} KI {with_ci(value_ki, ci_ki)}, pi0 {with_ci(value_pi0, ci_pi0)} (target: "
                       f"KI's interval ≥ {MIN_FOLLOWING:g} and above pi0's; not measurable when neither interval "
                       f"clears {MIN_FOLLOWING:g})", "ki", "pi0")  # fmt: skip

    return {
        "ki_trains_fast": verdict(None if not get("pi0", "final_success") or ki is None else
                                  reach is not None and reach <= steps / 2,
                                  f"KI reaches pi0's final success ({fmt(get('pi0', 'final_success'))}; a target of "
                                  f"0 is not measurable) at step {reach} of {steps} (target ≤ {steps / 2:g})",
                                  "ki", "pi0"),
        "ki_keeps_knowledge": verdict(None if retention_ki is None or retention_pi0 is None else
                                      retention_ki >= 0.9 and retention_pi0 < retention_ki,
                                      f"VQA retention KI {fmt(retention_ki)}, pi0 {fmt(retention_pi0)} "
                                      "(target KI ≥ 0.9 > pi0; not measurable when the pre-stage scores 0)",
                                      "ki", "pi0"),
        "ki_runs_fast": verdict(None if None in (lat_ki, lat_pi0, lat_fast) else
                                lat_ki <= 1.2 * lat_pi0 and lat_fast >= 2 * lat_ki,
                                f"latency ms KI {fmt(lat_ki, 1)}, pi0 {fmt(lat_pi0, 1)}, pi0_fast {fmt(lat_fast, 1)} "
                                "(target KI ≤ 1.2 × pi0, pi0_fast ≥ 2 × KI)", "ki", "pi0", "pi0_fast"),
        "ki_keeps_language_following": follows("language_following", "open-loop language following (1 = the "
                                               "action changes with the instruction as the experts' does, 0 = the "
                                               "text is ignored)"),
        "ki_keeps_language_following_closed_loop": follows("language_following_closed_loop", "closed-loop "
                                                           "language following (success told its own task − told "
                                                           "a same-scene partner's)"),
        "frozen_fails": verdict(None if frozen is None or ki is None else frozen < ki,
                                f"final success frozen {fmt(frozen)}, KI {fmt(ki)} (target frozen < KI)",
                                "frozen", "ki"),
    }  # fmt: skip


def fmt(x, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def with_ci(x: float | None, ci: list[float] | None) -> str:
    return fmt(x) + ("" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]")


def table_row(name: str, s: dict) -> str:
    reach = s["steps_to_reach_pi0_final"]
    failed = ", ".join(f"{f['seed']}@{f['step']}" for f in s["failed"]) or "—"
    missing = ", ".join(f"{m['seed']} ({m['state']})" for m in s["missing"]) or "—"
    cells = [name, with_ci(s["final_success"], s["success_ci"]),
             "—" if reach is None else str(reach), fmt(s["vqa_retention"]), fmt(s["caption_perplexity_ratio"]),
             fmt(s["heldout_instruction_success"]),
             with_ci(s["language_following"], s["language_following_ci"]),
             with_ci(s["language_following_closed_loop"], s["language_following_closed_loop_ci"]),
             fmt(s["latency_ms"], 1), str(s["seeds"]), failed, missing]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def partial_note(summary: dict) -> str:
    """The report's line on completeness: all planned runs measured, or which are not (never silently partial)."""
    missing, planned = summary["missing_runs"], summary["planned_runs"]
    if not missing:
        return f"Complete: all {planned} planned runs are measured or failed."
    return (f"**Partial study: {len(missing)} of {planned} planned runs are not measured yet** ({', '.join(missing)}); "
            "every number below is over the measured seeds listed in its row, and claims that compare an "
            "incomplete variant say so.")  # fmt: skip


def write_report(cfg: StudyConfig) -> dict:
    """ki_study.json, ki_study.md and plots/ under `cfg.report`, from the run directories only."""
    summary = summarise(cfg)
    plots = plot(summary, cfg.report / "plots")
    atomic_write_json(cfg.report / "ki_study.json", summary)
    lines = [
        "# Knowledge-insulation study (generated by `reasonact vla study`)",
        "",
        f"{summary['steps']} steps at batch {summary['batch_size']}, every variant from the same pre-stage backbone "
        f"(VQA accuracy {fmt(summary['pretrain_vqa_accuracy'])}, caption perplexity "
        f"{fmt(summary['pretrain_caption_perplexity'])}); closed loop on {summary['suite']} "
        f"{', '.join(summary['tasks']) or '(all tasks)'}, {summary['episodes_per_checkpoint']} episodes per task "
        "and checkpoint; success CIs are 95 % Wilson over seeds × episodes, language-following CIs 95 % bootstraps "
        f"over scenes (a claim needs ≥ {MIN_FOLLOWING:g}). Failed runs are listed, never averaged in.",
        "",
        partial_note(summary),
        "",
        "| variant | final success [95% CI] | steps to π0's final | VQA retention | caption ppl after / before | "
        "held-out instructions | language following [95% CI] | closed-loop following [95% CI] | latency ms | "
        "seeds | failed (seed@step) | missing (seed, state) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [table_row(name, s) for name, s in summary["variants"].items()]
    lines += ["", "## Claims (issue 17 targets)", ""]
    lines += [f"* **{k}**: {text}" for k, text in summary["claims"].items()]
    lines += ["", *(f"![{p.stem}](plots/{p.name})" for p in plots), ""]
    (cfg.report / "ki_study.md").write_text("\n".join(lines))
    return summary


def plot(summary: dict, out: Path) -> list[Path]:
    """Success vs step (mean over seeds, min–max band), VQA retention, language following and latency bars
    → PNG paths."""
    from reasonact.plotting import pyplot

    plt = pyplot()
    out.mkdir(parents=True, exist_ok=True)
    variants = summary["variants"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, s in variants.items():
        curve = s["success_vs_step"]
        if curve:
            steps = [int(k) for k in curve]
            ax.plot(steps, [c["mean"] for c in curve.values()], marker="o", label=name)
            ax.fill_between(steps, [c["min"] for c in curve.values()], [c["max"] for c in curve.values()], alpha=0.2)
    ax.set(xlabel="training step", ylabel="closed-loop success", ylim=(-0.05, 1.05), title="success vs step")
    if ax.lines:
        ax.legend(fontsize=7)
    paths = [out / "success_vs_step.png"]
    fig.savefig(paths[0], dpi=100, bbox_inches="tight")
    plt.close(fig)
    bars = (("vqa_retention", "VQA accuracy after / pre-stage"), ("language_following", "share of the experts' change"),
            ("language_following_closed_loop", "success told own − told other"),
            ("latency_ms", "ms per sample_actions"))  # fmt: skip
    for key, label in bars:
        fig, ax = plt.subplots(figsize=(6, 3))
        names = [n for n in variants if variants[n][key] is not None]  # unmeasured: no bar, not a bar at 0
        ax.bar(names, [variants[n][key] for n in names])
        ax.set(ylabel=label, title=key)
        ax.tick_params(axis="x", rotation=45)
        paths.append(out / f"{key}.png")
        fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
        plt.close(fig)
    return paths


__all__ = ["claims", "pooled_following", "summarise", "write_report"]
