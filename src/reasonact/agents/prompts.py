"""Every prompt the agents send, in one place: one template per function.

Templates are filled from `Memory.view()`; each ends with the label whose line the LM completes
(one line per call). The structured agent's prompts show memory slots (plan, notes, tool
results, messages, recent steps); the flat ReAct agent's prompt is its whole transcript.
"""

from __future__ import annotations

CONTEXT = """{instructions}
Task: {task}
{memory}Observation: {observation}
"""
MEMORY_LINES = (  # label, Memory.view() field; a line appears only once its slot has content
    ("Plan", "plan"),
    ("Thoughts", "thoughts"),
    ("Reflections", "reflections"),
    ("Tool results", "tool_results"),
    ("Messages received", "inbox"),
    ("Recent steps", "history"),
    ("Messages you sent", "sent"),
)

PROMPTS: dict[str, str] = {
    "plan": CONTEXT + "Write a short plan to reach the goal, in one line.\nPlan:",
    "think": CONTEXT + "Think about what to do next, in one line.\nThought:",
    "use_tool": CONTEXT + "Tools: {tools}. Call one as `name: input`, or write `none`.\nTool call:",
    "act": CONTEXT + "Choose the next action; write exactly one action.\nAction:",
    "reflect": CONTEXT + "Last action: {last_action}\nWhat did it teach you? One line.\nReflection:",
    "communicate": CONTEXT + "Write one message to {peer} (what they need from you).\nMessage:",
    "react": """{instructions}
Tools: {tools}. Call one as `name: input` instead of an action when useful.
Task: {task}
Observation: {observation}
{transcript}
Action:""",
}


def render(function: str, fields: dict[str, str]) -> str:
    """The prompt of `function` with `fields` (Memory.view() + tools, peer, last_action) filled in."""
    if function not in PROMPTS:
        raise ValueError(f"function: expected one of {sorted(PROMPTS)}, received {function!r}")
    memory = "".join(f"{label}: {fields[key]}\n" for label, key in MEMORY_LINES if fields[key])
    return PROMPTS[function].format(**fields, memory=memory)
