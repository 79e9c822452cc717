"""The rule-based teacher: Pangu-Agent fine-tunes on outcome-filtered traces of a stronger agent;
here that expert is a set of rules that reads only the prompt text (never the environment's
internals or gold answers) and writes what a competent LM would for every function and flow.

Its successful traces on train seeds are the SFT data of `agents.finetune`; its held-out success
is the expert baseline the study reports. Tests use it to assert real successes of the plumbing.
"""

from __future__ import annotations

import re

from reasonact.agents.policy import ScriptedLM

_SEEN = re.compile(r"a (\w+ \w+): (\d+) ahead|a (\w+ \w+): level with you")
_VALUE = re.compile(r"(?:calculator: [^\n]*? -> |Action: calculator: [^\n]*\nObservation: )(-?\d+(?:/\d+)?)\n")


def _substituted(prompt: str) -> str | None:
    """The arithmetic to compute: `Calculate X.` or the split formula with every known value filled in."""
    task = re.search(r"Task: (.*)", prompt)
    if task is None:
        return None
    direct = re.search(r"Calculate (.*?)\.?$", task.group(1))
    if direct:
        return direct.group(1)
    formula = re.search(r"Compute (.*?)\. You know", task.group(1))
    if formula is None:
        return None
    values = dict(re.findall(r"\b([a-z]) = (-?\d+)", prompt))
    expression = re.sub(r"\b[a-z]\b", lambda m: values.get(m.group(0), m.group(0)), formula.group(1))
    return None if re.search(r"[a-z]", expression) else expression


def _target(prompt: str) -> tuple[int, int] | None:
    """(ahead, side) of the mission's object in the latest observation; side < 0 is left."""
    mission = re.search(r"Task: go to the (\w+ \w+)", prompt.split("End of example.")[-1])
    observations = re.findall(r"(?:Observation: |-> )(You see [^\n]*)", prompt)
    if mission is None or not observations:
        return None
    for entry in observations[-1].removeprefix("You see ").split("; "):
        if entry.startswith(f"a {mission.group(1)}:"):
            ahead = re.search(r"(\d+) ahead", entry)
            side = re.search(r"(\d+) (left|right)", entry)
            return (
                int(ahead.group(1)) if ahead else 0,
                (int(side.group(1)) * (1 if side.group(2) == "right" else -1)) if side else 0,
            )
    return None


def _grid_action(prompt: str) -> str:
    target = _target(prompt)
    if target is None:  # search: turn around, walking on after three turns in a row
        moves = "(turn left|turn right|move forward)"
        recent = re.findall(rf"{moves} ->|Action: {moves}", prompt)
        last = ["".join(pair) for pair in recent[-3:]]
        return "move forward" if len(last) == 3 and all(a.startswith("turn") for a in last) else "turn left"
    ahead, side = target
    if side == 0 or ahead > 0:  # straight at it, or walk until level with it
        return "move forward"
    return "turn left" if side < 0 else "turn right"


def respond(full_prompt: str) -> str:
    prompt = full_prompt.split("End of example.")[-1]  # the environment's worked example is not this episode
    label = prompt.rstrip().splitlines()[-1]
    values = _VALUE.findall(prompt)
    if label == "Message:":
        known = re.search(r"You know (.*?);", prompt)
        return f"I know {known.group(1)}" if known else "hello"
    if label == "Tool call:":
        expression = _substituted(prompt)
        return f"calculator: {expression}" if expression and not values else "none"
    if label == "Action:":
        if "grid room" in full_prompt:
            return _grid_action(prompt)
        if values:
            return f"answer {values[-1]}"
        partner = "partner" in full_prompt and "Message:" not in prompt
        if "Tools:" in full_prompt and partner and "Action: message:" not in prompt:
            known = re.search(r"You know (.*?);", prompt)
            return f"message: I know {known.group(1)}" if known else "wait"
        expression = _substituted(prompt)
        if expression and "Call one as `name: input` instead" in full_prompt:  # the flat agent calls tools itself
            return f"calculator: {expression}"
        return "wait"
    return {"Plan:": "compute the value, then answer", "Thought:": "use the calculator"}.get(label, "noted")


def teacher_lm() -> ScriptedLM:
    """The rule-based expert behind the `AgentLM` interface."""
    return ScriptedLM(respond, name="rules")
