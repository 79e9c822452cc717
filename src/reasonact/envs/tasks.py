"""Language for each task: instruction, paraphrases (train / held-out), object noun, subtask phases.

Held-out paraphrases are never used for training data; evaluating with them
(`EnvConfig.instruction="heldout"`) measures whether a policy follows language it has not seen.
Phases are the scripted expert's stages in words; `kind` says how they are detected from state
(see `reasonact.envs.experts.PhaseTracker`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskLanguage:
    instruction: str  # canonical instruction (training data)
    paraphrases: tuple[str, ...]  # extra training phrasings
    heldout: tuple[str, ...]  # phrasings kept out of all training data
    obj: str  # noun of the manipulated object
    phases: tuple[str, ...]  # subtask phases, in order
    kind: str  # phase detection: "reach" (one phase), "push" (reach → move), "grasp" (reach → grasp → move)


MT10: dict[str, TaskLanguage] = {
    "reach-v3": TaskLanguage(
        "reach the goal position",
        ("move the gripper to the goal",),
        ("bring your hand to the target spot", "go to the marked point"),
        "puck",
        ("reach the goal",),
        "reach",
    ),
    "push-v3": TaskLanguage(
        "push the puck to the goal",
        ("slide the puck to the target",),
        ("shove the disc over to the marked spot", "nudge the puck onto the goal"),
        "puck",
        ("reach the puck", "push the puck to the goal"),
        "push",
    ),
    "pick-place-v3": TaskLanguage(
        "pick up the puck and place it at the goal",
        ("put the puck on the goal",),
        ("grab the disc and set it down at the target", "lift the puck and drop it at the marked spot"),
        "puck",
        ("reach the puck", "grasp the puck", "move the puck to the goal"),
        "grasp",
    ),
    "door-open-v3": TaskLanguage(
        "open the door",
        ("pull the door open",),
        ("swing the door open", "get the door to open all the way"),
        "door handle",
        ("reach the door handle", "pull the door open"),
        "push",
    ),
    "drawer-open-v3": TaskLanguage(
        "open the drawer",
        ("pull the drawer out",),
        ("slide the drawer open", "draw the drawer towards you"),
        "drawer handle",
        ("reach the drawer handle", "pull the drawer open"),
        "push",
    ),
    "drawer-close-v3": TaskLanguage(
        "close the drawer",
        ("push the drawer shut",),
        ("slide the drawer closed", "shut the open drawer"),
        "drawer handle",
        ("reach the drawer", "push the drawer closed"),
        "push",
    ),
    "button-press-topdown-v3": TaskLanguage(
        "press the button from the top",
        ("push the button down",),
        ("press down on the button", "hit the button from above"),
        "button",
        ("move above the button", "press the button"),
        "push",
    ),
    "peg-insert-side-v3": TaskLanguage(
        "insert the peg into the hole from the side",
        ("put the peg in the hole",),
        ("slide the peg sideways into the opening", "fit the peg into the side hole"),
        "peg",
        ("reach the peg", "grasp the peg", "insert the peg into the hole"),
        "grasp",
    ),
    "window-open-v3": TaskLanguage(
        "open the window",
        ("slide the window open",),
        ("push the window open sideways", "move the window pane to open it"),
        "window handle",
        ("reach the window handle", "slide the window open"),
        "push",
    ),
    "window-close-v3": TaskLanguage(
        "close the window",
        ("slide the window shut",),
        ("push the window closed sideways", "move the window pane to close it"),
        "window handle",
        ("reach the window handle", "slide the window closed"),
        "push",
    ),
}

PUSHT = TaskLanguage(
    "push the T-shaped block onto the target",
    ("align the T block with the goal outline",),
    ("move the T piece so it covers the target", "slide the tee onto its outline"),
    "T block",
    ("reach the T block", "push the T block onto the target"),
    "push",
)


def metaworld_language(task: str) -> TaskLanguage:
    """MT10 tasks have hand-written language; the other 40 v3 tasks get a generic phrasing."""
    if task in MT10:
        return MT10[task]
    words = task.removesuffix("-v3").replace("-", " ")
    return TaskLanguage(
        f"complete the {words} task", (), (f"do the {words} task",), "object", ("reach the object", words), "push"
    )


def closest(name: str, known: list[str], what: str) -> ValueError:
    """A ValueError for an unknown name that suggests the closest known one."""
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.3)
    hint = f" Did you mean {match[0]!r}?" if match else ""
    return ValueError(
        f"{what}: unknown {what} {name!r}.{hint} Known: {', '.join(known[:12])}{' …' * (len(known) > 12)}"
    )
