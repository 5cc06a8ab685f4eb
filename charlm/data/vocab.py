"""The character vocabulary: sorted code points (a deterministic order) with their counts.

A fine-tuned model (charlm/training/init_from.py) keeps its ids and puts new characters after them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from charlm.errors import CharlmError

SHOWN = 10  # characters a message lists before "and N more"


def listing(chars: Iterable[str], shown: int = SHOWN) -> str:
    """"'#', '$', '(' and 41 more": characters as a message lists them, sorted."""
    chars = sorted(chars)
    more = len(chars) - shown
    return ", ".join(map(repr, chars[:shown])) + (f" and {more:,} more" if more > 0 else "")


@dataclass(frozen=True)
class Vocab:
    chars: str                # every distinct character, sorted by code point (a fine-tuned model's
                              # added ones follow its own, sorted); id = position
    counts: list[int]         # occurrences of each character in the corpus

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def id_dtype(self) -> type:
        """Smallest unsigned integer dtype that holds every id."""
        V = len(self.chars)
        return np.uint8 if V <= 256 else np.uint16 if V <= 65536 else np.uint32

    def index(self) -> dict[str, int]:
        return {ch: i for i, ch in enumerate(self.chars)}

    def encode(self, text: str) -> np.ndarray:
        """Short text (a prime) -> ids (n,); unknown characters are an error naming them."""
        index = self.index()
        unknown = sorted({ch for ch in text if ch not in index})
        if unknown:
            raise CharlmError(f"{len(unknown):,} character(s) not in the model's vocabulary: {listing(unknown)}")
        return np.array([index[ch] for ch in text], dtype=np.intp)

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in ids)

    def to_dict(self) -> dict:
        return {"chars": self.chars, "counts": list(self.counts)}

    @classmethod
    def from_dict(cls, d: dict) -> Vocab:
        return cls(d["chars"], list(d["counts"]))

    def preview(self, limit: int = 60) -> str:
        """Printable preview of the vocabulary, control characters escaped."""
        special = {" ": "␠", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
        shown = "".join(special.get(ch) or (ch if ch.isprintable() else repr(ch)[1:-1])
                        for ch in self.chars[:limit])
        return shown + ("…" if len(self.chars) > limit else "")
