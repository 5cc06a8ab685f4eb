"""Corpus text → vocabulary → integer ids in an on-disk cache (memory that does not grow with the corpus).

The file is read in fixed-size byte chunks and decoded incrementally, so neither
the whole text as one Python string nor a Python list of ints ever exists.
Characters are Unicode code points: Korean, Chinese or emoji work like English.

Ids are the characters' ranks in the sorted vocabulary, stored as the smallest
unsigned dtype that fits (uint8 for V ≤ 256, else uint16, else uint32) in a raw
`np.memmap` file beside a JSON description. The cache is reused while the
corpus is unchanged: same size and mtime, or — when only the mtime moved — the
same SHA-256; otherwise it is rebuilt. A cache file whose size does not match its
description (cut short by a full disk, or damaged) is rebuilt too, with a note.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charlm.data.vocab import Vocab
from charlm.errors import CharlmError

CHUNK_BYTES = 1 << 22  # 4 MiB of text per pass step
CACHE_VERSION = 1


@dataclass(frozen=True)
class Corpus:
    path: str                 # the text file, resolved
    encoding: str             # how it was decoded
    fingerprint: dict         # {"size", "mtime_ns", "sha256"}
    vocab: Vocab
    ids: np.ndarray           # (n,) memmap of uint8/16/32 ids, read-only

    def split(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """(train ids, validation ids): the last `val_fraction` is validation, contiguous."""
        n_train = train_length(len(self.ids), val_fraction)
        return self.ids[:n_train], self.ids[n_train:]


def train_length(n: int, val_fraction: float) -> int:
    """How many of n characters are for training: as nanoGPT, int(0.9 n) for a fraction of 0.1."""
    return int(n * (1.0 - val_fraction))


def cached_length(cache_dir: Path) -> int | None:
    """The corpus length (characters) the id cache in `cache_dir` describes; None without a cache."""
    meta = _read_meta(Path(cache_dir) / "corpus.json")
    return meta.get("n") if meta else None


def _check_readable(path: Path, what: str = "corpus") -> None:
    """`what` names the file's role in the messages: the corpus, or a text file being scored."""
    if not path.exists():
        raise CharlmError(f"{what} not found: {path}")
    if path.is_dir():
        raise CharlmError(f"{what} is a directory, not a text file: {path}")
    if not os.access(path, os.R_OK):
        raise CharlmError(f"{what} is not readable (permission denied): {path}")


def _code_points(text: str) -> np.ndarray:
    """text -> (n,) uint32 code points, without a Python loop."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _chunks(path: Path, encoding: str):
    """Yield (code points (n,) uint32) per chunk; clear errors for bad bytes.
    The incremental decoder carries a character split across chunk edges."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    except LookupError:
        raise CharlmError(f"unknown encoding {encoding!r}") from None
    offset = 0
    with open(path, "rb") as f:
        while True:
            raw = f.read(CHUNK_BYTES)
            final = not raw
            pending = len(decoder.getstate()[0])  # bytes of a split character held from the last chunk
            try:
                text = decoder.decode(raw, final=final)
            except UnicodeDecodeError as e:
                raise CharlmError(
                    f"{path} is not valid {encoding}: undecodable byte 0x{e.object[e.start]:02x} "
                    f"at byte offset {offset - pending + e.start} (is it a binary file? try --encoding latin-1 "
                    "if the text uses another encoding)") from None
            if text:
                cps = _code_points(text)
                nul = np.flatnonzero(cps == 0)
                if nul.size:
                    raise CharlmError(f"{path} looks like a binary file: it contains a NUL character "
                                      "(text corpora never do)")
                yield cps
            if final:
                return
            offset += len(raw)


def fingerprint(path: Path, with_hash: bool = True) -> dict:
    st = path.stat()
    fp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if with_hash:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(CHUNK_BYTES):
                h.update(block)
        fp["sha256"] = h.hexdigest()
    return fp


def _scan(path: Path, encoding: str) -> tuple[Vocab, int]:
    """First pass: every character's count (merged per chunk with np.unique)."""
    counts: dict[int, int] = {}
    n = 0
    for cps in _chunks(path, encoding):
        uniq, cnt = np.unique(cps, return_counts=True)
        for u, c in zip(uniq.tolist(), cnt.tolist(), strict=True):
            counts[u] = counts.get(u, 0) + c
        n += len(cps)
    if n == 0:
        raise CharlmError(f"corpus is empty: {path}")
    order = sorted(counts)
    return Vocab("".join(map(chr, order)), [counts[u] for u in order]), n


def _encode(path: Path, encoding: str, vocab: Vocab, n: int, out: Path) -> None:
    """Second pass: code points -> vocabulary ranks, written into a memmap."""
    table = np.array([ord(ch) for ch in vocab.chars], dtype=np.uint32)   # (V,) sorted code points
    mm = np.memmap(out, dtype=vocab.id_dtype, mode="w+", shape=(n,))
    pos = 0
    for cps in _chunks(path, encoding):
        mm[pos: pos + len(cps)] = np.searchsorted(table, cps)
        pos += len(cps)
    mm.flush()
    del mm


def load(path: str | Path, cache_dir: Path, encoding: str = "utf-8",
         note: Callable[[str], None] = lambda text: None) -> Corpus:
    """Open `path` through the id cache in `cache_dir` (built or rebuilt as needed;
    `note` hears why when a damaged cache is rebuilt)."""
    path = Path(path).resolve()
    _check_readable(path)
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta_path, ids_path = cache_dir / "corpus.json", cache_dir / "corpus.ids"
    fp = fingerprint(path, with_hash=False)
    meta = _read_meta(meta_path)
    if meta and meta["path"] == str(path) and meta["encoding"] == encoding and ids_path.exists() \
            and not _damaged(meta, ids_path, note):
        old = meta["fingerprint"]
        if old["size"] == fp["size"] and old["mtime_ns"] == fp["mtime_ns"]:
            return _open(meta, ids_path)
        if old["size"] == fp["size"] and fingerprint(path)["sha256"] == old["sha256"]:
            meta["fingerprint"] = {**old, "mtime_ns": fp["mtime_ns"]}  # touched, not changed
            _write_meta(meta_path, meta)
            return _open(meta, ids_path)
    fp = fingerprint(path)
    vocab, n = _scan(path, encoding)
    tmp = ids_path.with_suffix(".ids.tmp")
    _encode(path, encoding, vocab, n, tmp)
    os.replace(tmp, ids_path)
    meta = {"version": CACHE_VERSION, "path": str(path), "encoding": encoding, "fingerprint": fp,
            "n": n, "vocab": vocab.to_dict()}
    _write_meta(meta_path, meta)
    return _open(meta, ids_path)


def _damaged(meta: dict, ids_path: Path, note: Callable[[str], None]) -> bool:
    """True (after saying so) when the id file is not the size its description gives."""
    try:
        expected = int(meta["n"]) * np.dtype(Vocab.from_dict(meta["vocab"]).id_dtype).itemsize
        actual = ids_path.stat().st_size
    except (OSError, KeyError, TypeError, ValueError, CharlmError):
        expected, actual = -1, None
    if actual == expected:
        return False
    size = "unreadable" if actual is None else f"{actual:,} bytes where {expected:,} were expected"
    note(f"the id cache {ids_path} is damaged ({size}); rebuilding it from the corpus")
    return True


def _read_meta(meta_path: Path) -> dict | None:
    try:
        meta = json.loads(meta_path.read_text())
        return meta if meta.get("version") == CACHE_VERSION else None
    except (OSError, ValueError, AttributeError):
        return None


def _write_meta(meta_path: Path, meta: dict) -> None:
    tmp = meta_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, meta_path)


def _open(meta: dict, ids_path: Path) -> Corpus:
    vocab = Vocab.from_dict(meta["vocab"])
    ids = np.memmap(ids_path, dtype=vocab.id_dtype, mode="r", shape=(meta["n"],))
    return Corpus(meta["path"], meta["encoding"], meta["fingerprint"], vocab, ids)


def encode_text(path: Path, vocab: Vocab, encoding: str = "utf-8") -> tuple[np.ndarray, dict]:
    """Encode another file with an existing vocabulary (evaluation).

    Returns ids as int64 with −1 for characters outside the vocabulary, and
    {char: count} of those characters. Held in memory: for scoring files, not corpora.
    """
    path = Path(path)
    _check_readable(path, "text file")
    table = np.array([ord(ch) for ch in vocab.chars], dtype=np.uint32)  # (V,)
    parts, oov = [], {}
    for cps in _chunks(path, encoding):
        pos = np.minimum(np.searchsorted(table, cps), len(table) - 1)
        ids = pos.astype(np.int64)
        bad = table[pos] != cps
        if bad.any():
            uniq, cnt = np.unique(cps[bad], return_counts=True)
            for u, c in zip(uniq.tolist(), cnt.tolist(), strict=True):
                oov[chr(u)] = oov.get(chr(u), 0) + c
            ids[bad] = -1
        parts.append(ids)
    if not parts:
        raise CharlmError(f"file is empty: {path}")
    return np.concatenate(parts), oov
