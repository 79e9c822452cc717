"""Data: trajectories, LeRobot v3.0 datasets, expert demonstrations and VLM co-training data."""

from reasonact.data.lerobot import LeRobotReader, LeRobotWriter

__all__ = ["LeRobotReader", "LeRobotWriter"]
