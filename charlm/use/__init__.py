"""Using a trained model: sampling, beam search, the interactive session, scoring,
export to PyTorch and what a checkpoint holds."""
