"""Export to PyTorch state_dict names; with torch installed, the same numbers as charlm."""

from __future__ import annotations

import json

import numpy as np
import pytest

from charlm.config import ModelConfig
from charlm.data.vocab import Vocab
from charlm.nn import model
from charlm.use import export

CASES = [dict(cell=c, embedding_dim=E, tie_weights=tie)
         for c in ("lstm", "gru", "rnn") for E, tie in ((0, False), (6, False), (8, True))]


def exported(cfg, tmp_path):
    params = model.init_params(cfg, np.random.default_rng(0))
    vocab = Vocab("abcdefghijk"[: cfg.vocab_size], [1] * cfg.vocab_size)
    out = tmp_path / "m.npz"
    export.save_npz(out, export.torch_state_dict(cfg, params, vocab))
    return params, np.load(out)


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: "{cell}-E{embedding_dim}-tie{tie_weights}".format(**kw))
def test_names_and_shapes(kw, tmp_path):
    cfg = ModelConfig(11, layers=2, hidden=8, **kw)
    params, z = exported(cfg, tmp_path)
    D = cfg.embedding_dim or cfg.vocab_size
    assert z["embedding.weight"].shape == (11, D)
    assert z["rnn.weight_ih_l0"].shape == (cfg.gates * 8, D)
    assert z["rnn.weight_hh_l1"].shape == (cfg.gates * 8, 8)
    assert z["decoder.weight"].shape == (11, 8) and z["decoder.bias"].shape == (11,)
    assert "".join(z["charlm.vocab"]) == "abcdefghijk"
    assert json.loads(str(z["charlm.config"]))["cell"] == cfg.cell
    if not cfg.embedding_dim:
        np.testing.assert_array_equal(z["embedding.weight"], np.eye(11))


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: "{cell}-E{embedding_dim}-tie{tie_weights}".format(**kw))
def test_pytorch_gives_the_same_logits(kw, tmp_path):
    torch = pytest.importorskip("torch")
    cfg = ModelConfig(11, layers=2, hidden=8, **kw)
    params, z = exported(cfg, tmp_path)
    conf = json.loads(str(z["charlm.config"]))
    rnn_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[conf["cell"]]
    net = torch.nn.ModuleDict({
        "embedding": torch.nn.Embedding(conf["vocab_size"], conf["input_size"]),
        "rnn": rnn_cls(conf["input_size"], conf["hidden"], conf["layers"], batch_first=True),
        "decoder": torch.nn.Linear(conf["hidden"], conf["vocab_size"]),
    })
    net.load_state_dict({k: torch.from_numpy(z[k]) for k in z.files if not k.startswith("charlm.")})
    ids = np.random.default_rng(1).integers(0, 11, (3, 9))
    with torch.no_grad():
        h, _ = net["rnn"](net["embedding"](torch.from_numpy(ids)))
        theirs = net["decoder"](h).numpy()
    _, ours, _, _ = model.forward(params, cfg, ids, None, model.init_state(cfg, 3), want_logits=True)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
