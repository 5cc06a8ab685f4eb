"""`charlm report`: the HTML page (`page`), its charts (`svg`, `grads`), its styles and
script (`assets`), and the probes behind its views (`probes`: surprisal, activations,
samples, curves)."""
