"""The gradient-check errors per cell and configuration (the numbers quoted in notes).

    PYTHONPATH=. python benchmarks/gradcheck_report.py

Runs the same float64 central-difference check as tests/test_gradients.py and prints
the worst relative error over all parameters, and over the initial state, per case.
"""

from charlm.model import ModelConfig
from tests.test_gradients import V, check_model


def main() -> None:
    for cell in ("rnn", "lstm", "gru"):
        cases = {
            "1 layer one-hot": (ModelConfig(V, cell=cell, layers=1, hidden=4), None),
            "2 layers embedding": (ModelConfig(V, cell=cell, layers=2, hidden=4, embedding_dim=3), None),
            "2 layers tied": (ModelConfig(V, cell=cell, layers=2, hidden=4, embedding_dim=4, tie_weights=True), None),
            "2 layers dropout 0.4": (ModelConfig(V, cell=cell, layers=2, hidden=4, embedding_dim=3, dropout=0.4), 123),
        }
        for name, (cfg, dropout_seed) in cases.items():
            errors = check_model(cfg, dropout_seed=dropout_seed)
            worst = max(errors, key=errors.get)
            state = max(v for k, v in errors.items() if k.startswith("state"))
            print(f"{cell} {name:22s} max rel {errors[worst]:.1e} ({worst}); initial state {state:.1e}")


if __name__ == "__main__":
    main()
