#!/bin/sh
# The reference reader, tools/nn_reader.py (Python + numpy, written from
# docs/model-format.md alone), against the tool, on the same MNIST test
# images: models trained by `digits train` (the mlp preset, the cnn preset,
# a spec with every layer kind, padding, stride and activation, and a
# checkpoint with optimizer state and training position) are run by
# `digits predict --raw --json` on 28x28 PGM files of test digits and by the
# reader on the same files: the same class for every image and every
# probability within 1e-5; `digits evaluate --json` and the reader's
# evaluate on an IDX subset (raw and gzip): the same confusion matrix and
# accuracy, test_loss within 1e-5. A model file written from the document
# by a third program (vector input, mean squared error, SGD state) is taken
# by the tool and run alike. Damaged files are refused by both.
# Needs python3 with numpy (scripts/install-deps installs python3-numpy);
# without it the test says SKIP. Without MNIST it uses random 28x28 data.
# Usage: DIGITS=build/digits sh tests/cli/reader.sh
# Ends with "reader: N passed, N failed"; exits non-zero if any failed.
set -u
. "$(dirname "$0")/lib.sh"
ROOT=$(pwd)
READER=$ROOT/tools/nn_reader.py

PY=
for p in ${PYTHON:-} python3 /usr/bin/python3; do
    if "$p" -c 'import numpy' >/dev/null 2>&1; then PY=$p; break; fi
done
if [ -z "$PY" ]; then
    echo "SKIP: reader test needs python3 with numpy (apt-get install python3-numpy)"
    exit 0
fi

# --- data: MNIST if present, else random 28x28 digits
N_PGM=100 N_EVAL=300
if [ -f "$MNIST/t10k-images-idx3-ubyte" ] || [ -f "$MNIST/t10k-images-idx3-ubyte.gz" ]; then
    DATA=$MNIST
else
    echo "note: no MNIST in $MNIST; random 28x28 data"
    DATA=$T/random
    "$PY" - "$DATA" <<'EOF' || bad "random data"
import os, struct, sys
import numpy as np
d = sys.argv[1]; os.makedirs(d)
rng = np.random.default_rng(1)
for s, n in (("train", 2000), ("t10k", 500)):
    with open(os.path.join(d, s + "-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">4I", 0x803, n, 28, 28))
        f.write((rng.random((n, 28, 28)) ** 4 * 255).astype(np.uint8).tobytes())
    with open(os.path.join(d, s + "-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">2I", 0x801, n) + bytes(i % 10 for i in range(n)))
EOF
fi
# the first test digits as PGM pictures and as a smaller IDX set (raw, gzip)
"$PY" - "$READER" "$DATA" "$T" "$N_PGM" "$N_EVAL" <<'EOF' || bad "test subsets"
import gzip, os, struct, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import nn_reader
data, t, n_pgm, n_eval = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
def find(name):
    p = os.path.join(data, name)
    return p if os.path.exists(p) else p + ".gz"
x = nn_reader.read_idx(find("t10k-images-idx3-ubyte"))
y = nn_reader.read_idx(find("t10k-labels-idx1-ubyte"))
os.makedirs(os.path.join(t, "pgm"))
for i in range(n_pgm):
    with open(os.path.join(t, "pgm", "%04d.pgm" % i), "wb") as f:
        f.write(b"P5\n28 28\n255\n" + x[i].tobytes())
for sub, opener in (("sub", open), ("subgz", gzip.open)):
    os.makedirs(os.path.join(t, sub))
    with opener(os.path.join(t, sub, "t10k-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">4I", 0x803, n_eval, 28, 28) + x[:n_eval].tobytes())
    with opener(os.path.join(t, sub, "t10k-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">2I", 0x801, n_eval) + y[:n_eval].tobytes())
EOF

# compare_predict NAME TOOL.jsonl READER.jsonl: same files in the same
# order, the same class (unless the reader's two best are within 2e-6, a
# tie at float32 precision) and every probability within 1e-5.
compare_predict() {
    if "$PY" - "$2" "$3" >"$T/cmp" 2>&1 <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) and len(a) > 0, "%d answers against %d" % (len(a), len(b))
worst = 0.0
for u, v in zip(a, b):
    assert u["file"] == v["file"], (u["file"], v["file"])
    p, q = u["probabilities"], v["probabilities"]
    assert len(p) == len(q), u["file"]
    d = max(abs(s - r) for s, r in zip(p, q))
    worst = max(worst, d)
    assert d <= 1e-5, "%s: probabilities differ by %g" % (u["file"], d)
    top = sorted(q, reverse=True)
    assert u["digit"] == v["digit"] or top[0] - top[1] < 2e-6, \
        "%s: tool says %d, reader %d" % (u["file"], u["digit"], v["digit"])
print("%d pictures, largest difference %.2g" % (len(a), worst))
EOF
    then ok; echo "  $1: $(cat "$T/cmp")"; else bad "$1 predict: $(tail -3 "$T/cmp")"; fi
}

# compare_eval NAME TOOL.json READER.json: the same n, accuracy and
# confusion matrix; test_loss within 1e-5 (the tool prints 6 decimals).
compare_eval() {
    if "$PY" - "$2" "$3" >"$T/cmp" 2>&1 <<'EOF'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert a["n"] == b["n"], (a["n"], b["n"])
assert a["confusion"] == b["confusion"], "confusion matrices differ"
assert abs(a["test_acc"] - b["test_acc"]) < 1e-6, (a["test_acc"], b["test_acc"])
assert abs(a["test_loss"] - b["test_loss"]) <= 1e-5, (a["test_loss"], b["test_loss"])
print("n %d, test_acc %.4f, test_loss %.6f / %.8f" % (a["n"], a["test_acc"], a["test_loss"], b["test_loss"]))
EOF
    then ok; echo "  $1: $(cat "$T/cmp")"; else bad "$1 evaluate: $(tail -3 "$T/cmp")"; fi
}

# check MODEL NAME: both ways of comparing
check() {
    expect_ok "$2: digits predict" "$DIGITS" predict --raw --json --model "$1" "$T"/pgm/*.pgm
    cp "$T/out" "$T/tool.jsonl"
    expect_ok "$2: reader predict" "$PY" "$READER" predict "$1" "$T"/pgm/*.pgm
    cp "$T/out" "$T/reader.jsonl"
    compare_predict "$2" "$T/tool.jsonl" "$T/reader.jsonl"
    for sub in sub subgz; do
        expect_ok "$2: digits evaluate" "$DIGITS" evaluate --json --model "$1" --data "$T/$sub"
        cp "$T/out" "$T/tool.json"
        expect_ok "$2: reader evaluate" "$PY" "$READER" evaluate "$1" \
            "$T/$sub/t10k-images-idx3-ubyte" "$T/$sub/t10k-labels-idx1-ubyte"
        cp "$T/out" "$T/reader.json"
        compare_eval "$2 ($sub)" "$T/tool.json" "$T/reader.json"
    done
}

train() { # OUT ARGS...: a short training run
    out=$1; shift
    expect_ok "train $(basename "$out")" "$DIGITS" train --data "$DATA" --epochs 1 --out "$out" "$@"
}

# --- the presets
train "$T/mlp.nn" --model mlp --limit 2000
check "$T/mlp.nn" mlp
train "$T/cnn.nn" --model cnn --limit 2000 --batch-size 32
check "$T/cnn.nn" cnn

# --- every layer kind: conv2d same with stride 2 (an odd total padding,
# 1, all at the bottom/right) and with an even kernel (4: a total of 3,
# 1 before and 2 after), valid conv2d, softmax over a conv's channels, both poolings with
# strides other than their size, batch norm on images and on vectors,
# dropout, flatten, and dense layers with every activation; then global
# average pooling and leaky ReLU
ALL="conv2d(16,3,relu,stride=2,padding=same) batchnorm(momentum=0.9)
 conv2d(16,4,tanh,padding=same) avgpool(3,stride=2) conv2d(16,3,relu,padding=same)
 maxpool(2,stride=1) conv2d(8,1,softmax) conv2d(8,2,sigmoid) maxpool(2) flatten dropout(0.2)
 dense(64,sigmoid) batchnorm(momentum=0.8) dense(32,tanh) dense(32,linear) dropout(0.1)
 dense(10,softmax)"
train "$T/all.nn" --model "$ALL" --optimizer adam --limit 3000 --batch-size 32
expect_ok "reader info" "$PY" "$READER" info "$T/all.nn"
for k in conv2d batch_normalization average_pooling2d max_pooling2d flatten dropout \
         dense relu sigmoid tanh linear softmax same valid; do
    grep -q "$k" "$T/out" && ok || bad "all-layers model lacks $k: $(cat "$T/out")"
done
check "$T/all.nn" all-layers
# global average pooling and leaky ReLU, on images and on vectors
GAP="conv2d(16,3,relu,stride=2) leakyrelu(0.1) conv2d(32,3,linear,padding=same)
 batchnorm(momentum=0.9) leakyrelu gap dense(32,linear) leakyrelu(0.2) dense(10,softmax)"
train "$T/gap.nn" --model "$GAP" --optimizer adam --lr 0.003 --limit 2000 --batch-size 16
expect_ok "reader info gap" "$PY" "$READER" info "$T/gap.nn"
for k in global_average_pooling2d "leaky_re_lu .*alpha=0.1" "leaky_re_lu .*alpha=0.3" "^leaky_re_lu *(32) "; do
    grep -q "$k" "$T/out" && ok || bad "gap model lacks $k: $(cat "$T/out")"
done
check "$T/gap.nn" gap-leakyrelu
# plain SGD
train "$T/sgd.nn" --model "dense(64,tanh) dense(10,softmax)" --optimizer sgd --limit 1000
check "$T/sgd.nn" sgd

# --- a checkpoint (optimizer state and training position): interrupt a
# long run after its first epoch (bounded by timeout, and stopped if this
# script is)
timeout 300 "$DIGITS" train --data "$DATA" --model "dense(32,relu) dense(10,softmax)" \
    --optimizer adam --limit 500 --epochs 100000 --out "$T/long.nn" --checkpoint "$T/ck.nn" \
    --checkpoint-every 0 \
    >"$T/ck.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
i=0
while [ ! -f "$T/ck.nn" ] && [ $i -lt 600 ] && kill -0 $pid 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -TERM $pid 2>/dev/null
wait $pid
rc=$?
trap 'rm -rf "$T"' EXIT
[ $rc -eq 143 ] && [ -f "$T/ck.nn" ] && ok || bad "interrupted training: exit $rc, $(tail -2 "$T/ck.log")"
if "$PY" - "$READER" "$T/ck.nn" >"$T/cmp" 2>&1 <<'EOF'
import os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import nn_reader
m = nn_reader.load_model(sys.argv[2])
assert m.optimizer["name"] == "adam" and m.steps > 0, (m.optimizer, m.steps)
assert m.state1 is not None and abs(m.state1).max() > 0 and m.state2.min() >= 0
assert abs(m.state2).max() > 0, "adam's second moments are all zero"
p = m.position
assert p and p["epoch"] >= 1 and len(p["history"]) == p["epoch"], p
print("steps %d, epoch %d" % (m.steps, p["epoch"]))
EOF
then ok; else bad "checkpoint read: $(tail -3 "$T/cmp")"; fi
check "$T/ck.nn" checkpoint

# --- the other way round: a file written from the document by a third
# program (a vector input, batch norm on vectors, a sigmoid output, mean
# squared error, SGD with Nesterov momentum and its state, input
# normalisation) is taken by the
# tool, and both run it alike
if "$PY" - "$T/written.nn" <<'EOF'
import struct, sys, zlib
import numpy as np
rng = np.random.default_rng(7)
layers = [  # kind, activation, units, kernel, stride, padding, rate, params
    (1, 3, 16, 0, 0, 0, 0.0, [rng.normal(0, 0.05, (784, 16)), rng.normal(0, 0.1, 16)]),
    (7, 0, 0, 0, 0, 0, 0.99, [rng.uniform(0.5, 2, 16), rng.normal(0, 0.5, 16),
                              rng.normal(0, 0.3, 16), rng.uniform(0.2, 3, 16)]),
    (1, 2, 10, 0, 0, 0, 0.0, [rng.normal(0, 0.5, (16, 10)), rng.normal(0, 0.1, 10)]),
]
params = np.concatenate([a.ravel() for l in layers for a in l[7]]).astype("<f4")
n = len(params)
state = np.concatenate([rng.normal(0, 0.01, n), np.zeros(n)]).astype("<f4")
b = bytearray(b"DIGITSNN")
b += struct.pack("<3I3I4I2Q", 1, 5, 1, 784, 1, 1, len(layers), 3, 1, 1, n, 7)
for k, a, u, ke, st, pa, r, ps in layers:
    b += struct.pack("<6IfIQ", k, a, u, ke, st, pa, r, 0, sum(x.size for x in ps))
b += struct.pack("<6f", 0.01, 0.9, 0, 0, 0, 0)
b += params.tobytes() + state.tobytes()
b += struct.pack("<2f", 0.1307, 0.3081)     # flag bit 2: input normalisation
b += struct.pack("<I", zlib.crc32(bytes(b)))
open(sys.argv[1], "wb").write(bytes(b))
EOF
then ok; else bad "writing a model file"; fi
expect_ok "tool reads a written file" "$DIGITS" summary --model "$T/written.nn"
grep -q "batch_normalization" "$T/out" && ok || bad "summary of the written file: $(cat "$T/out")"
check "$T/written.nn" written

# --- damaged files: both refuse them
cp "$T/mlp.nn" "$T/bad.nn"
printf 'X' | dd of="$T/bad.nn" bs=1 seek=5000 conv=notrunc 2>/dev/null
expect_fail "tool: damaged" "checksum" "$DIGITS" summary --model "$T/bad.nn"
"$PY" "$READER" info "$T/bad.nn" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && grep -q "checksum" "$T/err" && ok || bad "reader took a damaged file: $(cat "$T/err")"
head -c 3000 "$T/mlp.nn" >"$T/short.nn"
"$PY" "$READER" info "$T/short.nn" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && ok || bad "reader took a truncated file: $(cat "$T/err")"
cp "$T/mlp.nn" "$T/magic.nn"
printf 'X' | dd of="$T/magic.nn" bs=1 seek=0 conv=notrunc 2>/dev/null
"$PY" "$READER" info "$T/magic.nn" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && grep -q "magic" "$T/err" && ok || bad "reader took a bad magic: $(cat "$T/err")"

# --- predict --raw takes only what it can use as it is
printf 'P5\n20 28\n255\n' >"$T/narrow.pgm"; head -c 560 /dev/zero >>"$T/narrow.pgm"
# and answers every picture (no ink is measured, so no "not a digit")
printf 'P5\n28 28\n255\n' >"$T/noise.pgm"; head -c 784 /dev/urandom >>"$T/noise.pgm"
expect_ok "raw: noise" "$DIGITS" predict --raw --json --model "$T/mlp.nn" "$T/noise.pgm"
grep -Eq '"digit": [0-9],.*"not_digit": null' "$T/out" && ok || bad "raw noise: $(cat "$T/out")"
expect_fail "raw: wrong size" "narrow.pgm: --raw needs a 28x28 picture, got 20x28" \
    "$DIGITS" predict --raw --model "$T/mlp.nn" "$T/narrow.pgm"

finish reader
