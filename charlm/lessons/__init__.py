"""The lessons: what the RNN notes teach, computed live (`charlm demo hello`,
`charlm demo gradients`, `charlm eval gradient-flow`)."""
