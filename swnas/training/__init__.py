"""Training a network: the trainer, recipes, weight transfer, resumable checkpoints, DDP and threads."""
