"""The verifier study (`reasonact search study`): accuracy vs generated tokens of search methods
guided by *learned* PRMs, with the oracle step checker as the upper bound, on held-out problems
(Snell et al. 2024's compute curves; the o1-style claim that a PRM-guided search beats majority
voting at equal budget, measured with a verifier that does not know the answer).

Each (family, scorer) pair is one resumable `study.run_study` run; this module gathers them with
95% Wilson intervals, the PRM label and earliest-error figures (`reasonact prm label | eval`) and an
optional Gemma 3 270M run, and writes `<out>.json`, `<out>.md` and `<out>.png`.

The Gemma run is the real pretrained base model, prompted with a few worked examples in the step
format (`backends/gemma.py`), searched with the same learned PRM on the first family's first
`gemma_count` held-out problems and judged like every other run (reasoning-gym's `score_answer` on
its `Answer:` text). Its tokens are Gemma tokenizer tokens, so its curves are compared with its own
majority vote, not with the character-level policies' curves.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonact.atomic import atomic_write_bytes, atomic_write_json, read_json
from reasonact.reasoning.search.common import SearchConfig
from reasonact.reasoning.study import StudyConfig, run_study
from reasonact.runs import to_jsonable
from reasonact.stats import wilson_interval


@dataclass(frozen=True)
class VerifierStudyConfig:
    families: tuple[str, ...] = ("arithmetic",)  # task families (each needs its policy and PRM)
    difficulty: str = "easy"  # named difficulty of the problems, the policy and the PRM
    policy: str = "tiny"  # policy preset or model directory
    prm: str = "runs/prm_tiny/prm"  # the learned PRM (reasonact prm train); "{family}" is filled in
    methods: tuple[str, ...] = ("best_of_n:majority", "beam", "mcts")  # study.parse_method names
    budgets: tuple[int, ...] = (1, 4, 16, 64)  # N per method (study.unit_config maps N onto each method)
    count: int = 30  # held-out test problems per family
    search: SearchConfig = field(  # the rest of every search
        default_factory=lambda: SearchConfig(max_steps=6, max_step_tokens=24, selection="argmax")
    )
    labels: Path = Path("runs/prm_labels_tiny/agreement.json")  # `reasonact prm label` agreement report
    prm_eval: Path = Path("runs/prm_eval_tiny/metrics.json")  # `reasonact prm eval` metrics
    gemma_count: int = 0  # problems of the Gemma 3 270M run (few-shot, first family, learned PRM); 0 skips it
    gemma_budgets: tuple[int, ...] = (1, 4)  # N of the Gemma run
    gemma_methods: tuple[str, ...] = ("best_of_n:majority", "beam")  # methods of the Gemma run
    gemma_policy: str = "gemma"  # "gemma" (the real Gemma 3 270M) or "gemma:<model dir>" (tests: a tiny random one)
    root: Path = Path("runs")  # parent of the per-study run directories
    name: str = "search_study"  # run directories are <root>/<name>_<family>_{prm,oracle,gemma}
    out: Path = Path("docs/results/search_study")  # report: <out>.json, <out>.md, <out>.png

    def __post_init__(self) -> None:
        if self.gemma_policy != "gemma" and not self.gemma_policy.startswith("gemma:"):
            raise ValueError(f"gemma_policy: expected 'gemma' or 'gemma:<model dir>', received {self.gemma_policy!r}")


UNSCORED = ("best_of_n:majority", "greedy")  # methods whose answer does not depend on the scorer


STUDY_PRESETS: dict[str, tuple[str, VerifierStudyConfig]] = {
    "tiny": (
        "Tiny policy on easy arithmetic, N = 1, 4, 8 on 12 problems (what a heavily shared 2-core CPU allows).",
        VerifierStudyConfig(budgets=(1, 4, 8), count=12, out=Path("docs/results/search_study_tiny")),
    ),
    "medium": (
        "Tiny policy on easy arithmetic, N = 1, 4, 16 on 30 problems (~30 min here).",
        VerifierStudyConfig(
            budgets=(1, 4, 16), count=30, name="search_study_medium", out=Path("docs/results/search_study_medium")
        ),
    ),
    "full": (
        "N = 1 … 64 on 30 problems (hours on this CPU; minutes on a GPU box with --policy a model dir).",
        VerifierStudyConfig(name="search_study_full", out=Path("docs/results/search_study_full")),
    ),
    "default": (
        "The issue's study: the small policy at reasoning-gym's default difficulty, N = 1 … 64 on 30 problems, "
        "small PRMs (`reasonact prm label|train|eval small`), Gemma 3 270M on 10 problems.",
        VerifierStudyConfig(
            difficulty="default",
            policy="small",
            prm="runs/prm_small/prm",
            search=SearchConfig(max_steps=8, max_step_tokens=48, selection="argmax"),
            labels=Path("runs/prm_labels_small/agreement.json"),
            prm_eval=Path("runs/prm_eval_small/metrics.json"),
            gemma_count=10,
            name="search_study_default",
            out=Path("docs/results/search_study"),  # the study's report (the other presets write beside it)
        ),
    ),
    "smoke": (
        "Seconds: 3 problems, N = 1, 2 (tests).",
        VerifierStudyConfig(count=3, budgets=(1, 2), out=Path("runs/search_study_smoke/report")),
    ),
}


def curves(summary: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """method → [{budget, tokens, accuracy, ci}] from a study summary, ordered by N."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in summary["rows"]:
        correct = round(r["accuracy"] * r["problems"])
        point = {"budget": r["budget"], "tokens": r["mean_tokens"], "accuracy": r["accuracy"]}
        out.setdefault(r["method"], []).append(point | {"ci": list(wilson_interval(correct, r["problems"]))})
    return {m: sorted(points, key=lambda p: p["budget"]) for m, points in out.items()}


def beam_minus_majority(points: dict[str, list[dict[str, Any]]], slack: float = 1.05) -> list[dict[str, Any]]:
    """Every PRM-guided point against the best majority-vote accuracy among the points that cost
    at most `slack` × its tokens (equal budget); None where majority voting has no point that cheap."""
    majority = points.get("best_of_n:majority", [])
    out = []
    for method, series in points.items():
        if method == "best_of_n:majority":
            continue
        for p in series:
            cheap = [m["accuracy"] for m in majority if m["tokens"] <= p["tokens"] * slack]
            best = max(cheap) if cheap else None
            out.append(
                {"method": method, "budget": p["budget"], "tokens": p["tokens"], "accuracy": p["accuracy"],
                 "majority_accuracy": best, "difference": None if best is None else p["accuracy"] - best}
            )  # fmt: skip
    return out


def study_config(config: VerifierStudyConfig, family: str, scorer: str, name: str, **overrides: Any) -> StudyConfig:
    """The single study of one family with one scorer (overrides: e.g. the Gemma run's policy)."""
    base = StudyConfig(
        family=family,
        difficulty=config.difficulty,
        policy=config.policy,
        scorer=scorer,
        methods=config.methods,
        budgets=config.budgets,
        count=config.count,
        search=config.search,
        root=config.root,
        name=name,
        save_trees=False,
    )
    return dataclasses.replace(base, **overrides)


def run(config: VerifierStudyConfig) -> dict[str, Any]:
    """Every (family, scorer) study (resuming finished units), then the report."""
    report: dict[str, Any] = {"config": to_jsonable(config)}
    report["curves"], report["oracle_curves"] = {}, {}
    report["beam_minus_majority_at_equal_budget"], report["oracle_upper_bound"] = {}, {}
    for family in config.families:
        prm = config.prm.format(family=family)
        learned = run_study(study_config(config, family, prm, f"{config.name}_{family}_prm"), progress=True)
        oracle = run_study(study_config(config, family, "oracle", f"{config.name}_{family}_oracle"), progress=True)
        report["curves"][family] = curves(learned)
        report["oracle_curves"][family] = curves(oracle)
        report["beam_minus_majority_at_equal_budget"][family] = beam_minus_majority(report["curves"][family])
        report["oracle_upper_bound"][family] = max(r["accuracy"] for r in oracle["rows"])
    report["mc_label_agreement"] = read_json(config.labels) if config.labels.is_file() else None
    metrics = read_json(config.prm_eval) if config.prm_eval.is_file() else {}
    report["prm_earliest_error_f1"] = {name: m["earliest_error_f1"] for name, m in metrics.items()} or None
    report["gemma270m"] = gemma_run(config) if config.gemma_count else None
    write_report(report, config.out)
    return report


def gemma_run(config: VerifierStudyConfig) -> dict[str, Any]:
    """The Gemma 3 270M arm: its curves and its PRM-guided points against its own majority vote."""
    family = config.families[0]
    prm = config.prm.format(family=family)
    study = study_config(
        config, family, prm, f"{config.name}_{family}_gemma", policy=config.gemma_policy,
        methods=config.gemma_methods, count=config.gemma_count, budgets=config.gemma_budgets,
    )  # fmt: skip
    summary = run_study(study, progress=True)
    points = curves(summary)
    return {
        "family": family,
        "policy": config.gemma_policy,
        "scorer": prm,
        "problems": config.gemma_count,
        "errors": sum(r["errors"] for r in summary["rows"]),
        "tokens": "Gemma 3 tokenizer tokens (not comparable with the step policies' character tokens)",
        "curves": points,
        "beam_minus_majority_at_equal_budget": beam_minus_majority(points),
    }


def write_report(report: dict[str, Any], out: Path) -> None:
    """<out>.json, the accuracy-vs-tokens figure <out>.png and the page <out>.md."""
    from reasonact.plotting import pyplot

    atomic_write_json(out.with_suffix(".json"), report)
    plt = pyplot()
    panels = [(family, report["curves"][family], report["oracle_curves"][family]) for family in report["curves"]]
    gemma = report.get("gemma270m")
    if gemma:
        panels.append((f"Gemma 3 270M, {gemma['family']} (Gemma tokens)", gemma["curves"], {}))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4), squeeze=False, layout="constrained")
    for ax, (title, learned, oracle) in zip(axes[0], panels, strict=True):
        for label, series in [*((m if m in UNSCORED else f"{m} (PRM)", s) for m, s in learned.items()),
                              *((f"{m} (oracle)", s) for m, s in oracle.items() if m not in UNSCORED)]:  # fmt: skip
            x = [p["tokens"] for p in series]
            y = [p["accuracy"] for p in series]
            low = [p["accuracy"] - p["ci"][0] for p in series]
            high = [p["ci"][1] - p["accuracy"] for p in series]
            ax.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, label=label,
                        linestyle="--" if "oracle" in label else "-")  # fmt: skip
        ax.set(xscale="log", xlabel="generated tokens per problem", ylabel="accuracy", title=title)
        ax.legend(fontsize="small")
    fig.savefig(out.with_suffix(".png"))
    plt.close(fig)
    atomic_write_bytes(out.with_suffix(".md"), page(report, out).encode())


def table(tables: list[tuple[str, dict[str, list[dict[str, Any]]]]]) -> list[str]:
    """Markdown rows of (scorer, method → curve) pairs."""
    lines = ["| scorer | method | N | tokens | accuracy | 95% CI |", "|---|---|---|---|---|---|"]
    for scorer, methods in tables:
        for method, series in methods.items():
            lines += [
                f"| {scorer} | {method} | {p['budget']} | {p['tokens']:.0f} | {p['accuracy']:.3f} | "
                f"{p['ci'][0]:.2f}–{p['ci'][1]:.2f} |"
                for p in series
            ]
    return lines


def comparisons(differences: list[dict[str, Any]]) -> list[str]:
    """Bullets of PRM-guided minus majority vote at equal budget (learned PRM)."""
    comparable = [d for d in differences if d["difference"] is not None]
    lines = ["", "PRM-guided minus majority vote at equal or lower majority cost (learned PRM):", ""]
    return lines + (
        [f"* {d['method']} N={d['budget']}: {d['difference']:+.3f}" for d in comparable] or ["* none comparable"]
    )


def page(report: dict[str, Any], out: Path) -> str:
    lines = [
        "# Search with learned verifiers (generated by `reasonact search study`)",
        "",
        f"Config: `{report['config']}`",
        "",
        f"![accuracy vs tokens]({out.with_suffix('.png').name})",
        "",
    ]
    for family, methods in report["curves"].items():
        lines += [f"## {family}", "", *table([("PRM", methods), ("oracle", report["oracle_curves"][family])])]
        lines += comparisons(report["beam_minus_majority_at_equal_budget"][family])
        lines += [
            "",
            f"Oracle upper bound (best accuracy with the step checker): {report['oracle_upper_bound'][family]:.3f}",
            "",
        ]
    lines += [
        f"Monte Carlo vs checker label agreement: `{report['mc_label_agreement']}`",
        "",
        f"Earliest-error F1 on held-out solutions: `{report['prm_earliest_error_f1']}`",
        "",
    ]
    gemma = report["gemma270m"]
    if gemma is None:
        lines += ["Gemma 3 270M: not run (`--gemma-count 0`).", ""]
    else:
        lines += [
            f"## Gemma 3 270M ({gemma['policy']}, few-shot), {gemma['family']}",
            "",
            f"{gemma['problems']} held-out problems (the first of the study's), learned PRM `{gemma['scorer']}`, "
            f"{gemma['errors']} units ended in an error; tokens are {gemma['tokens']}.",
            "",
            *table([("PRM", gemma["curves"])]),
            *comparisons(gemma["beam_minus_majority_at_equal_budget"]),
            "",
        ]
    return "\n".join(lines)
