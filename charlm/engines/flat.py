"""Named arrays as views of one flat buffer.

The parameters, each rank's gradients and the optimizer's moments all share one
layout: a `Layout` maps each name to a slice of a flat (P,) array, so the
optimizer and the gradient sum run as a few whole-buffer operations instead of
a Python loop over names, and a flat buffer can live in shared memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtype: str

    @classmethod
    def of(cls, arrays: dict[str, np.ndarray]) -> Layout:
        dtypes = {a.dtype.str for a in arrays.values()}
        if len(dtypes) != 1:
            raise ValueError(f"arrays of several dtypes cannot share a flat buffer: {sorted(dtypes)}")
        return cls(tuple(arrays), tuple(a.shape for a in arrays.values()), dtypes.pop())

    @property
    def size(self) -> int:
        """P: the total number of elements."""
        return sum(int(np.prod(s)) for s in self.shapes)

    def views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """{name: view of flat} in layout order; writing a view writes the buffer."""
        out, start = {}, 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            n = int(np.prod(shape))
            out[name] = flat[start: start + n].reshape(shape)
            start += n
        return out

    def empty(self) -> np.ndarray:
        return np.empty(self.size, self.dtype)                     # (P,)

    def pack(self, arrays: dict[str, np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
        """Copy {name: array} into a flat buffer (a new one unless `out`)."""
        flat = self.empty() if out is None else out                # (P,)
        for name, view in self.views(flat).items():
            view[...] = arrays[name]
        return flat
