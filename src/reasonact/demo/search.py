"""Demo section: test-time search with a policy trained here, guided by the oracle step checker."""

from __future__ import annotations

import dataclasses

from reasonact.demo.config import DemoConfig
from reasonact.runs import Run


def section(config: DemoConfig, run: Run) -> tuple[str, dict]:
    """Greedy CoT vs best-of-N vs PRM-guided search on held-out problems at one budget (SPEC §3.3)."""
    from reasonact.reasoning.study import run_study

    study = dataclasses.replace(config.thinking, root=run.path)
    summary = run_study(study, progress=True)
    rows = "\n".join(
        f"| {r['method']} | {r['budget']} | {r['accuracy']:.2f} | {r['mean_tokens']:.0f} | {r['errors']} |"
        for r in summary["rows"]
    )
    text = f"""## Thinking: test-time search

Policy: the `{study.policy}` step-writing model (SFT from scratch on reference solutions by
`reasonact search train-policy`; `tiny` ships with the package); scorer: `{study.scorer}` (the task's step checker).
{study.count} held-out `{study.family}` problems ({study.difficulty} difficulty) from the test split (never the
policy's training seeds).

| method | N | accuracy | generated tokens per problem | errors |
|---|---|---|---|---|
{rows}

Best-of-N samples N whole solutions and votes on their answers; beam search and tree + DFS spend the same
kind of budget step by step, letting the step scorer prune branches as soon as a step goes wrong. The full
curves (N = 2 … 32, every method) come from `reasonact search run small` (docs/reasoning.md). Per-problem
records: `{study.name}/`.

![accuracy vs tokens]({study.name}/plots/accuracy_vs_tokens.png)
"""
    return text, summary
