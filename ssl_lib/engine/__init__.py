"""Training loop, hooks, schedules, checkpoints, distributed setup and the PyTorchJob launcher."""
