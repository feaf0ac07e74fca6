#!/usr/bin/python3
"""Makes the ONNX fixtures in tests/onnx/fixtures from outside digits.

  torch_mlp.onnx   the seed's network (Dense 512 relu, Dense 10 softmax),
                   trained in PyTorch on pixel/255, exported by
                   torch.onnx.export (Gemm, Relu, Softmax)
  torch_cnn.onnx   a small CNN trained on Normalize((0.1307,), (0.3081,)):
                   Conv, Relu, MaxPool2d, Conv, Relu, AvgPool2d (PyTorch
                   writes a zero Pad before it), Flatten, Linear,
                   LogSoftmax; NCHW input (N, 1, 28, 28)
  keras_cnn.onnx   the same CNN's weights in the shape tf2onnx gives a
                   Keras model: NHWC input (N, 28, 28, 1), Transpose
                   nodes, Reshape, MatMul + Add, Softmax (onnx.helper)
  *.json           PyTorch's test accuracy (all 10,000 MNIST test images)
                   and probabilities of the first 500, as float32 hex

Run with /usr/bin/python3 (Debian's python3-torch 1.13, python3-onnx) from
the repository root: tests/onnx/make_fixtures.py [MNIST_DIR]. Seeded;
CPU; about a minute on two cores.
"""
import gzip, json, os, struct, sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
import torch
import torch.nn as nn

torch.manual_seed(1)
torch.set_num_threads(2)
np.random.seed(1)

mnist = sys.argv[1] if len(sys.argv) > 1 else "data/mnist"
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
os.makedirs(out, exist_ok=True)
N_PROBS = 500


def idx(name):
    p = os.path.join(mnist, name)
    op = open
    if not os.path.exists(p):
        p, op = p + ".gz", gzip.open
    with op(p, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    rank = magic & 0xff
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(dims)


xtr = torch.tensor(idx("train-images-idx3-ubyte"), dtype=torch.float32) / 255
ytr = torch.tensor(idx("train-labels-idx1-ubyte"), dtype=torch.long)
xte = torch.tensor(idx("t10k-images-idx3-ubyte"), dtype=torch.float32) / 255
yte = torch.tensor(idx("t10k-labels-idx1-ubyte"), dtype=torch.long)
MEAN, STD = 0.1307, 0.3081


def train(model, prep, epochs, lr):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 128):
            b = perm[i:i + 128]
            opt.zero_grad()
            out_ = model(prep(xtr[b]))
            # both models' outputs are log-probabilities or probabilities
            loss = nn.functional.nll_loss(
                out_ if out_.max() <= 0 else torch.log(out_ + 1e-12), ytr[b])
            loss.backward()
            opt.step()
    model.eval()


def probs(model, prep, x):
    with torch.no_grad():
        o = model(prep(x))
        return (o.exp() if o.max() <= 0 else o).numpy().astype(np.float32)


def record(name, p, extra):
    acc = float((p.argmax(1) == yte.numpy()).mean())
    head = p[:N_PROBS].astype("<f4").tobytes().hex()
    info = {"test_acc": acc, "n_probs": N_PROBS, "probs_f32_hex": head}
    info.update(extra)
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(info, f)
    print(name, "test_acc %.4f" % acc)


# -- the seed's MLP on pixel/255 --------------------------------------------
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 512)
        self.fc2 = nn.Linear(512, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return torch.softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)


mlp = MLP()
flat = lambda x: x.reshape(-1, 784)
train(mlp, flat, 2, 1e-3)
torch.onnx.export(mlp, torch.zeros(1, 784), os.path.join(out, "torch_mlp.onnx"),
                  input_names=["input"], output_names=["probabilities"],
                  dynamic_axes={"input": {0: "N"}, "probabilities": {0: "N"}},
                  opset_version=13)
record("torch_mlp", probs(mlp, flat, xte), {"input": "pixel/255, (N, 784)"})


# -- a small CNN on Normalize((0.1307,), (0.3081,)) -------------------------
class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3)
        self.pool1 = nn.MaxPool2d(2)
        self.c2 = nn.Conv2d(8, 16, 3, padding=1)
        self.pool2 = nn.AvgPool2d(2)
        self.fc = nn.Linear(16 * 6 * 6, 10)

    def forward(self, x):
        x = self.pool1(torch.relu(self.c1(x)))
        x = self.pool2(torch.relu(self.c2(x)))
        return torch.log_softmax(self.fc(torch.flatten(x, 1)), dim=1)


cnn = CNN()
norm = lambda x: ((x - MEAN) / STD).reshape(-1, 1, 28, 28)
train(cnn, norm, 1, 2e-3)
torch.onnx.export(cnn, torch.zeros(1, 1, 28, 28),
                  os.path.join(out, "torch_cnn.onnx"),
                  input_names=["input"], output_names=["log_probabilities"],
                  dynamic_axes={"input": {0: "N"},
                                "log_probabilities": {0: "N"}},
                  opset_version=13)
pc = probs(cnn, norm, xte)
record("torch_cnn", pc, {"input": "(pixel/255 - 0.1307) / 0.3081, NCHW",
                         "normalize": [MEAN, STD]})

# -- the same CNN as tf2onnx writes a Keras model ----------------------------
sd = {k: v.detach().numpy() for k, v in cnn.state_dict().items()}
C, H, W = 16, 6, 6
# Keras flattens (H, W, C): reorder the Linear weights' inputs to match
fcw = sd["fc.weight"].reshape(10, C, H, W).transpose(0, 2, 3, 1).reshape(10, -1)
init = [
    numpy_helper.from_array(sd["c1.weight"], "conv1/kernel"),
    numpy_helper.from_array(sd["c1.bias"], "conv1/bias"),
    numpy_helper.from_array(sd["c2.weight"], "conv2/kernel"),
    numpy_helper.from_array(sd["c2.bias"], "conv2/bias"),
    numpy_helper.from_array(np.array([-1, C * H * W], np.int64), "flat/shape"),
    numpy_helper.from_array(np.ascontiguousarray(fcw.T), "dense/kernel"),
    numpy_helper.from_array(sd["fc.bias"], "dense/bias"),
]
nodes = [
    helper.make_node("Transpose", ["input"], ["t0"], "input_T", perm=[0, 3, 1, 2]),
    helper.make_node("Conv", ["t0", "conv1/kernel", "conv1/bias"], ["t1"],
                     "conv1", kernel_shape=[3, 3], strides=[1, 1],
                     pads=[0, 0, 0, 0], dilations=[1, 1]),
    helper.make_node("Relu", ["t1"], ["t2"], "conv1/Relu"),
    helper.make_node("MaxPool", ["t2"], ["t3"], "pool1", kernel_shape=[2, 2],
                     strides=[2, 2]),
    helper.make_node("Conv", ["t3", "conv2/kernel", "conv2/bias"], ["t4"],
                     "conv2", kernel_shape=[3, 3], strides=[1, 1],
                     pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["t4"], ["t5"], "conv2/Relu"),
    helper.make_node("AveragePool", ["t5"], ["t6"], "pool2",
                     kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node("Transpose", ["t6"], ["t7"], "pool2_T", perm=[0, 2, 3, 1]),
    helper.make_node("Reshape", ["t7", "flat/shape"], ["t8"], "flatten"),
    helper.make_node("MatMul", ["t8", "dense/kernel"], ["t9"], "dense/MatMul"),
    helper.make_node("Add", ["t9", "dense/bias"], ["t10"], "dense/BiasAdd"),
    helper.make_node("Softmax", ["t10"], ["dense"], "dense/Softmax", axis=-1),
]
g = helper.make_graph(
    nodes, "keras_cnn",
    [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 28, 28, 1])],
    [helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["N", 10])],
    init)
km = helper.make_model(g, producer_name="tf2onnx-shaped (onnx.helper)",
                       opset_imports=[helper.make_opsetid("", 13)])
km.ir_version = 7
onnx.checker.check_model(km, full_check=True)
onnx.save(km, os.path.join(out, "keras_cnn.onnx"))
record("keras_cnn", pc, {"input": "(pixel/255 - 0.1307) / 0.3081, NHWC",
                         "normalize": [MEAN, STD]})
