"""PyTorch peers of kiln's five benchmark workloads, for `cargo xtask bench --vs torch`.

Same shapes, optimizer and data sizes as xtask/src/bench/workloads.rs:

  W1   784-512-10 (ReLU, softmax), 60,000 rows of uniform pixels, 10 random classes
  W1b  784-10 logistic regression, same data
  W1c  784-96-96-10, same data
  W1r  W1's model on real digits: the IDX folder given by --mnist-dir (kiln's bundled
       10,000 MNIST training digits) repeated to 60,000 rows, with their labels
  W2   10,000-16-16-1 (ReLU, sigmoid), 25,000 multi-hot rows with exactly 128 ones
  W2L  10,000-512-512-1, same data
  W3   the Keras MNIST convnet (docs/progression.md): Conv2d(32,3)-ReLU-MaxPool(2)-
       Conv2d(64,3)-ReLU-MaxPool(2)-Conv2d(128,3)-ReLU-Flatten-Linear(10) on W1's data as
       1×28×28 images; RMSprop(lr=1e-3, alpha=0.9, eps=1e-7), batch 64, 20 % held out
  W4   nn.LSTM(10, 32, batch_first) → last state → Linear(1) on 10,000 windows of 120×10,
       MSE, RMSprop(lr=1e-3), batch 32, 20 % held out
  W5   nn.Embedding(10000, 32) → nn.LSTM(32, 32) → Linear(1) on 25,000 sequences of 200 ids,
       BCE with logits, RMSprop(lr=1e-3), batch 128, 40 % held out

MNIST-like: RMSprop(lr=1e-2, alpha=0.9, eps=1e-7), batch 128, the last 20 % held out.
IMDB-like:  RMSprop(lr=1e-3, alpha=0.9, eps=1e-7), batch 512, the last 40 % held out.
Each epoch: a fresh `torch.randperm` order over the training rows, batches by slicing
(no DataLoader), then one pass over the validation rows under `no_grad` — what kiln's
`fit` does per epoch.

The multi-hot first layer, `--multi-hot`:
  dense          (default) the notebook's model ported as written: `nn.Linear(10000, …)` on
                 each batch's multi-hot rows (densified per batch from the stored word ids,
                 so the data set takes 25 MB, not the notebook's 1 GB dense array);
  embedding-bag  an expert's rewrite: `nn.EmbeddingBag(mode="sum")` over the 128 word ids
                 plus a bias — the same `x·W + b` for 0/1 rows, and much faster.

Runs one workload in this process and prints one JSON line:
  {"name", "seconds_per_epoch", "epoch_seconds", "peak_rss_bytes", "torch", "threads"}

  python3 torch_workloads.py W1 --threads 1 --epochs 3
"""

import argparse
import json
import resource
import sys
import time

import torch
from torch import nn

MNIST = {"W1": [512], "W1b": [], "W1c": [96, 96], "W1r": [512]}
IMDB = {"W2": [16, 16], "W2L": [512, 512]}
CONV = {"W3"}
RNN = {"W4", "W5"}


def real_digits(folder, n):
    """The IDX digits and labels in `folder`, repeated to `n` rows, pixels / 255."""
    import gzip
    import os

    import numpy as np

    def idx(name, offset):
        with gzip.open(os.path.join(folder, name)) as f:
            return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)

    images = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 784)
    labels = idx("train-labels-idx1-ubyte.gz", 8)
    reps = -(-n // len(labels))
    x = np.tile(images, (reps, 1))[:n].astype(np.float32) / np.float32(255)
    y = np.tile(labels, reps)[:n].astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def mnist_workload(hidden, gen, digits=None):
    n = 60_000
    if digits:
        x, y = real_digits(digits, n)
    else:
        x = torch.rand(n, 784, generator=gen)
        y = torch.randint(0, 10, (n,), generator=gen)
    layers, width = [], 784
    for units in hidden:
        layers += [nn.Linear(width, units), nn.ReLU()]
        width = units
    layers.append(nn.Linear(width, 10))
    model = nn.Sequential(*layers)
    # Softmax + sparse categorical cross-entropy, from logits (as Keras and kiln compute it).
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-2, alpha=0.9, eps=1e-7)
    return model, (x,), y, loss_fn, opt, 128, 0.2


def mnist_convnet(gen):
    n = 60_000
    # The same values as W1's rows, read as NCHW images (PyTorch's layout).
    x = torch.rand(n, 784, generator=gen).reshape(n, 1, 28, 28)
    y = torch.randint(0, 10, (n,), generator=gen)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(1152, 10),
    )
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    return model, (x,), y, loss_fn, opt, 64, 0.2


class LastStateLstm(nn.Module):
    """An optional Embedding, an LSTM (PyTorch's fused CPU kernel), a Linear on the last state."""

    def __init__(self, vocab, features, units):
        super().__init__()
        self.embed = nn.Embedding(vocab, features) if vocab else None
        self.lstm = nn.LSTM(features, units, batch_first=True)
        self.head = nn.Linear(units, 1)

    def forward(self, x):
        if self.embed is not None:
            x = self.embed(x)
        _, (h, _) = self.lstm(x)
        return self.head(h[-1]).squeeze(1)


def rnn_workload(name, gen):
    if name == "W4":
        n = 10_000
        x = torch.rand(n, 120, 10, generator=gen) * 2 - 1
        y = torch.rand(n, generator=gen) * 2 - 1
        model, loss_fn, batch, split = LastStateLstm(0, 10, 32), nn.MSELoss(), 32, 0.2
    else:
        n = 25_000
        x = torch.randint(0, 10_000, (n, 200), generator=gen)
        y = torch.randint(0, 2, (n,), generator=gen).float()
        model, loss_fn, batch, split = LastStateLstm(10_000, 32, 32), nn.BCEWithLogitsLoss(), 128, 0.4
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    return model, (x,), y, loss_fn, opt, batch, split


class MultiHotMlp(nn.Module):
    """`Dense` layers over multi-hot rows given as word ids (128 per row)."""

    def __init__(self, vocab, hidden, mode):
        super().__init__()
        self.vocab, self.mode = vocab, mode
        if mode == "embedding-bag":
            self.first = nn.EmbeddingBag(vocab, hidden[0], mode="sum")
            self.first_bias = nn.Parameter(torch.zeros(hidden[0]))
        else:
            self.first = nn.Linear(vocab, hidden[0])
        rest, width = [nn.ReLU()], hidden[0]
        for units in hidden[1:]:
            rest += [nn.Linear(width, units), nn.ReLU()]
            width = units
        rest.append(nn.Linear(width, 1))
        self.rest = nn.Sequential(*rest)

    def forward(self, ids):
        if self.mode == "embedding-bag":
            return self.rest(self.first(ids) + self.first_bias).squeeze(1)
        x = torch.zeros(ids.shape[0], self.vocab).scatter_(1, ids, 1.0)
        return self.rest(self.first(x)).squeeze(1)


def imdb_workload(hidden, gen, mode):
    n, vocab, words = 25_000, 10_000, 128
    # 128 distinct word ids per row (sorted, as kiln's CSR rows are).
    # `.clone()`: a slice would keep each whole 10,000-id permutation alive.
    ids = torch.stack([torch.randperm(vocab, generator=gen)[:words].clone() for _ in range(n)]).sort(dim=1).values
    y = torch.randint(0, 2, (n,), generator=gen).float()
    model = MultiHotMlp(vocab, hidden, mode)
    loss_fn = nn.BCEWithLogitsLoss()
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    return model, (ids,), y, loss_fn, opt, 512, 0.4


def epoch(model, xs, y, loss_fn, opt, batch, split):
    n = y.shape[0]
    train = int(n * (1.0 - split))
    order = torch.randperm(train)
    model.train()
    for start in range(0, train, batch):
        idx = order[start : start + batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(*(x[idx] for x in xs)), y[idx])
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        for start in range(train, n, batch):
            loss_fn(model(*(x[start : start + batch] for x in xs)), y[start : start + batch])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=sorted({**MNIST, **IMDB}.keys() | CONV | RNN))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--multi-hot", choices=["dense", "embedding-bag"], default="dense")
    ap.add_argument("--mnist-dir", help="W1r: the folder of the IDX digits kiln trains on")
    args = ap.parse_args()
    if args.workload == "W1r" and not args.mnist_dir:
        ap.error("W1r needs --mnist-dir (the bundled MNIST digits)")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    gen = torch.Generator().manual_seed(1)
    if args.workload in CONV:
        work = mnist_convnet(gen)
    elif args.workload in RNN:
        work = rnn_workload(args.workload, gen)
    elif args.workload in MNIST:
        work = mnist_workload(MNIST[args.workload], gen, args.mnist_dir if args.workload == "W1r" else None)
    else:
        work = imdb_workload(IMDB[args.workload], gen, args.multi_hot)
    times = []
    for _ in range(args.epochs + 1):
        t = time.perf_counter()
        epoch(*work)
        times.append(time.perf_counter() - t)
    timed = times[1:]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({
        "name": args.workload,
        "seconds_per_epoch": sorted(timed)[len(timed) // 2],
        "epoch_seconds": timed,
        "peak_rss_bytes": rss,
        "torch": torch.__version__,
        "threads": args.threads,
        "multi_hot": args.multi_hot if args.workload in IMDB else None,
    }))


if __name__ == "__main__":
    sys.exit(main())
