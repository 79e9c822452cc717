"""`reasonact <family> <verb> [preset] [--overrides]`: the command table and its dispatcher.

Every command is a function taking one frozen-dataclass config. Commands with presets take
the preset name as a positional argument (`reasonact fast fit smooth --fast.scale 20`, or
`--preset smooth`; a preset named `default` may be left out); tyro
turns every config field into a typed `--flag` with the field's comment as help. Modules are
imported only when their command runs, so `reasonact --help` answers instantly.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import os
import sys
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tyro


@dataclass(frozen=True)
class Command:
    help: str
    target: str  # "module:function"; the function takes the parsed config (or typed kwargs)
    presets: str | None = None  # "module:NAME" of a dict {preset: (description, config)}


Table = dict[str, Command]

COMMANDS: dict[str, Command | Table] = {
    "agent": {
        "run": Command(
            "One agent episode (structured or flat ReAct) → full trace JSON.",
            "reasonact.agents.commands:run",
            "reasonact.agents.commands:RUN_PRESETS",
        ),
        "study": Command(
            "Structured vs flat agents on held-out seeds → docs/results/agent_study.json.",
            "reasonact.agents.commands:study",
            "reasonact.agents.commands:STUDY_PRESETS",
        ),
        "sandbox-audit": Command(
            "Escape attempts against the code sandbox → JSON {tried, contained, cases}.",
            "reasonact.agents.commands:sandbox_audit",
        ),
    },
    "demo": Command("End-to-end demo on the embedded default; writes a report under runs/.", "reasonact.demo:main"),
    "data": {
        "collect": Command(
            "Scripted-expert demonstrations → LeRobot v3.0 dataset (resumable).",
            "reasonact.data.commands:collect",
            "reasonact.data.commands:COLLECT_PRESETS",
        ),
        "vlm": Command(
            "Captions, VQA, boxes, next-subtask records from simulator state.",
            "reasonact.data.commands:vlm",
            "reasonact.data.commands:VLM_PRESETS",
        ),
        "bench": Command(
            "Simulator speeds, wrapper overhead vs raw loop, expert success, demos/min → JSON.",
            "benchmarks.envs:run",
            "benchmarks.envs:PRESETS",
        ),
    },
    "eval": {
        "run": Command(
            "K fixed-seed episodes per task: success with 95% CIs, GIFs, summary plot.",
            "reasonact.evaluation.commands:run",
            "reasonact.evaluation.commands:PRESETS",
        ),
    },
    "fast": {
        "fit": Command(
            "Fit a FAST tokenizer (normalisation + BPE) on action chunks and save it.",
            "reasonact.actions.commands:fit",
            "reasonact.actions.commands:FIT_PRESETS",
        ),
        "encode": Command("Encode chunks (.npy, (b, H, d)) to token ids (.json).", "reasonact.actions.commands:encode"),
        "decode": Command("Decode token ids (.json) to chunks (.npy).", "reasonact.actions.commands:decode"),
        "bench": Command(
            "FAST vs naive binning: compression, round-trip error, batched speed → JSON.",
            "benchmarks.fast:run",
            "benchmarks.fast:PRESETS",
        ),
    },
    "search": {
        "run": Command(
            "Test-time search study (greedy, best-of-N, beam, DVTS, MCTS, tree+DFS): accuracy vs tokens.",
            "reasonact.reasoning.commands:run",
            "reasonact.reasoning.commands:STUDY_PRESETS",
        ),
        "study": Command(
            "Accuracy vs tokens with learned PRMs and the oracle bound, CIs, plots → docs/results/search_study.*",
            "reasonact.reasoning.verifier_study:run",
            "reasonact.reasoning.verifier_study:STUDY_PRESETS",
        ),
        "train-policy": Command(
            "SFT a tiny/small step-writing policy from scratch on reference solutions.",
            "reasonact.training.policy_sft:train_policy_command",
            "reasonact.training.policy_sft:TRAIN_PRESETS",
        ),
        "bench": Command(
            "Tree expansion tokens/s: prefix-KV reuse + batching vs per-path generate vs vLLM → JSON.",
            "benchmarks.search:run",
            "benchmarks.search:PRESETS",
        ),
    },
    "train": {
        "grpo": Command(
            "GRPO of a reasoning policy (group-normalised outcome/process rewards, clipped ratio, KL in the loss).",
            "reasonact.training.grpo:main",
            "reasonact.training.grpo:GRPO_PRESETS",
        ),
        "star": Command(
            "STaR rounds: sample, keep correct rationales, rationalise failures with the answer, fine-tune.",
            "reasonact.training.star:main",
            "reasonact.training.star:STAR_PRESETS",
        ),
    },
    "journey": {
        "study": Command(
            "Journey Learning study: SFT on shortcuts vs journeys, + DPO, GRPO and STaR; accuracy with CIs.",
            "reasonact.journey.commands:study",
            "reasonact.journey.commands:STUDY_PRESETS",
        ),
        "bench": Command(
            "GRPO step time (generation vs training), ours vs TRL's GRPOTrainer on the same setup → JSON.",
            "benchmarks.journey:run",
            "benchmarks.journey:PRESETS",
        ),
    },
    "prm": {
        "label": Command(
            "Sample solutions from a policy; label steps by the checker and Math-Shepherd rollouts (resumable).",
            "reasonact.reasoning.prm.commands:label",
            "reasonact.reasoning.prm.commands:LABEL_PRESETS",
        ),
        "train": Command(
            "Train a PRM (step classifier, TD value or ORM) on labelled steps (resumable).",
            "reasonact.training.prm:train_command",
            "reasonact.training.prm:TRAIN_PRESETS",
        ),
        "eval": Command(
            "Step F1, earliest-error F1 and calibration of PRMs vs the checker on held-out rows.",
            "reasonact.reasoning.prm.commands:evaluate",
            "reasonact.reasoning.prm.commands:EVAL_PRESETS",
        ),
    },
    "vla": {
        "params": Command(
            "Parameter counts of backbone and action expert (built on the meta device).",
            "reasonact.vla.commands:params",
            "reasonact.vla.commands:PARAMS_PRESETS",
        ),
        "train": Command(
            "Train a VLA variant on LeRobot datasets (+ VLM records): AdamW, cosine, EMA, resume, DDP.",
            "reasonact.training.vla_trainer:train",
            "reasonact.training.vla_config:PRESETS",
        ),
        "eval": Command(
            "Closed-loop success of a trained checkpoint (95% CIs, GIFs) beside the expert and baselines → JSON.",
            "reasonact.vla.evaluate:run",
            "reasonact.vla.evaluate:PRESETS",
        ),
        "pretrain": Command(
            "VLM pre-stage: train the backbone on captions / VQA / boxes of the scenes → backbone checkpoint.",
            "reasonact.training.vlm_pretrain:pretrain",
            "reasonact.training.vlm_pretrain_config:PRESETS",
        ),
        "vqa-eval": Command(
            "VQA accuracy + caption perplexity of a run per held-out split, vs majority and untrained baselines.",
            "reasonact.vla.vqa_eval:vqa_eval",
        ),
        "follow": Command(
            "Language following: same scene, different instruction → the action's change vs the experts' (JSON).",
            "reasonact.vla.language_following:follow",
        ),
        "study": Command(
            "KI study: pre-stage, then variants × seeds (resumable) → success vs step, VQA retention, latency report.",
            "reasonact.studies.ki:study",
            "reasonact.studies.ki:PRESETS",
        ),
        "bench": Command(
            "KI-VLA vs LeRobot pi05: inference (flow vs π0-FAST AR, prefix cache) or --train throughput → JSON.",
            "benchmarks.vla_bench:run",
            "benchmarks.vla_bench:PRESETS",
        ),
    },
    "bc": {
        "train": Command(
            "Train the CNN behaviour-cloning baseline (camera + state + task → chunk) on LeRobot datasets.",
            "reasonact.training.bc_trainer:train",
            "reasonact.training.bc_config:PRESETS",
        ),
        "eval": Command(
            "Closed-loop success of a BC run (95% CIs, GIFs) beside the expert and baselines → JSON (as vla eval).",
            "reasonact.bc.policy:evaluate",
            "reasonact.vla.evaluate:PRESETS",
        ),
    },
    "serve": Command(
        "Policy server (`serve <checkpoint|size|echo|module:factory>`), or its load test (`serve bench`, `serve soak`)",
        "reasonact.serving.commands:serve",
        "reasonact.serving.commands:PRESETS",
    ),
}


def _resolve(ref: str) -> object:
    module, attr = ref.split(":")
    if module.split(".")[0] == "benchmarks":
        _add_checkout_to_path()
    return getattr(importlib.import_module(module), attr)


def _add_checkout_to_path() -> None:
    """Benchmarks live in the source checkout's `benchmarks/`, next to `src/`."""
    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / "benchmarks" / "__init__.py").exists():
        raise SystemExit(f"benchmarks need a source checkout of reasonact; none found at {checkout}")
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))


def _usage(prog: str, table: Table | dict[str, Command | Table]) -> str:
    width = max(len(name) for name in table)
    lines = [f"usage: {prog} {{{','.join(table)}}} ...", "", "commands:"]
    for name, entry in table.items():
        text = entry.help if isinstance(entry, Command) else ", ".join(entry)
        lines.append(f"  {name:<{width}}  {text}")
    lines += ["", f"`{prog} <command> --help` describes each command and its flags."]
    return "\n".join(lines)


def _pick(prog: str, table: dict, argv: Sequence[str]) -> tuple[Command | Table, list[str], str]:
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(prog, table))
        raise SystemExit(0 if argv else 2)
    name = argv[0]
    if name not in table:
        close = difflib.get_close_matches(name, list(table), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        print(f"{prog}: unknown command {name!r}.{hint}\n\n{_usage(prog, table)}", file=sys.stderr)
        raise SystemExit(2)
    return table[name], list(argv[1:]), f"{prog} {name}"


def main(argv: Sequence[str] | None = None) -> None:
    entry, args, prog = _pick("reasonact", COMMANDS, list(sys.argv[1:] if argv is None else argv))
    if isinstance(entry, dict):  # a family: pick the verb
        entry, args, prog = _pick(prog, entry, args)
    assert isinstance(entry, Command)
    run = _resolve(entry.target)
    try:
        if entry.presets is None:
            hints = typing.get_type_hints(run)
            hints.pop("return", None)
            params = list(hints.values())
            if len(params) == 1 and dataclasses.is_dataclass(params[0]):  # one config: fields as top-level flags
                run(tyro.cli(params[0], default=params[0](), prog=prog, description=entry.help, args=args))
            else:  # typed keyword arguments
                tyro.cli(run, prog=prog, description=entry.help, args=args)  # type: ignore[call-overload]
            return
        presets = _resolve(entry.presets)
        if "--preset" in args[:-1]:  # `--preset NAME` anywhere = the positional preset name
            at = args.index("--preset")
            args = [args[at + 1], *args[:at], *args[at + 2 :]]
        if "default" in presets and not (args and (args[0] in presets or args[0] in ("-h", "--help"))):
            args = ["default", *args]  # `reasonact fast bench --out x.json` = `reasonact fast bench default --out …`
        config = tyro.extras.overridable_config_cli(presets, prog=prog, description=entry.help, args=args)  # type: ignore[arg-type]
        run(config)  # type: ignore[operator]
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        if os.environ.get("REASONACT_TRACEBACK"):
            raise
        print(f"{prog}: error: {err}\n(set REASONACT_TRACEBACK=1 for the traceback)", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
