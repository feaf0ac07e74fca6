#!/usr/bin/python3
"""PyTorch peer of the `cnn` preset (bench/run.sh runs it): Keras' MNIST
convnet, Conv2D(32,3,relu) MaxPool(2) Conv2D(64,3,relu) MaxPool(2) Flatten
Dropout(0.5) Dense(10,softmax), Adam (lr 1e-3, eps 1e-7), batch 128, one
epoch over the first N training images.

usage: torch_cnn.py DATA_DIR N BATCH SEED
Prints train_seconds= (the epoch's loop) and us_per_image=.
Threads: torch.set_num_threads(TORCH_CNN_THREADS, default 2); run.sh
starts it with OPENBLAS_NUM_THREADS=1, its best setting on 2 cores.
"""
import os, sys, time

import torch

from torch_mlp import idx


def model():
    nn = torch.nn
    m = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, 10))
    for layer in m:                     # Keras: glorot uniform, zero bias
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return m


def main(d, n, batch, seed):
    torch.manual_seed(seed)
    x = idx(os.path.join(d, "train-images-idx3-ubyte"))[:n]
    y = idx(os.path.join(d, "train-labels-idx1-ubyte"))[:n]
    x = torch.from_numpy(x.astype("float32") / 255.0).unsqueeze(1)
    y = torch.from_numpy(y.astype("int64"))
    m = model().train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-7)
    lossf = torch.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    perm = torch.randperm(n)
    for i in range(0, n, batch):
        j = perm[i:i + batch]
        opt.zero_grad()
        lossf(m(x[j]), y[j]).backward()
        opt.step()
    secs = time.perf_counter() - t0
    print("train_seconds=%.3f" % secs)
    print("us_per_image=%.2f" % (secs / n * 1e6))


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("TORCH_CNN_THREADS", "2")))
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
