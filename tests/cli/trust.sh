#!/bin/sh
# Issue 10, "Files the tool writes" and "Data the tool reads": outputs are
# checked before any work, nothing that is not ours is replaced, a
# checkpoint belongs to its run, a diverging run saves nothing, data is
# fetched only into the default folder, shapes must match exactly, labels
# must be below --classes (or missing ones are named), resume
# needs the same options, and memory stays bounded.
# Usage: DIGITS=build/digits sh tests/cli/trust.sh
set -u
. "$(dirname "$0")/lib.sh"
ROOT=$(pwd)
cd "$T"   # a broken build writing "" or "/" must not litter the checkout

# --- IDX files in sh (as run.sh): set DIR N [H W]
be32() { printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"; }
labels() { i=0; while [ $i -lt "$1" ]; do printf "\\$(printf %03o $((i % 10)))"; i=$((i + 1)); done; }
make_set() {
    h=${3:-28} w=${4:-28}
    mkdir -p "$1"
    { printf '\000\000\010\003'; be32 "$2"; be32 "$h"; be32 "$w"; head -c $(($2 * h * w)) /dev/urandom; } >"$1/train-images-idx3-ubyte"
    { printf '\000\000\010\001'; be32 "$2"; labels "$2"; } >"$1/train-labels-idx1-ubyte"
    cp "$1/train-images-idx3-ubyte" "$1/t10k-images-idx3-ubyte"
    cp "$1/train-labels-idx1-ubyte" "$1/t10k-labels-idx1-ubyte"
}
# wait_for FILE PATTERN: up to 60 s for PATTERN to appear in FILE
wait_for() {
    i=0; while ! grep -q -- "$2" "$1" 2>/dev/null && [ $i -lt 6000 ]; do sleep 0.01; i=$((i + 1)); done
}
# in_mb MB CMD...: runs CMD (output in $T/out, $T/err); fails, printing
# why, when it exits non-zero, runs past 120 s or its peak resident memory
# passes MB (not ulimit -v: ASan builds reserve terabytes of addresses)
in_mb() {
    T=$T /usr/bin/python3 - "$@" <<'PY'
import os, resource, subprocess, sys
mb, cmd, T = int(sys.argv[1]), sys.argv[2:], os.environ["T"]
with open(T + "/out", "wb") as o, open(T + "/err", "wb") as e:
    try:
        rc = subprocess.run(cmd, stdout=o, stderr=e, timeout=120).returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
if rc != 0 or peak > mb:
    print("exit %s, peak %d MB (limit %d)" % (rc, peak, mb))
    sys.exit(1)
PY
}
no_work() { # NAME: the command failed before doing any work
    if grep -q 'Epoch\|test_acc' "$T/out" "$T/err"; then bad "$1: worked before failing"; else ok; fi
}

D=$T/d; make_set "$D" 50
SMALL="dense(16,relu) dense(10,softmax)"
tiny() { "$DIGITS" train --data "$D" --model "$SMALL" --epochs 1 --batch-size 16 "$@"; }
expect_ok "train a model" tiny --out "$T/m.nn"
cp "$T/m.nn" "$T/m.orig"

# === Files the tool writes =================================================

# --- output paths are checked before any work
expect_fail "--out in a missing folder" "--out: no such folder" tiny --out "$T/no/such/m.nn"
no_work "--out in a missing folder"
mkdir "$T/adir"
expect_fail "--out a folder" "--out: .*adir is a folder" tiny --out "$T/adir"
no_work "--out a folder"
[ -e "$T/adir.ckpt" ] && bad "--out a folder: left adir.ckpt" || ok
expect_fail "--out /" "--out: / is a folder" tiny --out /
[ -e /.ckpt ] && bad "--out /: left /.ckpt" || ok
expect_fail "--out empty" "--out: empty file name" tiny --out ""
expect_fail "--checkpoint in a missing folder" "--checkpoint: no such folder" tiny --out "$T/c.nn" --checkpoint "$T/no/c.ckpt"
no_work "--checkpoint in a missing folder"
expect_fail "--plot in a missing folder" "--plot: no such folder" tiny --out "$T/c.nn" --plot "$T/no/p.svg"
no_work "--plot in a missing folder"
expect_fail "--errors in a missing folder" "--errors: no such folder" "$DIGITS" evaluate --model "$T/m.nn" --data "$D" --errors "$T/no/e.png"
no_work "--errors in a missing folder"
mkdir "$T/cdir.svg"
expect_fail "--confusion a folder" "--confusion: .*cdir.svg is a folder" "$DIGITS" evaluate --model "$T/m.nn" --data "$D" --confusion "$T/cdir.svg"
no_work "--confusion a folder"

# --- no device, FIFO or socket is replaced; symbolic links are followed
mkfifo "$T/fifo"
expect_fail "--out a FIFO" "--out: .*fifo is not a regular file" tiny --out "$T/fifo"
[ -p "$T/fifo" ] && ok || bad "--out a FIFO: the FIFO was replaced"
/usr/bin/python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/sock"
expect_fail "--out a socket" "--out: .*sock is not a regular file" tiny --out "$T/sock"
[ -S "$T/sock" ] && ok || bad "--out a socket: the socket was replaced"
if mknod "$T/null" c 1 3 2>/dev/null; then   # a /dev/null of our own
    expect_fail "--out a device" "--out: .*null is not a regular file" tiny --out "$T/null"
    [ -c "$T/null" ] && ok || bad "--out a device: the device node was replaced"
    mknod "$T/null.svg" c 1 3
    expect_fail "--plot a device" "--plot: .*null.svg is not a regular file" tiny --out "$T/c.nn" --plot "$T/null.svg"
    [ -c "$T/null.svg" ] && ok || bad "--plot a device: the device node was replaced"
fi
cp "$T/m.orig" "$T/real.nn"; ln -s real.nn "$T/link.nn"
expect_ok "--out a symbolic link" tiny --out "$T/link.nn" --seed 7
if [ -L "$T/link.nn" ] && ! cmp -s "$T/real.nn" "$T/m.orig"; then ok; else bad "--out a symbolic link: link replaced or target not written"; fi
expect_ok "the link's target loads" "$DIGITS" evaluate --model "$T/real.nn" --data "$D"
ls "$T"/real.nn.tmp.* "$T"/link.nn.tmp.* >/dev/null 2>&1 && bad "symbolic link: temporary left" || ok
ln -s "$T/nowhere/x.nn" "$T/dangling.nn"
expect_fail "--out a dangling link" "--out: .*dangling.nn is a symbolic link to a missing file" tiny --out "$T/dangling.nn"

# --- two outputs naming one file, or an output naming an input
expect_fail "--out = --checkpoint" "--out and --checkpoint name the same file" tiny --out "$T/s.nn" --checkpoint "$T/./s.nn"
no_work "--out = --checkpoint"
expect_fail "--out = --plot" "--out and --plot name the same file" tiny --out "$T/s.png" --plot "$T/s.png"
cp "$T/m.orig" "$T/s.png"
expect_fail "--out = --plot (existing)" "--out and --plot name the same file" tiny --out "$T/s.png" --plot "$T/adir/../s.png"
cmp -s "$T/s.png" "$T/m.orig" && ok || bad "--out = --plot: the file was replaced"
cp "$D/train-labels-idx1-ubyte" "$T/labels.orig"
expect_fail "--out = a data file" "--out: .*train-labels-idx1-ubyte is the data file" tiny --out "$D/train-labels-idx1-ubyte"
ln "$D/t10k-images-idx3-ubyte" "$T/hardlink.nn"
expect_fail "--out = a data file (hard link)" "--out: .*hardlink.nn is the data file" tiny --out "$T/hardlink.nn"
cmp -s "$D/train-labels-idx1-ubyte" "$T/labels.orig" && cmp -s "$D/t10k-images-idx3-ubyte" "$D/train-images-idx3-ubyte" && ok || bad "a data file was replaced"
rm -f "$T/hardlink.nn"; cp "$T/labels.orig" "$D/train-labels-idx1-ubyte"   # (for the checks below)
cp "$D/train-images-idx3-ubyte" "$D/t10k-images-idx3-ubyte"
cp "$T/m.orig" "$T/model.png"
expect_fail "--errors = --model" "--errors: .*model.png is the --model" "$DIGITS" evaluate --model "$T/model.png" --data "$D" --errors "$T/model.png"
cmp -s "$T/model.png" "$T/m.orig" && ok || bad "--errors = --model: the model was replaced"

# --- replacing a file keeps its permission bits
cp "$T/m.orig" "$T/perm.nn"; chmod 600 "$T/perm.nn"
: >"$T/perm.svg"; chmod 640 "$T/perm.svg"
expect_ok "train over a 0600 model" tiny --out "$T/perm.nn" --plot "$T/perm.svg"
[ "$(stat -c %a "$T/perm.nn")" = 600 ] && ok || bad "model mode $(stat -c %a "$T/perm.nn"), want 600"
[ "$(stat -c %a "$T/perm.svg")" = 640 ] && ok || bad "plot mode $(stat -c %a "$T/perm.svg"), want 640"

# --- a checkpoint belongs to the run that wrote it
D2=$T/mid; make_set "$D2" 2000
CONV="conv2d(8,3,relu) maxpool(2) flatten dense(10,softmax)"
conv() { "$DIGITS" train --data "$D2" --model "$CONV" --epochs 8 --batch-size 16 --optimizer adam "$@"; }
# start_conv NAME ARGS...: digits itself in the background (a function or
# subshell there would get the signals), output in $T/NAME.out/.err; the
# "Epoch N/8" line reaches the file when epoch N starts (stdout is
# line-buffered), so "Epoch 3/8" means two epochs done
start_conv() {
    n=$1; shift
    "$DIGITS" train --data "$D2" --model "$CONV" --epochs 8 --batch-size 16 --optimizer adam "$@" >"$T/$n.out" 2>"$T/$n.err" &
    pid=$!
}
start_conv a --out "$T/own.nn"
wait_for "$T/a.out" "Epoch 3/8"    # two epochs done
kill -INT $pid; wait $pid; rc=$?
[ $rc -eq 130 ] && [ -f "$T/own.nn.ckpt" ] && ok || bad "interrupted run: exit $rc, $(tail -1 "$T/a.err")"
cp "$T/own.nn.ckpt" "$T/own.ckpt.copy"
expect_fail "new run over a checkpoint" "own.nn.ckpt: a checkpoint of an earlier run is there.*--resume" conv --out "$T/own.nn"
no_work "new run over a checkpoint"
cmp -s "$T/own.nn.ckpt" "$T/own.ckpt.copy" && ok || bad "new run over a checkpoint: the checkpoint changed"

# another run takes the checkpoint file over while this one trains: this
# one must neither overwrite nor delete it
start_conv b --out "$T/cc.nn" --checkpoint-every 0
i=0; while [ ! -e "$T/cc.nn.ckpt" ] && [ $i -lt 6000 ]; do sleep 0.01; i=$((i + 1)); done
cp "$T/own.ckpt.copy" "$T/cc.tmp" && mv "$T/cc.tmp" "$T/cc.nn.ckpt"
wait $pid; rc=$?
[ $rc -eq 0 ] && ok || bad "run whose checkpoint was taken over: exit $rc, $(tail -1 "$T/b.err")"
cmp -s "$T/cc.nn.ckpt" "$T/own.ckpt.copy" && ok || bad "a run deleted or overwrote another run's checkpoint"
grep -q "replaced by another run" "$T/b.err" && ok || bad "no warning about the foreign checkpoint"

echo "my notes" >"$T/notes.txt"
expect_fail "--checkpoint a file that is not one" "--checkpoint: .*notes.txt exists and is not a checkpoint" tiny --out "$T/n.nn" --checkpoint "$T/notes.txt"
[ "$(cat "$T/notes.txt")" = "my notes" ] && ok || bad "--checkpoint replaced a user's file"
expect_fail "--checkpoint a finished model" "--checkpoint: .*m.nn exists and is not a checkpoint" tiny --out "$T/n.nn" --checkpoint "$T/m.nn"
expect_fail "--resume from a finished model" "m.nn: not a checkpoint" tiny --out "$T/n.nn" --checkpoint "$T/m.nn" --resume

# SIGHUP is handled as SIGTERM is
start_conv h --out "$T/hup.nn"
wait_for "$T/h.out" "Epoch 1/8"
kill -HUP $pid; wait $pid; rc=$?
[ $rc -eq 129 ] && grep -q 'checkpoint saved to .*hup.nn.ckpt' "$T/h.err" && [ -f "$T/hup.nn.ckpt" ] && ok || bad "SIGHUP: exit $rc, $(tail -2 "$T/h.err")"

# --no-checkpoint: none at all, not even on Ctrl-C
start_conv nc --out "$T/nc.nn" --no-checkpoint
wait_for "$T/nc.out" "Epoch 1/8"
kill -INT $pid; wait $pid; rc=$?
[ $rc -eq 130 ] && [ ! -e "$T/nc.nn.ckpt" ] && grep -q 'no checkpoint written' "$T/nc.err" && ok || bad "--no-checkpoint: exit $rc, $(tail -1 "$T/nc.err")"
expect_fail "--no-checkpoint with --resume" "--no-checkpoint: " tiny --out "$T/nc.nn" --no-checkpoint --resume

# tiny epochs: no checkpoint (fsync) after every one by default
"$DIGITS" train --data "$D" --model "dense(10,softmax)" --epochs 100000 --batch-size 50 --out "$T/fast.nn" >"$T/f.out" 2>"$T/f.err" &
pid=$!
wait_for "$T/f.out" "Epoch 20/"
sleep 1
[ ! -e "$T/fast.nn.ckpt" ] && ok || bad "tiny epochs: a checkpoint after each epoch"
kill -INT $pid; wait $pid; rc=$?
[ $rc -eq 130 ] && [ -f "$T/fast.nn.ckpt" ] && ok || bad "tiny epochs: Ctrl-C wrote no checkpoint (exit $rc)"

# --- a diverging run stops, exit 1, and replaces nothing
DEEP="dense(64,linear) dense(64,linear) dense(64,linear) dense(10,softmax)"
cp "$T/m.orig" "$T/div.nn"
expect_fail "diverging run" "epoch [0-9]+: training diverged.*lower --lr" "$DIGITS" train --data "$D" --model "$DEEP" --optimizer sgd --lr 100 --epochs 3 --batch-size 16 --out "$T/div.nn"
cmp -s "$T/div.nn" "$T/m.orig" && ok || bad "diverging run replaced the previous model"
[ ! -e "$T/div.nn.ckpt" ] && ok || bad "diverging run left a checkpoint"
# diverging later (fixed data: epoch 3 with every kernel family and
# thread count tried): the finite checkpoint of an earlier epoch stays
mkdir "$T/fixed"
/usr/bin/python3 - "$T/fixed" <<'PY'
import random, struct, sys
r, n = random.Random(10), 500
img = bytes(r.randrange(256) for _ in range(n * 784))
lab = bytes(i % 10 for i in range(n))
for s in ("train", "t10k"):
    open(sys.argv[1] + "/" + s + "-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 0x803, n, 28, 28) + img)
    open(sys.argv[1] + "/" + s + "-labels-idx1-ubyte", "wb").write(struct.pack(">II", 0x801, n) + lab)
PY
expect_fail "diverging after an epoch" "epoch [2-7]: training diverged.*checkpoint of an earlier epoch stays in .*div2.nn.ckpt" "$DIGITS" train --data "$T/fixed" --model "$DEEP" --optimizer sgd --lr 0.1 --epochs 8 --checkpoint-every 0 --out "$T/div2.nn"
[ ! -e "$T/div2.nn" ] && ok || bad "diverging run wrote its model"
expect_ok "the earlier checkpoint loads" "$DIGITS" summary --model "$T/div2.nn.ckpt"

# === Data the tool reads ===================================================

# a fetch-mnist stand-in: records that it ran, then copies the small set
cat >"$T/fakefetch" <<EOF
#!/bin/sh
touch "$T/fetched"
mkdir -p "\$1" && cp "$D"/* "\$1"/
EOF
chmod +x "$T/fakefetch"
export DIGITS_FETCH="$T/fakefetch"
unset DIGITS_DATA 2>/dev/null || true
expect_fail "mistyped --data" "mistyped: no such folder" tiny --data "$T/mistyped" --out "$T/x.nn"
[ ! -e "$T/fetched" ] && [ ! -e "$T/mistyped" ] && ok || bad "mistyped --data: MNIST fetched into it"
mkdir "$T/own"; cp "$D/train-images-idx3-ubyte" "$D/train-labels-idx1-ubyte" "$T/own/"
expect_fail "--data without test files" "own/t10k-images-idx3-ubyte: " "$DIGITS" train --data "$T/own" --out "$T/x.nn"
[ ! -e "$T/fetched" ] && cmp -s "$T/own/train-images-idx3-ubyte" "$D/train-images-idx3-ubyte" && ok || bad "--data without test files: fetched over the user's files"
mkdir "$T/empty"; cd "$T/empty"
expect_fail "evaluate never downloads" "data/mnist: no such folder" "$DIGITS" evaluate --model "$T/m.nn"
expect_fail "info never downloads" "data/mnist: no such folder" "$DIGITS" info
[ ! -e "$T/fetched" ] && [ ! -e "$T/empty/data" ] && ok || bad "evaluate or info downloaded"
expect_ok "train fetches into the default folder" "$DIGITS" train --model "dense(10,softmax)" --epochs 1 --out "$T/x.nn"
[ -e "$T/fetched" ] && [ -f "$T/empty/data/mnist/t10k-labels-idx1-ubyte" ] && ok || bad "default folder: not fetched"
cd "$T"
unset DIGITS_FETCH
# fetch-mnist adds nothing to, and replaces nothing in, a folder with other files
mkdir "$T/theirs"; echo "notes" >"$T/theirs/README"
MNIST_SOURCE_DIR=$T/none "$ROOT/scripts/fetch-mnist" "$T/theirs" >"$T/out" 2>"$T/err" && bad "fetch-mnist into a folder with other files succeeded" || ok
grep -q "holds other files" "$T/err" && [ "$(ls "$T/theirs")" = README ] && ok || bad "fetch-mnist: $(cat "$T/err")"
if [ -f "$MNIST/train-images-idx3-ubyte" ]; then
    mkdir "$T/mine"; cp "$D/train-images-idx3-ubyte" "$D/train-labels-idx1-ubyte" "$T/mine/"
    MNIST_SOURCE_DIR=$MNIST "$ROOT/scripts/fetch-mnist" "$T/mine" >"$T/out" 2>"$T/err" && bad "fetch-mnist over the user's own files succeeded" || ok
    cmp -s "$T/mine/train-images-idx3-ubyte" "$D/train-images-idx3-ubyte" && [ ! -e "$T/mine/t10k-images-idx3-ubyte" ] && ok || bad "fetch-mnist replaced or added files: $(cat "$T/err")"
    MNIST_SOURCE_DIR=$MNIST "$DIGITS" fetch --data "$T/mine" >"$T/out" 2>"$T/err" && bad "digits fetch over the user's files succeeded" || ok
    cmp -s "$T/mine/train-images-idx3-ubyte" "$D/train-images-idx3-ubyte" && ok || bad "digits fetch replaced the user's file"
else
    echo "NOTE: real MNIST not in $MNIST; the overwrite check of fetch-mnist needs it"
fi

# --- a model runs only on data of its exact input shape
W=$T/wide; make_set "$W" 50 56 14
expect_ok "train on 56x14" "$DIGITS" train --data "$W" --model "$SMALL" --epochs 1 --out "$T/wide.nn"
expect_fail "56x14 model on 28x28 data" "wide.nn: the model takes 56x14x1 inputs, not the 28x28x1 images of .*/d$" "$DIGITS" evaluate --model "$T/wide.nn" --data "$D"
{ printf 'P5\n28 28\n255\n'; head -c 784 /dev/urandom; } >"$T/x.pgm"
expect_fail "56x14 model on a 28x28 picture" "wide.nn: the model takes 56x14x1 inputs, not the 28x28x1 images of digits predict" "$DIGITS" predict --model "$T/wide.nn" "$T/x.pgm"
expect_fail "resume on data of another shape" "own.nn.ckpt: the model takes 28x28x1 inputs, not the 56x14x1 images of" "$DIGITS" train --data "$W" --model "$CONV" --epochs 8 --batch-size 16 --optimizer adam --out "$T/own.nn" --resume

# --- --resume needs the model, optimizer and learning rate of the checkpoint
expect_fail "resume with another --model" "--model: .*own.nn.ckpt was made with another model" "$DIGITS" train --data "$D2" --model "$SMALL" --epochs 8 --batch-size 16 --optimizer adam --out "$T/own.nn" --resume
expect_fail "resume with another --optimizer" "--optimizer: .*made with adam, not sgd" conv --out "$T/own.nn" --resume --optimizer sgd
expect_fail "resume with another --lr" "--lr: .*made with --lr 0.001, not 0.5" conv --out "$T/own.nn" --resume --lr 0.5
expect_fail "resume with fewer --epochs" "--epochs: .*own.nn.ckpt has [0-9]+ epochs done, more than --epochs 1" "$DIGITS" train --data "$D2" --model "$CONV" --epochs 1 --batch-size 16 --optimizer adam --out "$T/own.nn" --resume --json
cmp -s "$T/own.nn.ckpt" "$T/own.ckpt.copy" && ok || bad "a refused resume changed the checkpoint"
expect_ok "resume with the same options" conv --out "$T/own.nn" --resume --json
grep -q "\"model\": \"$CONV\"" "$T/out" && ok || bad "resume --json: wrong model: $(head -c 200 "$T/out")"
[ ! -e "$T/own.nn.ckpt" ] && ok || bad "resumed run left its checkpoint"

# --- the classes: --classes N declares them and every label must be below;
# without it a preset gets the largest label + 1 outputs, and the labels
# below that no training image has are named in a note
L=$T/stray; make_set "$L" 50
printf '\310' | dd of="$L/train-labels-idx1-ubyte" bs=1 seek=15 conv=notrunc 2>/dev/null   # item 7: 200
expect_ok "train on a stray label, no --classes" "$DIGITS" train --data "$L" --epochs 1 --out "$T/stray.nn" --json
grep -q '"classes": 201,' "$T/out" && ok || bad "stray label: --json classes: $(head -c 300 "$T/out")"
grep -q "^digits: note: no training image in .*/stray has labels 10 to 199; the model gets 201 outputs" "$T/err" && ok || bad "stray label: no note: $(cat "$T/err")"
expect_fail "a label at --classes" "stray/train-labels-idx1-ubyte: label 200 of item 7 is out of range \\(must be below 10\\)" "$DIGITS" train --data "$L" --classes 10 --epochs 1 --out "$T/c10.nn"
no_work "a label at --classes"
[ ! -e "$T/c10.nn" ] && ok || bad "a refused --classes run wrote its model"
cp "$D"/train-* "$L/"; printf '\014' | dd of="$L/t10k-labels-idx1-ubyte" bs=1 seek=57 conv=notrunc 2>/dev/null   # item 49: 12
expect_fail "a test label at --classes" "stray/t10k-labels-idx1-ubyte: label 12 of item 49 is out of range \\(must be below 10\\)" "$DIGITS" train --data "$L" --classes a,b,c,d,e,f,g,h,i,j --epochs 1 --out "$T/c10.nn"
expect_ok "--classes 12 on labels 0-9" "$DIGITS" train --data "$D" --classes 12 --epochs 1 --out "$T/c12.nn" --json
grep -q '"classes": 12,' "$T/out" && ok || bad "--classes 12: --json: $(head -c 300 "$T/out")"
! grep -q 'note' "$T/err" && ok || bad "--classes 12: a note: $(grep note "$T/err")"
expect_ok "every class present, no --classes" tiny --out "$T/c.nn"
[ ! -s "$T/err" ] && ok || bad "labels 0-9, no --classes: stderr: $(cat "$T/err")"
expect_fail "--classes against a layer list" "--classes: --model 'dense\\(16,relu\\) dense\\(10,softmax\\)' has 10 outputs, not 12" tiny --classes 12 --out "$T/c.nn"
expect_fail "--classes against --init" "--classes: .*/m.nn has 10 outputs, not 11" "$DIGITS" train --data "$D" --init "$T/m.nn" --classes a,b,c,d,e,f,g,h,i,j,k --out "$T/c.nn"
expect_fail "--classes 1" "--classes: expected an integer from 2 to 65536, got '1'" tiny --classes 1 --out "$T/c.nn"
expect_fail "--classes with an empty name" "--classes: name 2 is empty" tiny --classes a,,b --out "$T/c.nn"

# --- memory stays bounded: a 65,536-class model's evaluate
S=$T/two; make_set "$S" 50 2 2
expect_ok "train a 65,536-class model" "$DIGITS" train --data "$S" --model "dense(65536,softmax)" --epochs 1 --out "$T/big.nn"
r=$(in_mb 1000 "$DIGITS" evaluate --model "$T/big.nn" --data "$S" --errors "$T/big.png") && ok || bad "evaluate 65,536 classes: $r $(head -c 200 "$T/err")"
grep -q "not shown for 65536 classes" "$T/out" && ok || bad "65,536 classes: $(head -3 "$T/out")"
r=$(in_mb 1000 "$DIGITS" evaluate --model "$T/big.nn" --data "$S" --json) && ok || bad "evaluate 65,536 classes --json: $r $(head -c 200 "$T/err")"
/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["confusion"] is None and sum(c for _, _, c in d["confusion_sparse"]) == 50
assert len(d["per_class_accuracy"]) == 65536
' "$T/out" && ok || bad "65,536 classes --json: $(head -c 300 "$T/out")"
expect_fail "--confusion heat map of 65,536 classes" "--confusion: .*65536 classes" timeout 120 "$DIGITS" evaluate --model "$T/big.nn" --data "$S" --confusion "$T/big.svg"

# --- an image on standard input: refused as soon as it passes the limit
/usr/bin/python3 - "$DIGITS" "$T/m.nn" >"$T/stdin.out" 2>&1 <<'EOF'
import subprocess, sys
p = subprocess.Popen([sys.argv[1], "predict", "--model", sys.argv[2], "-"],
                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE)
chunk, sent = b"\0" * (1 << 20), 0
try:
    while sent < (600 << 20):
        p.stdin.write(chunk)
        sent += len(chunk)
    p.stdin.close()
except BrokenPipeError:
    pass
err = p.stderr.read().decode()
rc = p.wait()
print(rc, sent >> 20, err.strip())
sys.exit(0 if rc == 1 and sent <= (260 << 20) and "limit" in err else 1)
EOF
[ $? -eq 0 ] && ok || bad "image on stdin: $(cat "$T/stdin.out") (rc, MiB taken, message)"

finish trust
