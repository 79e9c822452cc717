"""BabyAI (MiniGrid 3.2, `minigrid` on PyPI) rendered to text: a multi-step interactive environment.

The agent's 7×7 egocentric view becomes sentences — each visible object with its distance ahead
and to the side, and what is directly in front — and its actions are `turn left`, `turn right`,
`move forward` (plus `pick up`, `drop`, `toggle` for missions that need them). Success is
BabyAI's own mission verifier (reward > 0). Episode seeds are offset per split so held-out
evaluation seeds never overlap the seeds used to collect training traces.
"""

from __future__ import annotations

import numpy as np

from reasonact.agents.envs.base import Step, TextEnv
from reasonact.reasoning.tasks import split_seed

ACTIONS = {"turn left": 0, "turn right": 1, "move forward": 2, "pick up": 3, "drop": 4, "toggle": 5}
ALIASES = {"left": "turn left", "right": "turn right", "forward": "move forward", "pickup": "pick up"}
OBJECTS = ("unseen", "empty", "wall", "floor", "door", "key", "ball", "box", "goal", "lava", "agent")
COLORS = ("red", "green", "blue", "purple", "yellow", "grey")
DOOR_STATES = ("open", "closed", "locked")
AGENT_COLUMN, AGENT_ROW = 3, 6  # the agent's cell in the 7×7 view, facing row 0
EXAMPLE = """Example (another room):
Task: go to the blue key
Observation: You see a blue key: 2 ahead, 1 right. Directly in front of you: nothing.
Action: move forward
Observation: You see a blue key: 1 ahead, 1 right. Directly in front of you: nothing.
Action: move forward
Observation: You see a blue key: level with you, 1 right. Directly in front of you: nothing.
Action: turn right
Observation: You reached the goal.
End of example."""  # a worked demonstration in the prompt: base LMs continue patterns


def describe_view(image: np.ndarray) -> str:
    """Objects in a (7, 7, 3) MiniGrid view (indexed [column, row]) as text, nearest first."""
    if image.shape != (7, 7, 3):
        raise ValueError(f"image: expected shape (7, 7, 3), received {image.shape}")
    seen = []
    for column in range(7):
        for row in range(7):
            kind, color, state = (int(v) for v in image[column, row])
            name = OBJECTS[kind]
            if name in ("unseen", "empty", "wall", "floor", "agent"):
                continue
            ahead, side = AGENT_ROW - row, column - AGENT_COLUMN
            where = [f"{ahead} ahead" if ahead else "level with you"]
            if side:
                where.append(f"{abs(side)} {'right' if side > 0 else 'left'}")
            label = f"{COLORS[color]} {name}" + (f" ({DOOR_STATES[state]})" if name == "door" else "")
            seen.append((ahead + abs(side), f"a {label}: {', '.join(where)}"))
    front = OBJECTS[int(image[AGENT_COLUMN, AGENT_ROW - 1, 0])]
    objects = "; ".join(text for _, text in sorted(seen)) if seen else "nothing but walls and floor"
    return f"You see {objects}. Directly in front of you: {'nothing' if front == 'empty' else front}."


class BabyAIEnv(TextEnv):
    max_steps = 16
    action_forms = "turn left, turn right, move forward"

    def __init__(self, env_id: str = "BabyAI-GoToRedBallNoDists-v0", split: str = "test") -> None:
        import gymnasium as gym
        import minigrid  # noqa: F401  (registers the BabyAI/MiniGrid ids)

        self.env = gym.make(env_id)
        self.name = f"babyai:{env_id}"
        self.split = split
        self.mission = ""

    def reset(self, seed: int) -> dict[str, str]:
        observation, _ = self.env.reset(seed=split_seed(self.split, seed))
        self.mission = observation["mission"]
        return {"agent": describe_view(observation["image"])}

    def task(self, role: str) -> str:
        return self.mission

    def instructions(self, role: str) -> str:
        return (
            "You are in a grid room. Reach the goal object: you succeed when it is directly in front of you. "
            "Actions: turn left, turn right, move forward.\n" + EXAMPLE
        )

    def parse_action(self, text: str) -> str | None:
        words = " ".join(text.lower().replace("_", " ").replace("-", " ").split())
        for action in ACTIONS:
            if words.startswith(action):
                return action
        first = words.split(" ")[0] if words else ""
        return ALIASES.get(first)

    def step(self, role: str, action: str) -> Step:
        observation, reward, terminated, truncated, _ = self.env.step(ACTIONS[action])
        success = bool(terminated and reward > 0)
        text = describe_view(observation["image"])
        return Step("You reached the goal." if success else text, done=terminated or truncated, success=success)
