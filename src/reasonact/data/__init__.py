"""Data: trajectories, datasets and VLM co-training data."""
