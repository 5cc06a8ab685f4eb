"""charlm: character-level recurrent language models in numpy.

The public Python API (charlm/api.py), imported on first use so that `import charlm`
stays cheap: `charlm.load(path)` → a `Model` with `.sample`, `.beam`, `.score`,
`.surprisal` and `.session`; `charlm.fit(corpus, **options)` → the trained `Model` (the
name `charlm.training` belongs to the training package).
Failures raise `charlm.CharlmError`. Everything else in the package is internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from charlm.errors import CharlmError

__version__ = "0.1.0"
__all__ = ["CharlmError", "Model", "fit", "load", "__version__"]

if TYPE_CHECKING:
    from charlm.api import Model, fit, load


def __getattr__(name: str):
    if name in ("Model", "fit", "load"):
        from charlm import api
        return getattr(api, name)
    raise AttributeError(f"module 'charlm' has no attribute {name!r}")
