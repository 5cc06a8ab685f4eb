"""Corpus reading, vocabulary, the memmap id cache, and lane layout."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from charlm.data import batches, corpus
from charlm.data.vocab import Vocab
from charlm.errors import CharlmError


def test_vocab_is_sorted_with_counts(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("banana band")
    c = corpus.load(p, tmp_path / "run")
    assert c.vocab.chars == " abdn"
    assert c.vocab.counts == [1, 4, 2, 1, 3]
    assert c.ids.dtype == np.uint8
    assert c.vocab.decode(c.ids) == "banana band"


def test_korean_and_emoji_are_characters(tmp_path):
    text = "안녕하세요, 세계! 😀 charlm은 한국어도 배웁니다.\n" * 20
    p = tmp_path / "ko.txt"
    p.write_text(text, encoding="utf-8")
    c = corpus.load(p, tmp_path / "run")
    assert c.vocab.chars == "".join(sorted(set(text)))
    assert len(c.ids) == len(text)
    assert c.vocab.decode(c.ids) == text


def test_chunk_edges_split_multibyte_characters(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "CHUNK_BYTES", 7)  # every few bytes, mid-character
    text = "가나다라마바사 abc 😀é" * 5
    p = tmp_path / "t.txt"
    p.write_text(text, encoding="utf-8")
    c = corpus.load(p, tmp_path / "run")
    assert c.vocab.decode(c.ids) == text


def test_wide_vocab_uses_uint16(tmp_path):
    text = "".join(chr(0xAC00 + i) for i in range(300))
    p = tmp_path / "t.txt"
    p.write_text(text, encoding="utf-8")
    c = corpus.load(p, tmp_path / "run")
    assert c.ids.dtype == np.uint16 and len(c.vocab) == 300


@pytest.mark.parametrize("chunk", [5, 1 << 22])
def test_invalid_utf8_names_the_byte_offset(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(corpus, "CHUNK_BYTES", chunk)
    p = tmp_path / "bad.txt"
    p.write_bytes("héllo wörld".encode() + b"\xff tail")
    with pytest.raises(CharlmError, match=r"byte 0xff at byte offset 13\b"):
        corpus.load(p, tmp_path / "run")


def test_other_encoding_by_option(tmp_path):
    p = tmp_path / "latin.txt"
    p.write_bytes("café au lait".encode("latin-1"))
    with pytest.raises(CharlmError, match="not valid utf-8"):
        corpus.load(p, tmp_path / "run")
    c = corpus.load(p, tmp_path / "run2", encoding="latin-1")
    assert c.vocab.decode(c.ids) == "café au lait"


def test_empty_missing_directory_binary(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(CharlmError, match="empty"):
        corpus.load(tmp_path / "empty.txt", tmp_path / "run")
    with pytest.raises(CharlmError, match="not found"):
        corpus.load(tmp_path / "nope.txt", tmp_path / "run")
    with pytest.raises(CharlmError, match="directory"):
        corpus.load(tmp_path, tmp_path / "run")
    (tmp_path / "bin").write_bytes(b"abc\x00\x00def")
    with pytest.raises(CharlmError, match="binary"):
        corpus.load(tmp_path / "bin", tmp_path / "run")


def test_cache_reused_when_unchanged_and_rebuilt_when_changed(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("hello world")
    run = tmp_path / "run"
    corpus.load(p, run)
    ids_file = run / "corpus.ids"
    built = ids_file.stat().st_mtime_ns
    again = corpus.load(p, run)
    assert ids_file.stat().st_mtime_ns == built  # reused, not rewritten
    assert again.vocab.decode(again.ids) == "hello world"
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same bytes
    touched = corpus.load(p, run)
    assert ids_file.stat().st_mtime_ns == built and touched.fingerprint["mtime_ns"] == st.st_mtime_ns + 10**9
    p.write_text("hello there")  # same size, new content
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))
    changed = corpus.load(p, run)
    assert changed.vocab.decode(changed.ids) == "hello there"
    p.write_text("completely different and longer")
    longer = corpus.load(p, run)
    assert longer.vocab.decode(longer.ids) == "completely different and longer"


def test_split_is_the_contiguous_tail(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("abcdefghij" * 10)
    c = corpus.load(p, tmp_path / "run")
    train, val = c.split(0.1)
    assert len(train) == 90 and len(val) == 10
    assert c.vocab.decode(val) == "abcdefghij"


def test_lanes_and_windows():
    ids = np.arange(103)
    lanes = batches.lanes(ids, 4)              # L = 25
    assert lanes.shape == (4, 25) and lanes[2, 0] == 50
    assert batches.windows_per_epoch(103, 4, 6) == 4
    x, y = batches.window(lanes, 1, 6)
    np.testing.assert_array_equal(x[0], np.arange(6, 12))
    np.testing.assert_array_equal(y[0], np.arange(7, 13))
    assert batches.fit_batch(103, 4, 6) == 4
    assert batches.fit_batch(30, 8, 6) == 4     # 30 // 7 lanes of one window each
    with pytest.raises(CharlmError, match="too short"):
        batches.fit_batch(5, 8, 6)


def test_eval_lanes_score_every_pair_once_and_warm_up_on_what_precedes():
    ids = np.arange(53)                                  # 52 (input, target) pairs
    x, y, warm, (xt, yt) = batches.eval_lanes(ids, 4, 5)
    assert x.shape == y.shape == (4, 13) and len(yt) == 0
    np.testing.assert_array_equal(np.concatenate([y.reshape(-1), yt]), np.arange(1, 53))
    np.testing.assert_array_equal(y, x + 1)
    np.testing.assert_array_equal(warm[1:], x[1:, :1] - 5 + np.arange(5))   # the 5 inputs before each lane
    x, y, warm, (xt, yt) = batches.eval_lanes(np.arange(55), 4, 5)
    np.testing.assert_array_equal(np.concatenate([y.reshape(-1), yt]), np.arange(1, 55))
    np.testing.assert_array_equal(xt, [52, 53])          # the tail continues the last lane
    x, y, warm, _ = batches.eval_lanes(np.arange(55), 8, 20)
    assert x.shape == (2, 27) and warm.shape == (2, 20)  # fewer lanes, each at least the warm-up long
    np.testing.assert_array_equal(warm[1], np.arange(7, 27))
    assert batches.eval_lanes(np.arange(3), 64, 8)[0].shape == (1, 2)
    assert batches.eval_lanes(np.arange(3), 64, 0)[0].shape == (2, 1)
    with pytest.raises(CharlmError, match="two characters"):
        batches.eval_lanes(np.arange(1), 4, 5)


def test_a_cache_from_before_several_files_is_still_used(tmp_path):
    """A run directory's version-1 id cache (one "path") is read as it is, not rebuilt."""
    p = tmp_path / "t.txt"
    p.write_text("banana band\n" * 10)
    c = corpus.load(p, tmp_path / "run")
    meta_path = tmp_path / "run" / "corpus.json"
    meta = json.loads(meta_path.read_text())
    old = {"version": 1, "path": meta["files"][0], "encoding": meta["encoding"], "fingerprint": c.fingerprint,
           "n": meta["n"], "vocab": meta["vocab"]}
    meta_path.write_text(json.dumps(old))
    ids = tmp_path / "run" / "corpus.ids"
    ids.write_bytes(bytes(reversed(ids.read_bytes())))  # a rebuild would undo this
    again = corpus.load(p, tmp_path / "run")
    assert again.vocab.decode(again.ids) == "banana band\n"[::-1] * 10


def test_a_given_vocabulary_keeps_its_ids_and_extends_after_them(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("zebra")
    base = Vocab("rab", [1, 1, 1])  # not sorted: a fine-tuned model's order
    with pytest.raises(CharlmError, match="2 character\\(s\\) the model never saw: 'e', 'z'"):
        corpus.load(p, tmp_path / "run", vocab=base)
    c = corpus.load(p, tmp_path / "run", vocab=base, extend=True)
    assert c.vocab.chars == "rabez" and c.vocab.counts == [1, 1, 1, 1, 1]
    assert c.ids.tolist() == [4, 3, 2, 0, 1]
    ids, oov = corpus.encode_text(p, c.vocab)
    assert ids.tolist() == [4, 3, 2, 0, 1] and oov == {}
