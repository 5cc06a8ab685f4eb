"""How much memory a training configuration needs, and how much the machine has.

Checked before anything is allocated, so that a model that cannot fit is refused
in one line instead of failing inside numpy. The estimate counts what one training
step holds at its peak (letters as in charlm.nn.model: N lanes, T steps, M = N·T,
V vocabulary, E embedding, H hidden, G gates, L layers):
    parameters, their gradients, the optimizer's moments (and average), and
    the per-step copies of the recurrent weights   (4 + slots) × P
    per layer: gate pre-activations, states and their gradients, the layer
    input and output, the dropout mask         ~ M × (3G + 6) × H
    the decoder: logits, probabilities and their gradient   3 × M × V
all in the parameters' float32. It is a floor with some headroom, not a bound:
numpy's temporaries come and go around it.
"""

from __future__ import annotations

import os
from pathlib import Path

from charlm.config import ModelConfig
from charlm.nn.model import param_shapes

BYTES = 4  # float32 parameters and activations
SLOTS = {"adam": 2, "rmsprop": 1, "sgd": 1}  # moments per parameter, as charlm.nn.optim keeps them (tested)
MEMINFO = Path("/proc/meminfo")


def training_bytes(cfg: ModelConfig, batch: int, seq_len: int, optimizer: str = "adam", average: bool = False) -> int:
    """Estimated peak bytes of one training step of `cfg` on batch × seq_len windows;
    average: the optimizer also keeps an average of the weights (--ema), one more slot."""
    n_params = sum(_size(shape) for shape in param_shapes(cfg).values())
    M, H, G = batch * seq_len, cfg.hidden, cfg.gates
    per_layer = M * (3 * G + 6) * H
    decoder = 3 * M * cfg.vocab_size
    return BYTES * ((4 + SLOTS.get(optimizer, 2) + average) * n_params + cfg.layers * per_layer + decoder)


def available_bytes() -> int | None:
    """Memory the machine can give without swapping: MemAvailable, else free physical pages; None if unknown."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def human(n: float) -> str:
    """Bytes as a short figure: 1.5 GiB, 320 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TiB"


def _size(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out
