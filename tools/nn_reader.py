#!/usr/bin/env python3
"""nn_reader.py - a reference reader for digits model files, in Python and
numpy only, written from docs/model-format.md (not from the C code), so that
the document is shown to be enough to run a model elsewhere.

It checks a file (magic, version, flags, length, CRC-32, every layer's
shape and parameter count), runs inference for every layer kind, computes
the loss as the document defines it, and reads IDX files (raw or gzip) and
binary 8-bit PGM pictures.

    nn_reader.py info MODEL                      the layers, one a line
    nn_reader.py predict MODEL FILE... [--first N]
        one JSON object a line per sample: {"file", "index", "digit",
        "probabilities"}; FILE is an IDX images file (n, H, W[, C]) or a
        28x28-style binary PGM (P5, maxval 255), taken as it is (pixel / 255)
    nn_reader.py evaluate MODEL IMAGES LABELS [--first N]
        {"test_loss", "test_acc", "n", "confusion"} as one JSON object

As a module: load_model(path) -> Model; Model.predict(x) with x (B, input
shape) float; read_idx(path) -> numpy uint8 array; read_pgm(path);
loss(model, p, labels). Errors raise FormatError with a one-line message.
Exit status 1 and one line on stderr on a bad file.
"""
import gzip
import json
import math
import struct
import sys
import zlib

import numpy as np

MAGIC = b"DIGITSNN"
HEADER = 64
RECORD = 40
OPTIMIZER = 24
POSITION = 128
HISTORY = 40
MAX_LAYERS = 64
MAX_PARAMS = 1 << 28

KINDS = {1: "dense", 2: "conv2d", 3: "max_pooling2d", 4: "average_pooling2d",
         5: "flatten", 6: "dropout", 7: "batch_normalization",
         8: "global_average_pooling2d", 9: "leaky_re_lu"}
ACTIVATIONS = {0: "linear", 1: "relu", 2: "sigmoid", 3: "tanh", 4: "softmax"}
LOSSES = {1: "categorical_crossentropy", 2: "sparse_categorical_crossentropy",
          3: "mse"}
OPTIMIZERS = {1: "sgd", 2: "rmsprop", 3: "adam"}
BN_EPSILON = 1e-3
XENT_EPSILON = np.float32(1e-7)


class FormatError(Exception):
    """A file that is not what the document describes."""


class Layer:
    """One layer record, with the shapes the reader derived and its
    parameters as named numpy arrays (float64)."""

    def __init__(self, rec, in_shape):
        (self.kind, self.activation, self.units, self.kernel, self.stride,
         self.padding) = struct.unpack_from("<6I", rec, 0)
        self.rate = struct.unpack_from("<f", rec, 24)[0]
        self.n_params = struct.unpack_from("<Q", rec, 32)[0]
        if self.kind not in KINDS:
            raise FormatError("unknown layer kind %d" % self.kind)
        if self.activation not in ACTIVATIONS:
            raise FormatError("unknown activation %d" % self.activation)
        if self.padding not in (0, 1):
            raise FormatError("unknown padding %d" % self.padding)
        self.name = KINDS[self.kind]
        self.in_shape = in_shape
        self.out_shape, self.blocks = self._infer(in_shape)
        self.params = {}

    def _infer(self, s):
        """Output shape and the parameter blocks [(name, shape)], per the
        document's "Layers" section."""
        size = int(np.prod(s))
        k = self.kind
        if k != 1 and k != 2 and self.activation != 0:
            raise FormatError("%s takes no activation" % self.name)
        if k == 1:                                   # dense
            if self.units < 1:
                raise FormatError("dense: no units")
            return (self.units,), [("kernel", (size, self.units)),
                                   ("bias", (self.units,))]
        if k in (2, 3, 4):
            if len(s) != 3:
                raise FormatError("%s needs (H, W, C) input" % self.name)
            H, W, C = s
            n = self.kernel
            if n < 1:
                raise FormatError("%s: kernel or pool size 0" % self.name)
            if k == 2:                               # conv2d
                st = self.stride or 1
                if self.units < 1:
                    raise FormatError("conv2d: no filters")
                if self.padding == 1:
                    OH, OW = -(-H // st), -(-W // st)
                else:
                    if H < n or W < n:
                        raise FormatError("conv2d: kernel larger than input")
                    OH, OW = (H - n) // st + 1, (W - n) // st + 1
                F = self.units
                return (OH, OW, F), [("kernel", (n, n, C, F)), ("bias", (F,))]
            st = self.stride or n                    # pooling
            if self.padding != 0:
                raise FormatError("%s: only padding valid" % self.name)
            if H < n or W < n:
                raise FormatError("%s: pool larger than input" % self.name)
            return ((H - n) // st + 1, (W - n) // st + 1, C), []
        if k == 5:                                   # flatten
            return (size,), []
        if k == 8:                                   # global average pooling
            if len(s) != 3:
                raise FormatError("%s needs (H, W, C) input" % self.name)
            return (s[2],), []
        if k == 9:                                   # leaky ReLU
            if not 0.0 <= self.rate < 1.0:
                raise FormatError("leaky_re_lu: alpha outside [0, 1)")
            return s, []
        if k == 6:                                   # dropout
            if not 0.0 <= self.rate < 1.0:
                raise FormatError("dropout: rate outside [0, 1)")
            return s, []
        C = s[-1]                                    # batch normalization
        if not 0.0 <= self.rate < 1.0:
            raise FormatError("batch_normalization: momentum outside [0, 1)")
        return s, [("gamma", (C,)), ("beta", (C,)), ("moving_mean", (C,)),
                   ("moving_variance", (C,))]

    def count(self):
        return sum(int(np.prod(shape)) for _, shape in self.blocks)

    # ------------------------------------------------------------ inference
    def forward(self, x):
        """x (B, in_shape) -> (B, out_shape), inference mode."""
        B = x.shape[0]
        k = self.kind
        if k == 1:
            z = x.reshape(B, -1) @ self.params["kernel"] + self.params["bias"]
            return activate(self.activation, z)
        if k == 2:
            return activate(self.activation, self._conv(x))
        if k in (3, 4):
            n, st = self.kernel, self.stride or self.kernel
            OH, OW, _ = self.out_shape
            win = np.lib.stride_tricks.sliding_window_view(x, (n, n),
                                                           axis=(1, 2))
            win = win[:, : (OH - 1) * st + 1: st, : (OW - 1) * st + 1: st]
            # win (B, OH, OW, C, n, n)
            return win.max(axis=(4, 5)) if k == 3 else win.mean(axis=(4, 5))
        if k == 5:
            return x.reshape(B, -1)
        if k == 6:
            return x                                 # identity at inference
        if k == 8:
            return x.mean(axis=(1, 2))
        if k == 9:
            return np.where(x > 0, x, self.rate * x)
        p = self.params
        return (p["gamma"] * (x - p["moving_mean"]) /
                np.sqrt(p["moving_variance"] + BN_EPSILON) + p["beta"])

    def _conv(self, x):
        """Cross-correlation, channels last; "same" pads floor(total / 2)
        before and the rest after."""
        B, H, W, C = x.shape
        n, st = self.kernel, self.stride or 1
        OH, OW, F = self.out_shape
        if self.padding == 1:
            th = max((OH - 1) * st + n - H, 0)
            tw = max((OW - 1) * st + n - W, 0)
            x = np.pad(x, ((0, 0), (th // 2, th - th // 2),
                           (tw // 2, tw - tw // 2), (0, 0)))
        win = np.lib.stride_tricks.sliding_window_view(x, (n, n), axis=(1, 2))
        win = win[:, : (OH - 1) * st + 1: st, : (OW - 1) * st + 1: st]
        # win (B, OH, OW, C, di, dj) -> (B, OH, OW, di, dj, C), as the kernel
        cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(B * OH * OW, n * n * C)
        z = cols @ self.params["kernel"].reshape(n * n * C, F)
        return (z + self.params["bias"]).reshape(B, OH, OW, F)

    def describe(self):
        extra = []
        if self.kind in (1, 2):
            extra.append(ACTIVATIONS[self.activation])
        if self.kind in (2, 3, 4):
            extra.append("k=%d s=%d" % (self.kernel, self.stride or
                                        (1 if self.kind == 2 else self.kernel)))
        if self.kind == 2:
            extra.append("same" if self.padding else "valid")
        if self.kind in (6, 7, 9):
            extra.append({6: "rate=%g", 7: "momentum=%g", 9: "alpha=%g"}
                         [self.kind] % self.rate)
        return "%-20s %-16s %-16s %10d  %s" % (
            self.name, shape_str(self.in_shape), shape_str(self.out_shape),
            self.n_params, " ".join(extra))


def shape_str(s):
    return "(" + ", ".join(str(d) for d in s) + ")"


def activate(a, z):
    """The activation a on z, softmax over the last axis."""
    if a == 0:
        return z
    if a == 1:
        return np.maximum(z, 0.0)
    if a == 2:
        return 1.0 / (1.0 + np.exp(-z))
    if a == 3:
        return np.tanh(z)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Model:
    """A loaded model file: input shape, layers, loss, optimizer settings,
    parameters and, when the file has them, the optimizer state (state1,
    state2: flat float64 arrays laid out like the parameters) and the
    training position's raw fields."""

    def __init__(self):
        self.layers = []
        self.state1 = self.state2 = None
        self.position = None

    def predict(self, x):
        """x (B, input shape) or (B, input size) -> outputs (B, ...)."""
        x = np.asarray(x, dtype=np.float64).reshape((-1,) + self.input_shape)
        if self.norm != (0.0, 1.0):
            x = (x - self.norm[0]) / self.norm[1]
        for l in self.layers:
            x = l.forward(x)
        return x


def _crc_ok(data):
    return zlib.crc32(data[:-4]) & 0xffffffff == struct.unpack_from(
        "<I", data, len(data) - 4)[0]


def load_model(path):
    """Reads and checks a model file; returns a Model or raises
    FormatError."""
    with open(path, "rb") as f:
        data = f.read()
    return parse_model(data)


def parse_model(data):
    if len(data) < HEADER + OPTIMIZER + 4 or data[:8] != MAGIC:
        raise FormatError("not a digits model file (bad magic or too short)")
    version, flags, rank = struct.unpack_from("<3I", data, 8)
    if version != 1:
        raise FormatError("unsupported version %d" % version)
    if not _crc_ok(data):
        raise FormatError("checksum mismatch")
    if flags & ~7 or (flags & 2 and not flags & 1):
        raise FormatError("unknown flags 0x%x" % flags)
    dims = struct.unpack_from("<3I", data, 20)
    n_layers, loss_id, opt_id, nesterov = struct.unpack_from("<4I", data, 32)
    n_params, steps = struct.unpack_from("<2Q", data, 48)
    if not 1 <= n_layers <= MAX_LAYERS or n_params > MAX_PARAMS:
        raise FormatError("layer or parameter count out of range")
    if loss_id not in LOSSES or opt_id not in OPTIMIZERS:
        raise FormatError("unknown loss or optimizer")
    if rank == 3:
        input_shape = tuple(dims)
    elif rank == 1 and dims[1] == 1 and dims[2] == 1:
        input_shape = (dims[0],)
    else:
        raise FormatError("invalid input shape")
    if min(input_shape) < 1:
        raise FormatError("invalid input shape")
    floats = n_params * (3 if flags & 1 else 1)
    expect = HEADER + RECORD * n_layers + OPTIMIZER + 4 * floats + 4
    pos_at = expect - 4
    best = False
    if flags & 2:
        if len(data) < expect + POSITION:
            raise FormatError("file size does not match its header")
        n_hist, pflags = (struct.unpack_from("<I", data, pos_at + 116)[0],
                          struct.unpack_from("<I", data, pos_at + 68)[0])
        if pflags & ~1:
            raise FormatError("invalid training position")
        best = bool(pflags & 1)
        expect += POSITION + HISTORY * n_hist + (4 * n_params if best else 0)
    norm_at = expect - 4
    if flags & 4:                                # input normalisation
        expect += 8
    if len(data) != expect:
        raise FormatError("file size does not match its header")

    m = Model()
    m.input_shape = input_shape
    m.norm = (0.0, 1.0)
    if flags & 4:
        mean, std = struct.unpack_from("<2f", data, norm_at)
        if not (math.isfinite(mean) and abs(mean) <= 1e6 and
                1e-6 <= std <= 1e6):
            raise FormatError("invalid input normalisation")
        m.norm = (mean, std)
    m.loss = LOSSES[loss_id]
    m.steps = steps
    off = HEADER
    shape = input_shape
    for i in range(n_layers):
        try:
            l = Layer(data[off:off + RECORD], shape)
        except FormatError as e:
            raise FormatError("layer %d: %s" % (i + 1, e)) from None
        if l.count() != l.n_params:
            raise FormatError("layer %d: parameter count does not match"
                              % (i + 1))
        m.layers.append(l)
        shape = l.out_shape
        off += RECORD
    if sum(l.n_params for l in m.layers) != n_params:
        raise FormatError("parameter count does not match the layers")
    m.output_shape = shape
    lr, momentum, rho, beta1, beta2, eps = struct.unpack_from("<6f", data, off)
    m.optimizer = {"name": OPTIMIZERS[opt_id], "lr": lr, "momentum": momentum,
                   "nesterov": bool(nesterov), "rho": rho, "beta1": beta1,
                   "beta2": beta2, "epsilon": eps}
    off += OPTIMIZER
    flat = np.frombuffer(data, dtype="<f4", count=n_params, offset=off)
    if not np.all(np.isfinite(flat)):
        raise FormatError("parameters contain NaN or infinity")
    m.params = flat.astype(np.float64)
    at = 0
    for l in m.layers:
        for name, bshape in l.blocks:
            n = int(np.prod(bshape))
            l.params[name] = m.params[at:at + n].reshape(bshape)
            at += n
    off += 4 * n_params
    if flags & 1:
        st = np.frombuffer(data, dtype="<f4", count=2 * n_params, offset=off)
        m.state1 = st[:n_params].astype(np.float64)
        m.state2 = st[n_params:].astype(np.float64)
        off += 8 * n_params
    if flags & 2:
        p = data[off:off + POSITION]
        m.position = {
            "epoch": struct.unpack_from("<I", p, 0)[0],
            "step": struct.unpack_from("<I", p, 4)[0],
            "history_entries": struct.unpack_from("<I", p, 116)[0],
            "best_weights": best,
        }
        h = off + POSITION
        m.position["history"] = [
            struct.unpack_from("<5d", data, h + HISTORY * i)
            for i in range(m.position["history_entries"])]
    return m


# ---------------------------------------------------------------- data files

def read_idx(path):
    """An IDX file (raw or gzip, by content) as a uint8 array of its
    dimensions."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] or data[1]:
        raise FormatError("not an IDX file")
    if data[2] != 0x08:
        raise FormatError("IDX element type 0x%02x is not unsigned byte"
                          % data[2])
    rank = data[3]
    if not 1 <= rank <= 4 or len(data) < 4 + 4 * rank:
        raise FormatError("IDX rank %d" % rank)
    dims = struct.unpack_from(">%dI" % rank, data, 4)
    size = int(np.prod(dims, dtype=np.uint64))
    if len(data) != 4 + 4 * rank + size:
        raise FormatError("IDX length does not match its dimensions")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(
        dims)


def read_pgm(path):
    """A binary 8-bit PGM (P5, maxval 255) as a (h, w) uint8 array."""
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            while pos < len(data) and data[pos:pos + 1] != b"\n":
                pos += 1
            continue
        start = pos
        while pos < len(data) and not data[pos:pos + 1].isspace():
            pos += 1
        if start == pos:
            raise FormatError("truncated PGM header")
        fields.append(data[start:pos])
    if fields[0] != b"P5" or fields[3] != b"255":
        raise FormatError("not a binary 8-bit PGM")
    w, h = int(fields[1]), int(fields[2])
    pixels = data[pos + 1:]
    if len(pixels) != w * h:
        raise FormatError("PGM length does not match its size")
    return np.frombuffer(pixels, dtype=np.uint8).reshape(h, w)


def inputs(u8, model):
    """Bytes (n, ...) -> model inputs (n, input shape): byte / 255."""
    return (u8.astype(np.float64) / 255.0).reshape((-1,) + model.input_shape)


def loss(model, p, labels):
    """The mean loss of outputs p (B, K) against class labels (B)."""
    p = np.asarray(p, dtype=np.float64).reshape(len(labels), -1)
    t = np.zeros_like(p)
    t[np.arange(len(labels)), labels] = 1.0
    if model.loss == "mse":
        return float(np.mean(np.mean((p - t) ** 2, axis=1)))
    hi = np.float32(1.0) - XENT_EPSILON          # 1 - 2^-23, as float32
    c = np.clip(p, float(XENT_EPSILON), float(hi))
    return float(np.mean(-np.sum(t * np.log(c), axis=1)))


# ----------------------------------------------------------------- the tool

def _samples(path, first):
    """(name, index, uint8 sample) for an IDX images file or a PGM."""
    with open(path, "rb") as f:
        head = f.read(2)
    if head == b"P5":
        yield path, 0, read_pgm(path)
        return
    x = read_idx(path)
    for i in range(min(len(x), first) if first else len(x)):
        yield path, i, x[i]


def main(argv):
    args = argv[1:]
    first = 0
    if "--first" in args:
        i = args.index("--first")
        first = int(args[i + 1])
        del args[i:i + 2]
    if len(args) < 2 or args[0] not in ("info", "predict", "evaluate"):
        sys.stdout.write(__doc__)
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    cmd, model_path, files = args[0], args[1], args[2:]
    where = model_path
    try:
        m = load_model(model_path)
        if cmd == "info":
            print("input %s  loss %s  optimizer %s  steps %d%s" % (
                shape_str(m.input_shape), m.loss, m.optimizer["name"],
                m.steps, "  (with optimizer state)" if m.state1 is not None
                else ""))
            for l in m.layers:
                print(l.describe())
            return 0
        if cmd == "predict":
            for path in files:
                where = path
                for name, i, u8 in _samples(path, first):
                    p = m.predict(inputs(u8, m))[0].reshape(-1)
                    print(json.dumps({"file": name, "index": i,
                                      "digit": int(np.argmax(p)),
                                      "probabilities": [float(v) for v in p]}))
            return 0
        if len(files) != 2:
            sys.stderr.write("nn_reader: evaluate needs IMAGES and LABELS\n")
            return 2
        where = files[0]
        x = read_idx(files[0])
        where = files[1]
        y = read_idx(files[1])
        n = min(len(x), first) if first else len(x)
        if len(y) < n:
            raise FormatError("fewer labels than images")
        x, y = x[:n], y[:n].astype(np.int64)
        p = np.concatenate([m.predict(inputs(x[i:i + 256], m))
                            .reshape(min(256, n - i), -1)
                            for i in range(0, n, 256)])
        K = p.shape[1]
        pred = np.argmax(p, axis=1)
        cm = np.zeros((K, K), dtype=np.int64)
        np.add.at(cm, (y, pred), 1)
        print(json.dumps({"test_loss": loss(m, p, y),
                          "test_acc": float(np.mean(pred == y)), "n": n,
                          "confusion": cm.tolist()}))
        return 0
    except (FormatError, OSError, ValueError) as e:
        sys.stderr.write("nn_reader: %s: %s\n" % (where, e))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
