"""Training a model: the plan of a run (start, resume, fine-tune), the loop, its state and
clock, budgets and early stopping, the speed probe, the memory check and the torchrun launch."""
