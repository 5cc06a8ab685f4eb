"""What the command tests share: a small English text and one tiny run trained on it per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import charlm

TINY = ["--hidden", "16", "--layers", "1", "--seq-len", "16", "--batch-size", "4", "--eval-every", "10",
        "--sample-every", "0", "--quiet"]


def english(lines: int = 200) -> str:
    """Plain ASCII lines of words (about 50 characters each), the same every time."""
    rng = np.random.default_rng(0)
    words = "the quick brown fox jumps over a lazy dog while birds sing in green trees".split()
    return "\n".join(" ".join(words[i] for i in rng.integers(0, len(words), 9)) for _ in range(lines)) + "\n"


@pytest.fixture(scope="session")
def run(tmp_path_factory) -> Path:
    """A tiny model (40 steps) trained on `english()`; its corpus sits beside it as corpus.txt."""
    d = tmp_path_factory.mktemp("charlm-cli")
    (d / "corpus.txt").write_text(english(), encoding="utf-8")
    proc = charlm(["train", "corpus.txt", "--out", "RUN", "--max-steps", "40", "--lr", "0.02", *TINY], cwd=d)
    assert proc.returncode == 0, proc.stderr
    return d / "RUN"
