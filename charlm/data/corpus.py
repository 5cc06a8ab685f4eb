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

A corpus can be several files (charlm/data/files.py says which and how they are
joined). Fine-tuning encodes a new text with the model's vocabulary (`vocab=`): ids
keep their meaning, and characters the model never saw are an error that lists
them, or (`extend=True`) are appended after the model's own, in code-point order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charlm.data import files as files_mod
from charlm.data.batches import FileSlice
from charlm.data.files import CHUNK_BYTES, CorpusRecord, Source, check_readable
from charlm.data.vocab import Vocab, listing
from charlm.errors import CharlmError
from charlm.rundir import CORPUS_IDS, CORPUS_META

CACHE_VERSION = 2


@dataclass(frozen=True)
class Corpus:
    path: str                 # the text file, resolved (several files: files.Source.label)
    encoding: str             # how it was decoded
    fingerprint: dict         # {"size", "mtime_ns", "sha256"} (several files: files.fingerprint)
    vocab: Vocab
    ids: np.ndarray           # (n,) memmap of uint8/16/32 ids, read-only
    source: Source            # the files it was read from

    def record(self) -> CorpusRecord:
        """The checkpoint's description of the corpus: enough to find and check it again."""
        return CorpusRecord.from_dict({"path": self.path, "encoding": self.encoding,
                                       "fingerprint": self.fingerprint, **self.source.record()})

    def split(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """(train ids, validation ids): the last `val_fraction` is validation, contiguous."""
        n_train = train_length(len(self.ids), val_fraction)
        return self.ids[:n_train], self.ids[n_train:]

    def slice(self, start: int, stop: int) -> np.ndarray | FileSlice:
        """ids[start:stop] as worker processes should read them: straight from the id cache
        file when there is one (no copy, whatever the corpus's size), else the array."""
        ids = self.ids
        if isinstance(ids, np.memmap) and ids.filename and ids.offset == 0 and ids.ndim == 1:
            return FileSlice(str(ids.filename), ids.dtype.str, start, stop)
        return ids[start:stop]


def train_length(n: int, val_fraction: float) -> int:
    """How many of n characters are for training: as nanoGPT, int(0.9 n) for a fraction of 0.1."""
    return int(n * (1.0 - val_fraction))


def cached_length(cache_dir: Path) -> int | None:
    """The corpus length (characters) the id cache in `cache_dir` describes; None without a cache."""
    meta = _read_meta(Path(cache_dir) / CORPUS_META)
    return meta.get("n") if meta else None


def _code_points(text: str) -> np.ndarray:
    """text -> (n,) uint32 code points, without a Python loop."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _chunks(path: Path, encoding: str):
    """Yield (code points (n,) uint32) per chunk; clear errors for bad bytes.
    The incremental decoder carries a character split across chunk edges."""
    decoder = files_mod.decoder(encoding)
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


_NEWLINE = _code_points("\n")


def _stream(source: Source, encoding: str):
    """Code points of the whole corpus, file after file, joined as files.SEPARATOR_RULE says."""
    for k, path in enumerate(source.files):
        last = None
        if k:
            yield _NEWLINE
        for cps in _chunks(Path(path), encoding):
            last = cps[-1]
            yield cps
        if k + 1 < len(source.files) and last != _NEWLINE[0]:
            yield _NEWLINE


def _scan(source: Source, encoding: str) -> tuple[dict[int, int], int]:
    """First pass: every character's count (merged per chunk with np.unique)."""
    counts: dict[int, int] = {}
    n = 0
    for cps in _stream(source, encoding):
        uniq, cnt = np.unique(cps, return_counts=True)
        for u, c in zip(uniq.tolist(), cnt.tolist(), strict=True):
            counts[u] = counts.get(u, 0) + c
        n += len(cps)
    if n == 0:
        raise CharlmError(f"corpus is empty: {source.label}")
    return counts, n


def _vocab(counts: dict[int, int], base: Vocab | None, extend: bool) -> Vocab:
    """The corpus's own sorted vocabulary; or `base`'s characters, in base's order, then
    (with extend) the ones base lacks. Characters base lacks without extend are an error."""
    if base is None:
        order = sorted(counts)
    else:
        new = sorted(set(counts) - {ord(ch) for ch in base.chars})
        if new and not extend:
            raise unseen_error("".join(map(chr, new)))
        order = [ord(ch) for ch in base.chars] + new
    return Vocab("".join(map(chr, order)), [counts.get(u, 0) for u in order])


def unseen_error(chars: str) -> CharlmError:
    return CharlmError(f"the new text has {len(chars):,} character(s) the model never saw: {listing(chars)}; "
                       "--extend-vocab adds them to the model as fresh rows")


def _lookup(vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """(code points sorted (V,), the id of each (V,)): a vocabulary in any order, for searchsorted."""
    cps = np.array([ord(ch) for ch in vocab.chars], dtype=np.uint32)   # (V,) in id order
    order = np.argsort(cps, kind="stable")                              # (V,)
    return cps[order], order


def _encode(source: Source, encoding: str, vocab: Vocab, n: int, out: Path) -> None:
    """Second pass: code points -> ids, written into a memmap."""
    table, ids_of = _lookup(vocab)
    mm = np.memmap(out, dtype=vocab.id_dtype, mode="w+", shape=(n,))
    pos = 0
    for cps in _stream(source, encoding):
        mm[pos: pos + len(cps)] = ids_of[np.searchsorted(table, cps)]
        pos += len(cps)
    mm.flush()
    del mm


def load(source: Source | str | Path, cache_dir: Path, encoding: str = "utf-8",
         note: Callable[[str], None] = lambda text: None, vocab: Vocab | None = None,
         extend: bool = False) -> Corpus:
    """Open a corpus (a Source, or one file's path) through the id cache in `cache_dir`
    (built or rebuilt as needed; `note` hears why when a damaged cache is rebuilt).
    `vocab`: encode with the model's vocabulary (fine-tuning); `extend`: append the
    characters it lacks instead of refusing them."""
    if not isinstance(source, Source):
        path = Path(source).resolve()
        check_readable(path)
        source = Source((str(path),), (str(path),))
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta_path, ids_path = cache_dir / CORPUS_META, cache_dir / CORPUS_IDS
    quick = files_mod.quick(source)
    meta = _read_meta(meta_path)
    if meta and meta["files"] == list(source.files) and meta["encoding"] == encoding and ids_path.exists() \
            and _fits(meta, vocab, extend) and not _damaged(meta, ids_path, note):
        if meta["quick"] == quick:
            return _open(meta, ids_path, source)
        sizes = [q[0] for q in quick]
        if [q[0] for q in meta["quick"]] == sizes and files_mod.fingerprint(source)["sha256"] == \
                meta["fingerprint"]["sha256"]:
            meta["quick"] = quick  # touched, not changed
            if source.single:
                meta["fingerprint"] = {**meta["fingerprint"], "mtime_ns": quick[0][1]}
            _write_meta(meta_path, meta)
            return _open(meta, ids_path, source)
    fp = files_mod.fingerprint(source)
    counts, n = _scan(source, encoding)
    corpus_vocab = _vocab(counts, vocab, extend)
    tmp = ids_path.with_suffix(".ids.tmp")
    _encode(source, encoding, corpus_vocab, n, tmp)
    os.replace(tmp, ids_path)
    meta = {"version": CACHE_VERSION, "files": list(source.files), "label": source.label, "encoding": encoding,
            "fingerprint": fp, "quick": quick, "n": n, "vocab": corpus_vocab.to_dict(),
            "base": vocab.chars if vocab is not None else None}
    _write_meta(meta_path, meta)
    return _open(meta, ids_path, source)


def _fits(meta: dict, vocab: Vocab | None, extend: bool) -> bool:
    """Whether the cached ids are in the vocabulary asked for; characters a cache built
    with --extend-vocab added are an error when it is not given again."""
    if vocab is None:
        return meta["base"] is None
    chars = meta["vocab"]["chars"]
    if meta["base"] == vocab.chars and chars != vocab.chars and not extend:
        raise unseen_error(chars[len(vocab.chars):])
    return chars == vocab.chars or (extend and meta["base"] == vocab.chars)


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
    """The cache's description (a version 1 one read as version 2); None if unusable."""
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("version") == 1:
            fp = meta["fingerprint"]
            meta |= {"version": 2, "files": [meta["path"]], "label": meta["path"], "base": None,
                     "quick": [[fp["size"], fp["mtime_ns"]]]}
        return meta if meta.get("version") == CACHE_VERSION else None
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return None


def _write_meta(meta_path: Path, meta: dict) -> None:
    tmp = meta_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, meta_path)


def _open(meta: dict, ids_path: Path, source: Source) -> Corpus:
    vocab = Vocab.from_dict(meta["vocab"])
    ids = np.memmap(ids_path, dtype=vocab.id_dtype, mode="r", shape=(meta["n"],))
    return Corpus(source.label, meta["encoding"], meta["fingerprint"], vocab, ids, source)


def reopen(record: CorpusRecord, cache_dir: Path, vocab: Vocab, why: str, source: Source | None = None,
           note: Callable[[str], None] = lambda text: None) -> Corpus:
    """The text a run trained on, opened again in its model's vocabulary: the recorded files (or
    `source`, where the corpus moved), refused unless it is the same text, byte for byte. This is the
    one check that a corpus is unchanged, for every path that needs it; `why` says what a
    changed text would spoil ("resuming would not continue the same run")."""
    source = source or record.source
    gone = [f for f in source.files if not Path(f).is_file()]
    if gone:
        raise CharlmError(f"the run's corpus {gone[0]} is gone; {why}")
    data = load(source, cache_dir, record.encoding, note, vocab, extend=True)
    if data.vocab.chars != vocab.chars or data.fingerprint.get("sha256") != record.fingerprint.get("sha256"):
        what = ("it changed since the run was trained on it" if data.path == record.path
                else f"it is a different text from the run's corpus {record.path}")
        raise CharlmError(f"{data.path} is not the text the run was trained on ({what}); {why}")
    return data


def _encoded(path: Path, vocab: Vocab, encoding: str):
    """Yield (code points (n,), ids (n,) int64 with −1 outside the vocabulary) per chunk of a file."""
    path = Path(path)
    check_readable(path, "text file")
    table, ids_of = _lookup(vocab)
    for cps in _chunks(path, encoding):
        pos = np.minimum(np.searchsorted(table, cps), len(table) - 1)
        ids = ids_of[pos].astype(np.int64)                              # (n,)
        ids[table[pos] != cps] = -1
        yield cps, ids


def encode_text(path: Path, vocab: Vocab, encoding: str = "utf-8") -> tuple[np.ndarray, dict]:
    """Encode another file with an existing vocabulary (evaluation).

    Returns ids as int64 with −1 for characters outside the vocabulary, and
    {char: count} of those characters. Held in memory: for scoring files, not corpora.
    """
    parts, oov = [], {}
    for cps, ids in _encoded(path, vocab, encoding):
        bad = ids < 0
        if bad.any():
            uniq, cnt = np.unique(cps[bad], return_counts=True)
            for u, c in zip(uniq.tolist(), cnt.tolist(), strict=True):
                oov[chr(u)] = oov.get(chr(u), 0) + c
        parts.append(ids)
    if not parts:
        raise CharlmError(f"file is empty: {path}")
    return np.concatenate(parts), oov


def read_passage(path: Path, vocab: Vocab, encoding: str = "utf-8", chars: int = 0) -> tuple[str, np.ndarray]:
    """The first `chars` characters of a file (0 = all) as text, and their ids (int64, −1 for
    characters outside the vocabulary); only that much of the file is read."""
    texts, parts, n = [], [], 0
    for cps, ids in _encoded(path, vocab, encoding):
        if chars:
            cps, ids = cps[: chars - n], ids[: chars - n]
        texts.append(cps.tobytes().decode("utf-32-le"))
        parts.append(ids)
        n += len(cps)
        if chars and n >= chars:
            break
    if not parts:
        raise CharlmError(f"file is empty: {path}")
    return "".join(texts), np.concatenate(parts)
