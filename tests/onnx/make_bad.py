#!/usr/bin/python3
"""Writes hostile and unsupported ONNX files into DIR for tests/cli/onnx.sh.
Each NAME.onnx comes with the pattern its one-line error must match, in
DIR/NAME.want; ok-NAME.onnx files are valid graphs digits must read (and
match onnxruntime on). Usage: /usr/bin/python3 tests/onnx/make_bad.py DIR"""
import os, sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

d = sys.argv[1]
os.makedirs(d, exist_ok=True)
rng = np.random.default_rng(1)


def save(name, model, want, raw=None):
    with open(os.path.join(d, name + ".onnx"), "wb") as f:
        f.write(raw if raw is not None else model.SerializeToString())
    with open(os.path.join(d, name + ".want"), "w") as f:
        f.write(want + "\n")


def mlp(nodes=None, inits=None, inputs=None, opset=13, out="y"):
    w = numpy_helper.from_array(rng.standard_normal((784, 10)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(10, np.float32), "b")
    nodes = nodes or [helper.make_node("Gemm", ["x", "w", "b"], ["g"], "fc"),
                      helper.make_node("Softmax", ["g"], ["y"], "sm", axis=1)]
    g = helper.make_graph(
        nodes, "bad",
        inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 10])],
        inits if inits is not None else [w, b])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    return m


good = mlp()
save("good", good, "")
raw = good.SerializeToString()
save("truncated", None, "not an ONNX model|does not decode|the shape holds",
     raw=raw[:len(raw) // 2])
save("garbage", None, "not an ONNX model", raw=b"\x08\x07\x12\xff\xff\xff\xff\x0f" + b"x" * 40)

# an op we do not have, anywhere in the graph
save("unsupported", mlp(nodes=[
    helper.make_node("Gemm", ["x", "w", "b"], ["g"], "fc"),
    helper.make_node("Sin", ["g"], ["y"], "weird")]),
    r"node 'weird' \(Sin\): unsupported op")
save("custom-domain", mlp(nodes=[
    helper.make_node("Gemm", ["x", "w", "b"], ["g"], "fc"),
    helper.make_node("Relu", ["g"], ["y"], "myrelu", domain="com.example")]),
    r"node 'myrelu' \(Relu\): unsupported op in domain com.example")
save("grouped-conv", mlp(nodes=[
    helper.make_node("Reshape", ["x", "s"], ["r"], "rs"),
    helper.make_node("Conv", ["r", "cw"], ["c"], "conv", group=2),
    helper.make_node("Flatten", ["c"], ["y"], "fl")], inits=[
    numpy_helper.from_array(np.array([-1, 2, 14, 28], np.int64), "s"),
    numpy_helper.from_array(np.zeros((2, 1, 3, 3), np.float32), "cw")]),
    r"node 'conv' \(Conv\): grouped convolutions are not supported")
save("leakyrelu", mlp(nodes=[
    helper.make_node("Gemm", ["x", "w", "b"], ["g"], "fc"),
    helper.make_node("LeakyRelu", ["g"], ["y"], "lrelu", alpha=1.5)]),
    r"node 'lrelu' \(LeakyRelu\): alpha must be in \[0, 1\)")

# a Sigmoid after BatchNormalization: no layer to carry it
bn = [numpy_helper.from_array(np.ones(10, np.float32), n) for n in ("s", "bb", "mu", "var")]
save("sigmoid-after-bn", mlp(nodes=[
    helper.make_node("Gemm", ["x", "w", "b"], ["g"], "fc"),
    helper.make_node("BatchNormalization", ["g", "s", "bb", "mu", "var"], ["n"], "bn"),
    helper.make_node("Sigmoid", ["n"], ["y"], "sig")], inits=[
    numpy_helper.from_array(np.zeros((784, 10), np.float32), "w"),
    numpy_helper.from_array(np.zeros(10, np.float32), "b")] + bn),
    r"node 'sig' \(Sigmoid\): can only follow a Gemm")

# wrong types: an int64 input, double weights
save("int-input", mlp(inputs=[helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 784])]),
     "input 'x': must be a float tensor")
save("double-weights", mlp(inits=[
    numpy_helper.from_array(np.zeros((784, 10), np.float64), "w"),
    numpy_helper.from_array(np.zeros(10, np.float32), "b")]),
    r"node 'fc' \(Gemm\): tensor 'w': data type 11")

# a cycle: g feeds h feeds the Gemm again
save("cycle", mlp(nodes=[
    helper.make_node("Add", ["x", "h"], ["a"], "add"),
    helper.make_node("Gemm", ["a", "w", "b"], ["g"], "fc"),
    helper.make_node("Identity", ["g"], ["h"], "back"),
    helper.make_node("Softmax", ["g"], ["y"], "sm")]),
    "branches|cycle|only supported as the bias")
save("cycle2", mlp(nodes=[
    helper.make_node("Gemm", ["x", "w", "b"], ["g"], "fc"),
    helper.make_node("Identity", ["g"], ["h"], "id1"),
    helper.make_node("Identity", ["h"], ["g"], "id2"),
    helper.make_node("Softmax", ["g"], ["y"], "sm")]),
    r"node 'id2' \(Identity\): value 'g' is written by two nodes")
save("branch", mlp(nodes=[
    helper.make_node("Gemm", ["x", "w", "b"], ["g"], "fc"),
    helper.make_node("Relu", ["g"], ["y"], "r1"),
    helper.make_node("Sigmoid", ["g"], ["z"], "r2")]),
    "the graph branches")

# a shape that lies: dims say 784 x 10, the data holds 784 x 9
lie = numpy_helper.from_array(np.zeros((784, 9), np.float32), "w")
del lie.dims[:]
lie.dims.extend([784, 10])
save("shape-lies", mlp(inits=[lie, numpy_helper.from_array(np.zeros(10, np.float32), "b")]),
     "tensor 'w': its shape holds 7840 values but its data does not")
# a tensor claiming 2^40 elements (with almost no data)
huge = numpy_helper.from_array(np.zeros(4, np.float32), "w")
del huge.dims[:]
huge.dims.extend([1 << 20, 1 << 20])
save("huge-tensor", mlp(inits=[huge, numpy_helper.from_array(np.zeros(10, np.float32), "b")]),
     "tensor 'w': its shape claims more than")
# weights stored in an external file
ext = numpy_helper.from_array(np.zeros((784, 10), np.float32), "w")
ext.ClearField("raw_data")
ext.data_location = TensorProto.EXTERNAL
e = ext.external_data.add()
e.key, e.value = "location", "../../etc/passwd"
save("external-data", mlp(inits=[ext, numpy_helper.from_array(np.zeros(10, np.float32), "b")]),
     "tensor 'w': external data files are not supported")
# an input that lies about its size
save("input-lies", mlp(inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 100])]),
     r"node 'fc' \(Gemm\): weights \(784, 10\) do not fit 100")
save("old-opset", mlp(opset=3), "ONNX opset 3 is not supported")
# nested 100 deep: attributes holding graphs holding nodes...
inner = helper.make_graph([], "g0", [], [])
for i in range(100):
    n = helper.make_node("If", [], [], "n%d" % i, then_branch=inner)
    inner = helper.make_graph([n], "g%d" % (i + 1), [], [])
save("deep", mlp(nodes=[
    helper.make_node("Gemm", ["x", "w", "b"], ["g"], "fc"),
    helper.make_node("If", ["g"], ["y"], "deep", then_branch=inner, else_branch=inner)]),
    "nested more than 32 deep")
# valid: PyTorch's Conv -> BatchNormalization -> Relu, a (N, 784) input
# reshaped to NCHW, four channels flattened in NCHW order
k = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.3
bnp = [numpy_helper.from_array(v, n) for v, n in (
    (1 + k(4), "bn_s"), (k(4), "bn_b"), (k(4), "bn_m"), (0.5 + np.abs(k(4)), "bn_v"))]
ok = helper.make_graph([
    helper.make_node("Reshape", ["x", "shape"], ["r"], "reshape"),
    helper.make_node("Conv", ["r", "cw", "cb"], ["c"], "conv", kernel_shape=[3, 3]),
    helper.make_node("BatchNormalization", ["c", "bn_s", "bn_b", "bn_m", "bn_v"], ["n"], "bn",
                     epsilon=1e-5),
    helper.make_node("Relu", ["n"], ["a"], "relu"),
    helper.make_node("MaxPool", ["a"], ["p"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node("Flatten", ["p"], ["f"], "flatten"),
    helper.make_node("Gemm", ["f", "fw", "fb"], ["g"], "fc", transB=1, alpha=0.5),
    helper.make_node("Softmax", ["g"], ["y"], "softmax", axis=1)], "ok",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 784])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
    [numpy_helper.from_array(np.array([-1, 1, 28, 28], np.int64), "shape"),
     numpy_helper.from_array(k(4, 1, 3, 3), "cw"), numpy_helper.from_array(k(4), "cb"),
     numpy_helper.from_array(k(10, 676) * 0.2, "fw"), numpy_helper.from_array(k(10), "fb")] + bnp)
okm = helper.make_model(ok, opset_imports=[helper.make_opsetid("", 14)])
okm.ir_version = 7
onnx.checker.check_model(okm, full_check=True)
save("ok-bn-relu", okm, "")
print("make_bad: wrote", len([f for f in os.listdir(d) if f.endswith(".onnx")]), "files")
