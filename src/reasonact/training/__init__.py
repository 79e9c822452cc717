"""The training room: one config + trainer pair per algorithm, on the run layer (`reasonact.runs`).

Both halves train here (flow matching for the VLA; SFT, DPO, GRPO, STaR, PRMs for reasoning);
each trainer imports only its own half and the shared core.
"""
