"""`reasonact journey study`: shortcut vs journey learning, + DPO, GRPO and STaR from one start.

Per seed, with the same base policy and the same training problems:
1. build reasoning trees with the propose–critique loop, or the two-agent dialogue (`construction`;
   the critic agent is the step checker, a PRM or an LM: `critic`); trees without a correct answer
   are counted and left out, so both arms train on the same problems. The policy–critic transcript
   is written beside the trees (`seed_<s>/dialogue.md`);
2. SFT the base policy on the shortcuts, and (separately) on the journeys;
3. step-level DPO on each SFT result with the trees' sibling pairs;
4. GRPO and STaR from the base policy;
5. greedy held-out accuracy of every arm on test problems (the configured difficulty), mean thought
   length, how often the policy backtracks (`Wait:` lines) and whether the step it withdraws was
   wrong and the answer then right.

Every stage is a run directory (exact resume); every evaluation one record in the study's
metrics, skipped when present. The summary (95% CIs by bootstrap over problems, stratified by
seed; paired for differences) goes to `<out>.json`, `<out>.md` and `<out>.png`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reasonact.atomic import atomic_write_bytes, atomic_write_json, read_json
from reasonact.journey.construct import ConstructConfig, JourneyTree, construct_trees
from reasonact.journey.critic import make_critic
from reasonact.journey.derive import journey, parse_thought, shortcut, to_example
from reasonact.reasoning.backends.hf import HFBackend
from reasonact.reasoning.tasks import make_task
from reasonact.runs import Run
from reasonact.stats import bootstrap_interval
from reasonact.training.dpo import DPOConfig, train_dpo
from reasonact.training.dpo_pairs import PairStats, step_pairs
from reasonact.training.grpo import GRPOConfig, train_grpo
from reasonact.training.rollouts import accuracy
from reasonact.training.run_loop import OptimConfig
from reasonact.training.sequences import resolve_policy
from reasonact.training.sft import SFTConfig, train_sft
from reasonact.training.star import STaRConfig, train_star

ARMS = ("base", "shortcut", "journey", "shortcut+dpo", "journey+dpo", "grpo", "star")


@dataclass(frozen=True)
class JourneyStudyConfig:
    family: str = "arithmetic"  # task family
    difficulty: str = "easy"  # named task level (Task.LEVELS); "easy" is what the shipped tiny policy learned
    init: str = "tiny"  # the base policy every arm starts from
    seeds: tuple[int, ...] = (0, 1, 2)  # independent repeats (tree sampling, data order, GRPO/STaR sampling)
    problems: int = 120  # training problems per seed whose trees are built
    test: int = 100  # held-out test problems (the same for every seed)
    construct: ConstructConfig = field(default_factory=lambda: ConstructConfig(width=4, attempts=3, max_rounds=32))
    construction: Literal["loop", "dialogue"] = "loop"  # trees by the loop, or two agents talking (policy reads critic)
    critic: str = "checker"  # critic agent: "checker", "lm" (the base policy asked), "oracle"/"outcome"/PRM dir
    critic_threshold: float = 0.5  # a PRM critic accepts a step scoring at least this
    detours: int = 1  # wrong branches visited per journey
    mask_wrong_steps: bool = False  # journey SFT: withdrawn wrong steps are context only, no loss (reflections trained)
    sft: OptimConfig = field(default_factory=lambda: OptimConfig(steps=120, lr=5e-4))  # shortcut and journey SFT
    batch: int = 32  # SFT sequences per step
    dpo: OptimConfig = field(default_factory=lambda: OptimConfig(steps=40, lr=1e-4))  # step-DPO after SFT
    grpo: GRPOConfig = field(default_factory=GRPOConfig)  # GRPO from the base (init/seed/root/name set per seed)
    star: STaRConfig = field(default_factory=lambda: STaRConfig(rounds=2, problems=120))  # STaR from the base
    eval_max_steps: int = 12  # steps a test solution may take (journeys are longer)
    eval_step_tokens: int = 40  # tokens per step at test time (reflection lines are long)
    root: Path = Path("runs")  # parent of the study directory
    name: str = "journey_study"  # study directory name
    out: Path | None = Path("docs/results/journey_study")  # summary as <out>.json / .md / .png (None: run dir only)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("seeds: expected at least one seed, received none")
        if self.construct.dialogue:
            raise ValueError("construct.dialogue: the study sets it from `construction`; pass --construction dialogue")


def trees_for(config: JourneyStudyConfig, seed: int, path: Path) -> list[JourneyTree]:
    """The seed's trees, built once and kept as JSON (a rerun reads them back), with the agents'
    transcript beside them as `dialogue.md`."""
    if path.exists():
        return [JourneyTree.from_json(t) for t in read_json(path)]
    task = make_task(config.family, config.difficulty)
    backend = HFBackend.from_pretrained(resolve_policy(config.init, config.family), threads=1)
    critic = make_critic(config.critic, config.family, config.difficulty, backend, config.critic_threshold)
    problems = task.generate("train", config.problems, seed=10_000 + seed)
    construct = dataclasses.replace(config.construct, seed=seed, dialogue=config.construction == "dialogue")
    trees = construct_trees(problems, backend, critic, construct)
    atomic_write_bytes(path.with_name("dialogue.md"), transcript(trees, config).encode())
    atomic_write_json(path, [t.to_json() for t in trees])
    return trees


def transcript(trees: list[JourneyTree], config: JourneyStudyConfig) -> str:
    """The policy agent's proposals and the critic agent's replies, tree by tree, in the order spoken."""
    lines = [f"# Tree construction: {config.construction}, critic {config.critic}", ""]
    for jt in trees:
        outcome = "answer accepted" if jt.answer_node is not None else "no answer accepted"
        lines += [f"## {jt.tree.problem.uid} ({outcome})", "", f"    question: {jt.tree.problem.question}"]
        lines += [f"    {speaker}: {message}" for speaker, message in jt.dialogue] + [""]
    return "\n".join(lines)


def train_arms(config: JourneyStudyConfig, seed: int, where: Path, progress: bool) -> tuple[dict[str, Path], dict]:
    """Every arm's policy directory for one seed, training what is missing → (arms, data counts)."""
    task = make_task(config.family, config.difficulty)
    trees = trees_for(config, seed, where / "trees.json")
    accepted = [t for t in trees if t.answer_node is not None]
    solved = [t for t in accepted if task.check_answer(t.tree.problem, t.tree.nodes[t.answer_node].answer)]
    if not solved:
        raise ValueError(f"seed {seed}: no tree reached a correct answer; nothing to train the SFT arms on")
    stats = PairStats()
    pairs = step_pairs([t.tree for t in trees], task, stats=stats)
    counts = {"trees": len(trees), "solved_trees": len(solved), "no_correct": len(trees) - len(solved)}
    counts["critic_accepted_wrong"] = len(accepted) - len(solved)  # wrong answers an LM / PRM critic let through
    counts["verdicts"] = dict(Counter(v.action for t in trees for v in t.verdicts.values()))
    counts |= {
        "step_pairs": len(pairs),
        "journey_detours": sum(len(journey(t, config.detours, seed)) - len(shortcut(t)) for t in solved) // 2,
    }
    base = resolve_policy(config.init, config.family)
    sft = SFTConfig(family=config.family, init=str(base), batch=config.batch, seed=seed, optim=config.sft, root=where)
    arms = {"base": base}
    for kind in ("shortcut", "journey"):
        examples = [
            to_example(t, shortcut(t))
            if kind == "shortcut"
            else to_example(t, journey(t, config.detours, seed), config.mask_wrong_steps)
            for t in solved
        ]
        arms[kind] = train_sft(dataclasses.replace(sft, name=kind), examples, progress)
        dpo = DPOConfig(family=config.family, init=str(arms[kind]), seed=seed, optim=config.dpo, root=where)
        arms[f"{kind}+dpo"] = train_dpo(dataclasses.replace(dpo, name=f"{kind}_dpo"), pairs, progress)
    common = {"family": config.family, "difficulty": config.difficulty, "init": str(base), "seed": seed, "root": where}
    arms["grpo"] = train_grpo(dataclasses.replace(config.grpo, **common, name="grpo"), progress)
    arms["star"] = train_star(dataclasses.replace(config.star, **common, name="star"), progress)
    return arms, counts


def evaluate(config: JourneyStudyConfig, policy: Path) -> dict[str, Any]:
    """Greedy test accuracy, thought length and backtrack behaviour of one policy."""
    task = make_task(config.family, config.difficulty)
    problems = task.generate("test", config.test)
    backend = HFBackend.from_pretrained(policy, threads=1)
    _, rollouts = accuracy(backend, task, problems, config.eval_max_steps, config.eval_step_tokens)
    correct = [r.correct(task) for r in rollouts]
    backtracked = wrong_withdrawn = fixed = withdrawals = 0
    for r in rollouts:
        thought = parse_thought(r.steps)
        backtracked += thought.reflections > 0
        wrong_here = False
        for index, step in thought.withdrawn:
            withdrawals += 1
            prefix = (*thought.steps[:index], step)
            if not task.check_steps(r.problem, prefix)[-1].correct:
                wrong_withdrawn += 1
                wrong_here = True
        fixed += wrong_here and r.correct(task)
    return {
        "correct": correct,
        "accuracy": sum(correct) / len(correct),
        "thought_tokens": sum(len(r.token_ids) for r in rollouts) / len(rollouts),
        "backtrack_rate": backtracked / len(rollouts),
        "withdrawals": withdrawals,
        "withdrawn_wrong": wrong_withdrawn,
        "fixed_after_backtrack": fixed,
    }


def bootstrap(a: list[list[bool]], b: list[list[bool]] | None = None) -> list[float]:
    """95% interval of mean(a) (or mean(a) − mean(b), paired) resampling problems within each seed
    (`stats.bootstrap_interval`, stratified by seed)."""
    values = [x - (b[s][i] if b is not None else 0) for s, row in enumerate(a) for i, x in enumerate(row)]
    seeds = [s for s, row in enumerate(a) for _ in row]
    ci = bootstrap_interval(values, strata=seeds)
    if ci is None:
        raise ValueError("a: expected at least one evaluated problem, received none")
    return list(ci)


def summarise(config: JourneyStudyConfig, run: Run, counts: dict[int, dict]) -> dict[str, Any]:
    records = {(m["seed"], m["arm"]): m for m in run.metrics() if "arm" in m}
    seeds = list(config.seeds)
    table = {}
    for arm in ARMS:
        rows = [records[(s, arm)] for s in seeds]
        table[arm] = {
            "accuracy": sum(r["accuracy"] for r in rows) / len(rows),
            "ci": bootstrap([r["correct"] for r in rows]),
            "per_seed": [r["accuracy"] for r in rows],
            "thought_tokens": sum(r["thought_tokens"] for r in rows) / len(rows),
            "backtrack_rate": sum(r["backtrack_rate"] for r in rows) / len(rows),
            "withdrawals": sum(r["withdrawals"] for r in rows),
            "withdrawn_wrong": sum(r["withdrawn_wrong"] for r in rows),
            "fixed_after_backtrack": sum(r["fixed_after_backtrack"] for r in rows),
        }

    def correct(arm: str) -> list[list[bool]]:
        return [records[(s, arm)]["correct"] for s in seeds]

    def gain(arm: str, over: str) -> float:
        return table[arm]["accuracy"] - table[over]["accuracy"]

    return {
        "shortcut_acc": table["shortcut"]["accuracy"],
        "journey_acc": table["journey"]["accuracy"],
        "journey_minus_shortcut": gain("journey", "shortcut"),
        "grpo_gain": gain("grpo", "base"),
        "star_gain": gain("star", "base"),
        "dpo_gain_on_journey": gain("journey+dpo", "journey"),
        "ci": {
            "journey_minus_shortcut": bootstrap(correct("journey"), correct("shortcut")),
            "grpo_gain": bootstrap(correct("grpo"), correct("base")),
            "star_gain": bootstrap(correct("star"), correct("base")),
            **{arm: table[arm]["ci"] for arm in ARMS},
        },
        "seeds": seeds,
        "construction": config.construction,
        "critic": config.critic,
        "arms": table,
        "data": {str(s): c for s, c in counts.items()},
        "config": json.loads((run.path / "config.json").read_text()),
        "loadavg": os.getloadavg(),
    }


def run_study(config: JourneyStudyConfig, progress: bool = False) -> dict[str, Any]:
    run = Run.open(config.root, config.name, config, resume=True)
    done = {(m["seed"], m["arm"]) for m in run.metrics() if "arm" in m}
    counts = {}
    for seed in config.seeds:
        arms, counts[seed] = train_arms(config, seed, run.path / f"seed_{seed}", progress)
        for arm in ARMS:
            if (seed, arm) in done:
                continue
            record = evaluate(config, arms[arm])
            run.log(len(done), seed=seed, arm=arm, **record)
            done.add((seed, arm))
            if progress:
                print(f"seed {seed} {arm}: accuracy {record['accuracy']:.3f}", flush=True)
    summary = summarise(config, run, counts)
    atomic_write_json(run.path / "summary.json", summary)
    for target in [run.path / "summary", *([config.out] if config.out is not None else [])]:
        atomic_write_json(target.with_suffix(".json"), summary)
        plot(summary, target.with_suffix(".png"))
        atomic_write_bytes(target.with_suffix(".md"), report(summary, target.with_suffix(".png").name).encode())
    return summary


def plot(summary: dict[str, Any], path: Path) -> None:
    from reasonact.plotting import pyplot

    plt = pyplot()
    arms = summary["arms"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained")
    acc = [arms[a]["accuracy"] for a in ARMS]
    err = [
        [a - arms[k]["ci"][0] for a, k in zip(acc, ARMS, strict=True)],
        [arms[k]["ci"][1] - a for a, k in zip(acc, ARMS, strict=True)],
    ]
    left.bar(ARMS, acc, yerr=err, capsize=3)
    left.set(ylabel="held-out accuracy (greedy)", title=f"seeds {summary['seeds']}, 95% CI")
    left.tick_params(axis="x", rotation=40)
    right.bar(ARMS, [arms[a]["thought_tokens"] for a in ARMS])
    right.set(ylabel="tokens per test solution", title="thought length")
    right.tick_params(axis="x", rotation=40)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(summary: dict[str, Any], image: str) -> str:
    """The study's markdown page: every number comes from `summary`."""
    lines = [
        "# Journey study (generated by `reasonact journey study`)",
        "",
        f"Seeds {summary['seeds']}; trees by the {summary['construction']} construction with the "
        f"{summary['critic']} critic; config in the JSON next to this file. Greedy accuracy on held-out test",
        "problems at the configured difficulty; 95% CIs by bootstrap over problems within seeds.",
        "",
        "| arm | accuracy | 95% CI | tokens / solution | backtrack rate | withdrawn steps (wrong) | fixed after |",
        "|---|---|---|---|---|---|---|",
    ]
    for arm, row in summary["arms"].items():
        lo, hi = row["ci"]
        lines.append(
            f"| {arm} | {row['accuracy']:.3f} | [{lo:.3f}, {hi:.3f}] | {row['thought_tokens']:.1f} | "
            f"{row['backtrack_rate']:.3f} | {row['withdrawals']} ({row['withdrawn_wrong']}) | "
            f"{row['fixed_after_backtrack']} |"
        )
    ci = summary["ci"]
    lines += [
        "",
        f"* journey − shortcut: {summary['journey_minus_shortcut']:+.3f} "
        f"(95% CI [{ci['journey_minus_shortcut'][0]:+.3f}, {ci['journey_minus_shortcut'][1]:+.3f}])",
        f"* GRPO − base: {summary['grpo_gain']:+.3f} (95% CI [{ci['grpo_gain'][0]:+.3f}, {ci['grpo_gain'][1]:+.3f}])",
        f"* STaR − base: {summary['star_gain']:+.3f} (95% CI [{ci['star_gain'][0]:+.3f}, {ci['star_gain'][1]:+.3f}])",
        f"* DPO on top of journey SFT: {summary['dpo_gain_on_journey']:+.3f}",
        f"* data per seed: {summary['data']}",
        f"* load average during the run: {summary['loadavg']}",
        "",
        f"![accuracy and thought length]({image})",
        "",
    ]
    return "\n".join(lines)
