"""charlm and PyTorch trained side by side from the same weights on the same batches.

Prints both training losses every 20 steps: they agree to 3–4 decimals, so a slow
learning curve is the configuration's doing, not charlm's. Needs torch==2.13.0.

    PYTHONPATH=. python benchmarks/compare_torch.py [EMBEDDING_DIM (0 = one-hot)] [STEPS] [wide]

`wide` initialises one-hot input weights U(−1, 1) in both (charlm's one-hot init)
instead of PyTorch's U(±1/√H). The model is a 2×256 LSTM, B = 50, T = 100, Adam 2e-3, clip 5.
"""

import sys
from pathlib import Path

import numpy as np
import torch

from charlm.config import ModelConfig, OptimConfig
from charlm.data import batches
from charlm.nn import model, optim

TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
H, B, T, LR = 256, 50, 100, 2e-3


def main() -> None:
    E = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    wide = len(sys.argv) > 3 and sys.argv[3] == "wide"
    text = TEXT.read_text()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    V = len(chars)
    ids = np.array([index[c] for c in text[: int(len(text) * 0.9)]], dtype=np.uint8)
    lanes = batches.lanes(ids, B)

    torch.manual_seed(0)
    torch.set_num_threads(2)
    emb = torch.nn.Embedding(V, E or V)
    if not E:  # one-hot: an identity embedding
        emb.weight.data = torch.eye(V)
        emb.weight.requires_grad_(False)
    rnn = torch.nn.LSTM(E or V, H, 2, batch_first=True)
    dec = torch.nn.Linear(H, V)
    if wide and not E:
        rnn.weight_ih_l0.data.uniform_(-1.0, 1.0)

    cfg = ModelConfig(V, "lstm", 2, H, E, forget_bias=0.0)
    theirs = {**{"rnn." + k: v for k, v in rnn.state_dict().items()},
              **{"decoder." + k: v for k, v in dec.state_dict().items()}, "embedding.weight": emb.weight}
    params = {k: theirs[k].detach().numpy().copy() for k in model.param_shapes(cfg)}
    trainable = [p for m in (emb, rnn, dec) for p in m.parameters() if p.requires_grad]
    topt = torch.optim.Adam(trainable, lr=LR)
    ocfg = OptimConfig(lr=LR, schedule="constant")
    ostate = optim.init_state(ocfg, params)
    state, tstate = model.init_state(cfg, B), None
    for k in range(steps):
        x, y = batches.window(lanes, k, T)
        loss, _, state, cache = model.forward(params, cfg, x, y, state)
        grads, _ = model.backward(params, cfg, cache)
        optim.clip_grads(grads, 5.0)
        optim.update(params, grads, ostate, ocfg, LR)
        xt, yt = (torch.from_numpy(np.asarray(a, dtype=np.int64)) for a in (x, y))
        out, tstate = rnn(emb(xt), tstate)
        tstate = tuple(h.detach() for h in tstate)
        tloss = torch.nn.functional.cross_entropy(dec(out).reshape(-1, V), yt.reshape(-1))
        topt.zero_grad()
        tloss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 5.0)
        topt.step()
        if k % 20 == 0 or k == steps - 1:
            print(f"{k} charlm {loss:.4f} torch {tloss.item():.4f}", flush=True)


if __name__ == "__main__":
    main()
