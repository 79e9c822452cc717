"""The agent's memory: what intrinsic functions read and write (Pangu-Agent §2, the state m_t).

Extrinsic functions change the environment; intrinsic ones change only this. `view` renders it
for a prompt, keeping the last few entries of each list so prompts stay short for small LMs.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Memory:
    task: str  # the goal, as the environment states it
    instructions: str  # the environment's rules and action forms
    observation: str = ""  # the latest observation of the environment
    plan: str = ""  # written by `plan`
    thoughts: list[str] = field(default_factory=list)  # written by `think`
    reflections: list[str] = field(default_factory=list)  # written by `reflect`
    tool_results: list[tuple[str, str]] = field(default_factory=list)  # (call, result) written by `use_tool`
    inbox: list[tuple[str, str]] = field(default_factory=list)  # (sender, message) written by peers' `communicate`
    sent: list[str] = field(default_factory=list)  # messages this agent sent
    history: list[tuple[str, str]] = field(default_factory=list)  # (action, observation) of extrinsic steps
    transcript: list[str] = field(default_factory=list)  # the flat agent's ReAct lines, oldest first

    def view(self, recent: int = 3) -> dict[str, str]:
        """Prompt fields: each a few short lines ('' when empty: the prompt leaves the slot out)."""

        def lines(items: list[str]) -> str:
            return "\n".join(items[-recent:])

        return {
            "task": self.task,
            "instructions": self.instructions,
            "observation": self.observation or "-",
            "plan": self.plan,
            "thoughts": lines(self.thoughts),
            "reflections": lines(self.reflections),
            "tool_results": lines([f"{call} -> {result}" for call, result in self.tool_results]),
            "inbox": lines([f"{sender}: {message}" for sender, message in self.inbox]),
            "sent": lines(self.sent),
            "history": lines([f"{action} -> {observation}" for action, observation in self.history]),
            "transcript": "\n".join(self.transcript[-4 * recent :]),
        }
