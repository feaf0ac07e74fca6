#!/bin/sh
# CLI tests for ONNX in and out (docs/onnx.md):
#  - round trip: the mlp and cnn presets and a model with every layer kind
#    and activation, exported with export-onnx, pass onnx.checker's full
#    check and run in onnxruntime (npm onnxruntime-node, installed by
#    scripts/install-onnxruntime) with the same class for every MNIST test
#    image and probabilities within 1e-5; read back by digits, bit-identical
#  - files from outside (tests/onnx/fixtures, made by make_fixtures.py):
#    PyTorch's MLP and CNN (Pad before AveragePool, LogSoftmax) and a
#    tf2onnx-shaped CNN reproduce PyTorch's test accuracy to 4 decimals and
#    its probabilities within 1e-5; predict works on PyTorch's file;
#    train --init fine-tunes one
#  - hostile and unsupported files (tests/onnx/make_bad.py): exit 1 and one
#    line naming what is wrong, under a 2 GiB address-space limit
# (Variables of our own avoid lib.sh's `name` and `pat`.)
# Usage: DIGITS=build/digits ONNX_PROBS=build/tests/onnx/onnx_probs \
#        sh tests/cli/onnx.sh
# Ends with "N passed, N failed"; exits non-zero if any failed.
set -u
. "$(dirname "$0")/lib.sh"
ROOT=$(pwd)
PY=/usr/bin/python3
FIX=$ROOT/tests/onnx/fixtures
PROBS=${ONNX_PROBS:-build/tests/onnx/onnx_probs}
case $PROBS in /*) ;; *) PROBS=$ROOT/$PROBS ;; esac
ORT_DIR=${ORT_DIR:-$ROOT/build-npm}
N=${ONNX_TEST_IMAGES:-2000}

if ! "$ROOT/scripts/install-onnxruntime" "$ORT_DIR" >"$T/npm.log" 2>&1; then
    bad "install-onnxruntime: $(tail -3 "$T/npm.log")"
fi
export NODE_PATH="$ORT_DIR/node_modules"
ort() { node "$ROOT/tests/onnx/ort_run.js" "$@" >>"$T/ort.log" 2>&1 || { bad "ort_run $1: $(tail -2 "$T/ort.log")"; return 1; }; }
compare() { # A B TOL LABEL
    if node "$ROOT/tests/onnx/compare.js" "$1" "$2" 10 "$3" "$4" >"$T/cmp" 2>&1; then ok
    else bad "$(cat "$T/cmp")"; fi
    cat "$T/cmp"
}
checker() {
    if "$PY" -c "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)" "$1" 2>"$T/chk"; then ok
    else bad "onnx.checker $1: $(tail -1 "$T/chk")"; fi
}

# --- data: MNIST's test images (CI fetches them), else a random stand-in
if [ -f "$MNIST/t10k-images-idx3-ubyte" ]; then
    D=$MNIST real=1
else
    echo "onnx.sh: no MNIST in $MNIST: random images; accuracy checks skipped"
    real=0
    D=$T/data; mkdir -p "$D"
    # 200 random images and labels, train and test alike
    "$PY" -c "
import os, struct, sys
d = sys.argv[1]
img = struct.pack('>IIII', 0x803, 200, 28, 28) + os.urandom(200 * 784)
lab = struct.pack('>II', 0x801, 200) + bytes(i % 10 for i in range(200))
for s in ('train', 't10k'):
    open(os.path.join(d, s + '-images-idx3-ubyte'), 'wb').write(img)
    open(os.path.join(d, s + '-labels-idx1-ubyte'), 'wb').write(lab)" "$D"
fi
IMG=$D/t10k-images-idx3-ubyte

# --- round trip: digits -> ONNX -> onnxruntime, and back into digits
EVERY="conv2d(4,3,relu,padding=same) batchnorm maxpool(2) conv2d(6,3,padding=same,stride=2) leakyrelu(0.2) conv2d(6,3,tanh) avgpool(2,stride=1) dropout(0.2) flatten dense(32,sigmoid) batchnorm dense(16) leakyrelu dropout(0.1) dense(10,softmax)"
GAP="conv2d(8,3,relu) maxpool(2) conv2d(16,3,relu) gap dense(10,softmax)"
roundtrip() { # NAME SPEC LIMIT
    expect_ok "train $1" "$DIGITS" train --data "$D" --model "$2" --epochs 1 --limit "$3" --out "$T/$1.nn" --seed 3
    expect_ok "export-onnx $1" "$DIGITS" export-onnx --model "$T/$1.nn" --out "$T/$1.onnx"
    grep -q "opset 13" "$T/out" && ok || bad "export-onnx $1: $(cat "$T/out")"
    checker "$T/$1.onnx"
    expect_ok "probs $1.nn" "$PROBS" "$T/$1.nn" "$IMG" "$N" "$T/$1.nn.f32"
    ort "$T/$1.onnx" "$IMG" "$N" 28,28,1 "$T/$1.ort.f32" &&
        compare "$T/$1.nn.f32" "$T/$1.ort.f32" 1e-5 "$1: digits vs onnxruntime"
    # read back: the same layers and weights, the same bits
    expect_ok "probs $1.onnx" "$PROBS" "$T/$1.onnx" "$IMG" "$N" "$T/$1.back.f32"
    cmp -s "$T/$1.nn.f32" "$T/$1.back.f32" && ok || bad "$1: read back, predictions differ"
    expect_ok "import-onnx $1" "$DIGITS" import-onnx "$T/$1.onnx" --out "$T/$1.back.nn"
    expect_ok "evaluate $1.nn" "$DIGITS" evaluate --data "$D" --model "$T/$1.nn"
    head -2 "$T/out" >"$T/ev.nn"
    expect_ok "evaluate $1.back.nn" "$DIGITS" evaluate --data "$D" --model "$T/$1.back.nn"
    head -2 "$T/out" | cmp -s - "$T/ev.nn" && ok || bad "$1: evaluate differs after import"
    expect_ok "evaluate $1.onnx" "$DIGITS" evaluate --data "$D" --model "$T/$1.onnx"
    head -2 "$T/out" | cmp -s - "$T/ev.nn" && ok || bad "$1: evaluate differs on the .onnx"
}
roundtrip mlp mlp 2000
roundtrip cnn cnn 1000
roundtrip every "$EVERY" 1000
roundtrip gap "$GAP" 1000

# a vector-input model with input normalisation: PyTorch's MLP imported
# with one, exported (Sub, Div in the graph), run in onnxruntime
expect_ok "import normalised" "$DIGITS" import-onnx "$FIX/torch_mlp.onnx" --normalize 0.02,0.9 --out "$T/norm.nn"
expect_ok "export normalised" "$DIGITS" export-onnx --model "$T/norm.nn" --out "$T/norm.onnx"
checker "$T/norm.onnx"
expect_ok "probs norm.nn" "$PROBS" "$T/norm.nn" "$IMG" "$N" "$T/norm.nn.f32"
ort "$T/norm.onnx" "$IMG" "$N" 784 "$T/norm.ort.f32" &&
    compare "$T/norm.nn.f32" "$T/norm.ort.f32" 1e-5 "normalised mlp: digits vs onnxruntime"
expect_ok "probs norm.onnx" "$PROBS" "$T/norm.onnx" "$IMG" "$N" "$T/norm.back.f32"
cmp -s "$T/norm.nn.f32" "$T/norm.back.f32" && ok || bad "normalised mlp: read back, predictions differ"

# --- files from outside: PyTorch's own exports and a tf2onnx-shaped graph
fixture() { # NAME SHAPE [MEAN STD]
    fx=$1 shape=$2; shift 2
    "$PY" -c "
import json, sys
j = json.load(open(sys.argv[1]))
open(sys.argv[2], 'wb').write(bytes.fromhex(j['probs_f32_hex']))
print('%.4f' % j['test_acc'])" "$FIX/$fx.json" "$T/$fx.ref.f32" >"$T/$fx.acc"
    n=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['n_probs'])" "$FIX/$fx.json")
    expect_ok "probs $fx" "$PROBS" "$FIX/$fx.onnx" "$IMG" "$n" "$T/$fx.f32" "$@"
    compare "$T/$fx.ref.f32" "$T/$fx.f32" 1e-5 "$fx: PyTorch vs digits"
    ortn=""; [ $# -eq 2 ] && ortn="--norm $1,$2"
    exp=""; [ "$fx" = torch_cnn ] && exp=--exp
    # shellcheck disable=SC2086
    ort "$FIX/$fx.onnx" "$IMG" "$n" "$shape" "$T/$fx.ort.f32" $ortn $exp &&
        compare "$T/$fx.ref.f32" "$T/$fx.ort.f32" 1e-5 "$fx: PyTorch vs onnxruntime"
    if [ $# -eq 2 ]; then
        expect_ok "import $fx" "$DIGITS" import-onnx "$FIX/$fx.onnx" --normalize "$1,$2" --out "$T/$fx.nn"
        model=$T/$fx.nn
    else
        model=$FIX/$fx.onnx
    fi
    if [ $real = 1 ]; then
        expect_ok "evaluate $fx" "$DIGITS" evaluate --data "$D" --model "$model"
        want=$(cat "$T/$fx.acc")
        grep -q "^test_acc: $want\$" "$T/out" && ok ||
            bad "$fx: $(grep test_acc "$T/out"), PyTorch's test_acc $want"
        echo "$fx: PyTorch test_acc $want, digits $(grep test_acc "$T/out")"
    fi
}
fixture torch_mlp 784
fixture torch_cnn 1,28,28 0.1307 0.3081
fixture keras_cnn 28,28,1 0.1307 0.3081

# predict on PyTorch's file, with a test digit as a picture (a PGM)
if [ $real = 1 ]; then
    { printf 'P5\n28 28\n255\n'; dd if="$IMG" bs=1 skip=16 count=784 2>/dev/null; } >"$T/my7.pgm"
    expect_ok "predict on torch_mlp.onnx" "$DIGITS" predict --model "$FIX/torch_mlp.onnx" "$T/my7.pgm"
    grep -q "my7.pgm: 7 " "$T/out" && ok || bad "predict my7.pgm: $(cat "$T/out")"
fi
expect_ok "summary .onnx" "$DIGITS" summary --model "$FIX/keras_cnn.onnx"
grep -q "Total params: 7,018" "$T/out" && ok || bad "summary keras_cnn: $(tail -4 "$T/out")"

# fine-tuning from PyTorch's weights: starts where PyTorch ended
expect_ok "train --init" "$DIGITS" train --data "$D" --init "$T/torch_cnn.nn" --epochs 1 --limit 2000 --optimizer adam --lr 1e-4 --out "$T/tuned.nn"
if [ $real = 1 ]; then
    acc=$(sed -n 's/^test_acc: //p' "$T/out")
    "$PY" -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0.95 else 1)" "$acc" && ok ||
        bad "train --init: test_acc $acc, not near PyTorch's"
fi
expect_ok "train --init .onnx" "$DIGITS" train --data "$D" --init "$FIX/torch_mlp.onnx" --epochs 1 --limit 500 --out "$T/tuned2.nn"
expect_fail "train --init --resume" "--init: not with --resume" "$DIGITS" train --init x.nn --resume

# old model files still load; the normalisation is kept in new ones
expect_ok "summary of a normalised model" "$DIGITS" summary --model "$T/norm.nn"
expect_ok "evaluate a normalised model" "$DIGITS" evaluate --data "$D" --model "$T/norm.nn"

# --- hostile and unsupported files: exit 1, one line, bounded memory
"$PY" "$ROOT/tests/onnx/make_bad.py" "$T/bad" >/dev/null || bad "make_bad.py failed"
# the address-space limit, where the build allows one (ASan's shadow
# memory does not fit in it: sanitizer builds run without)
limit="ulimit -v 2097152;"
sh -c "$limit"' exec "$@"' sh "$DIGITS" --version >/dev/null 2>&1 || limit=""
for f in "$T"/bad/*.onnx; do
    bn=$(basename "$f" .onnx)
    case $bn in good|ok-*) continue ;; esac
    want=$(cat "$T/bad/$bn.want")
    expect_fail "refuse $bn" "$bn.onnx: .*($want)" sh -c "$limit"' exec "$@"' sh "$DIGITS" import-onnx "$f" --out "$T/bad.nn"
    expect_fail "evaluate $bn" "$bn.onnx: " sh -c "$limit"' exec "$@"' sh "$DIGITS" evaluate --data "$D" --model "$f"
done
# larger than NN_MAX_ONNX_BYTES (a sparse file): refused before reading
truncate -s 1100M "$T/bad/huge-file.onnx"
expect_fail "refuse huge-file" "huge-file.onnx: larger than the limit" sh -c "$limit"' exec "$@"' sh "$DIGITS" import-onnx "$T/bad/huge-file.onnx" --out "$T/bad.nn"
rm -f "$T/bad/huge-file.onnx"
[ -e "$T/bad.nn" ] && bad "a refused import wrote its output" || ok
# the valid ones: read, and the same answers as onnxruntime
for f in "$T"/bad/ok-*.onnx; do
    bn=$(basename "$f" .onnx)
    expect_ok "import $bn" "$DIGITS" import-onnx "$f" --out "$T/$bn.nn"
    expect_ok "probs $bn" "$PROBS" "$f" "$IMG" "$N" "$T/$bn.f32"
    ort "$f" "$IMG" "$N" 784 "$T/$bn.ort.f32" &&
        compare "$T/$bn.ort.f32" "$T/$bn.f32" 1e-5 "$bn: onnxruntime vs digits"
done
expect_ok "import the good one" "$DIGITS" import-onnx "$T/bad/good.onnx" --out "$T/good.nn"
expect_fail "import-onnx no file" "no ONNX file given" "$DIGITS" import-onnx --out x.nn
expect_fail "import-onnx no out" "--out is required" "$DIGITS" import-onnx "$T/bad/good.onnx"
expect_fail "import-onnx bad normalize" "--normalize: expected MEAN,STD" "$DIGITS" import-onnx "$T/bad/good.onnx" --normalize 0.1 --out x.nn
expect_fail "import-onnx missing" "nothere.onnx: cannot open" "$DIGITS" import-onnx "$T/nothere.onnx" --out x.nn
expect_fail "export-onnx needs both" "--model and --out are required" "$DIGITS" export-onnx --model x.nn
expect_fail "export-onnx missing model" "nothere.nn: cannot open" "$DIGITS" export-onnx --model "$T/nothere.nn" --out "$T/x.onnx"
expect_fail "export-onnx bad folder" "cannot" "$DIGITS" export-onnx --model "$T/mlp.nn" --out "$T/no/such/dir/x.onnx"

# a model that normalises its input is refused by int8 and C export (their
# kernels take pixel/255 as it is) instead of answering wrongly
expect_fail "export-c of a normalising model" "normalises its input" "$DIGITS" export-c --model "$T/norm.nn" --out "$T/normx"
expect_fail "evaluate --int8 of a normalising model" "normalises its input" "$DIGITS" evaluate --data "$D" --model "$T/norm.nn" --int8
finish "onnx.sh"
