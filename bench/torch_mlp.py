#!/usr/bin/python3
"""PyTorch peer of the seed configuration (bench/run.sh runs it).

usage: torch_mlp.py DATA_DIR train EPOCHS BATCH SEED
       torch_mlp.py DATA_DIR infer SINGLE_RUNS
Prints key=value lines. Threads: torch.set_num_threads(TORCH_THREADS, default 1);
OpenBLAS keeps its own default thread count.
"""
import os, resource, struct, sys, time

import numpy as np
import torch


def idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    zero, dtype, rank = struct.unpack(">HBB", raw[:4])
    dims = struct.unpack(">" + "I" * rank, raw[4:4 + 4 * rank])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * rank).reshape(dims)


def load(d, prefix):
    x = idx(os.path.join(d, prefix + "-images-idx3-ubyte"))
    y = idx(os.path.join(d, prefix + "-labels-idx1-ubyte"))
    x = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(y.astype(np.int64))


def model():
    m = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                            torch.nn.Linear(512, 10))
    for layer in (m[0], m[2]):          # Keras: glorot uniform, zero bias
        torch.nn.init.xavier_uniform_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    return m


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def accuracy(m, x, y):
    with torch.no_grad():
        return (m(x).argmax(1) == y).float().mean().item()


def train(d, epochs, batch, seed):
    torch.manual_seed(seed)
    xtr, ytr = load(d, "train")
    xte, yte = load(d, "t10k")
    m = model()
    opt = torch.optim.RMSprop(m.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    lossf = torch.nn.CrossEntropyLoss()
    n = len(xtr)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            j = perm[i:i + batch]
            opt.zero_grad()
            loss = lossf(m(xtr[j]), ytr[j])
            loss.backward()
            opt.step()
    secs = time.perf_counter() - t0
    print("train_seconds=%.3f" % secs)
    print("test_acc=%.4f" % accuracy(m, xte, yte))
    print("peak_mb=%.1f" % peak_mb())


def infer(d, runs):
    xte, _ = load(d, "t10k")
    m = model().eval()
    with torch.no_grad():
        for i in range(100):
            m(xte[i:i + 1])
        lat = []
        for i in range(runs):
            x = xte[i % len(xte)].unsqueeze(0)
            t = time.perf_counter()
            m(x)
            lat.append(time.perf_counter() - t)
        lat.sort()
        print("latency_us=%.2f" % (lat[len(lat) // 2] * 1e6))
        rates = []
        for _ in range(5):
            t = time.perf_counter()
            for i in range(0, len(xte), 1000):
                m(xte[i:i + 1000])
            rates.append(len(xte) / (time.perf_counter() - t))
        rates.sort()
        print("images_per_s=%.0f" % rates[len(rates) // 2])


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))
    d, mode = sys.argv[1], sys.argv[2]
    if mode == "train":
        train(d, int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        infer(d, int(sys.argv[3]))
