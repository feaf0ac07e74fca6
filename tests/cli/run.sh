#!/bin/sh
# CLI tests for the digits tool: exit codes, one-line error messages on bad
# input, and end-to-end runs on small generated data and (when present) the
# real MNIST files. Usage: DIGITS=build/digits sh tests/cli/run.sh
# Ends with "N passed, N failed"; exits non-zero if any failed.
set -u
. "$(dirname "$0")/lib.sh"

# --- an IDX writer in sh: idx FILE TYPE RANK DIMS... then payload on stdin
be32() { printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"; }
idx_header() { # TYPE RANK DIMS...
    t=$1 r=$2; shift 2
    printf "\\000\\000\\$(printf %03o "$t")\\$(printf %03o "$r")"
    for d in "$@"; do be32 "$d"; done
}
# labels 0..9 repeating, n of them
labels() { i=0; while [ $i -lt "$1" ]; do printf "\\$(printf %03o $((i % 10)))"; i=$((i + 1)); done; }

make_set() { # DIR N: a small valid data set of N 28x28 images
    mkdir -p "$1"
    { idx_header 8 3 "$2" 28 28; head -c $(($2 * 784)) /dev/urandom; } >"$1/train-images-idx3-ubyte"
    { idx_header 8 1 "$2"; labels "$2"; } >"$1/train-labels-idx1-ubyte"
    cp "$1/train-images-idx3-ubyte" "$1/t10k-images-idx3-ubyte"
    cp "$1/train-labels-idx1-ubyte" "$1/t10k-labels-idx1-ubyte"
}

# --- usage and help
for c in info train evaluate summary fetch; do
    expect_ok "$c --help" "$DIGITS" $c --help
done
expect_ok "--help" "$DIGITS" --help
expect_fail "no command" "usage|command" "$DIGITS"
expect_fail "unknown command" "unknown command 'frobnicate'" "$DIGITS" frobnicate
expect_fail "unknown option" "unknown option '--bogus'" "$DIGITS" train --bogus
expect_fail "missing value" "needs a value" "$DIGITS" train --epochs
expect_fail "bad epochs" "--epochs: .*'zero'" "$DIGITS" train --epochs zero
expect_fail "negative batch" "--batch-size" "$DIGITS" train --batch-size -3
expect_fail "bad lr" "--lr" "$DIGITS" train --lr nan
expect_fail "bad split" "--validation-split" "$DIGITS" train --validation-split 1.5
expect_fail "bad optimizer" "--optimizer.*'adamw'" "$DIGITS" train --optimizer adamw --data "$T/none"
expect_fail "extra argument" "unexpected argument" "$DIGITS" info extra

# --- summary
expect_ok "summary mlp" "$DIGITS" summary --model mlp
grep -q "Total params: 407,050" "$T/out" && ok || bad "summary mlp: no 407,050"
expect_ok "summary spec" "$DIGITS" summary --model "dense(64,tanh) dense(10,softmax)"
grep -q "Total params: 50,890" "$T/out" && ok || bad "summary spec: 784*64+64+64*10+10 = 50,890"
expect_fail "summary bad spec" "unknown layer 'densee'" "$DIGITS" summary --model "densee(3)"
expect_fail "summary bad activation" "invalid value 'relux'" "$DIGITS" summary --model "dense(3,relux)"

# --- bad data files: exit 1, one line naming the file, never a crash
D=$T/good; make_set "$D" 50
expect_ok "info on generated set" "$DIGITS" info --data "$D"
grep -q "train_images.shape (50, 28, 28)" "$T/out" && ok || bad "info shape line: $(head -1 "$T/out")"

bad_set() { rm -rf "$T/bad"; cp -r "$D" "$T/bad"; }
F=$T/bad/train-images-idx3-ubyte

bad_set; printf 'XXXX' | dd of="$F" bs=1 count=4 conv=notrunc 2>/dev/null
expect_fail "wrong magic" "train-images-idx3-ubyte: .*magic" "$DIGITS" info --data "$T/bad"

bad_set; head -c 1000 "$D/train-images-idx3-ubyte" >"$F"
expect_fail "truncated" "train-images-idx3-ubyte: .*truncated" "$DIGITS" info --data "$T/bad"

bad_set; { idx_header 8 1 49; labels 49; } >"$T/bad/train-labels-idx1-ubyte"
expect_fail "count mismatch" "50 images but 49 labels" "$DIGITS" info --data "$T/bad"

bad_set; { idx_header 8 3 60000 65536 65536; head -c 100 /dev/zero; } >"$F"
expect_fail "absurd dimensions" "train-images-idx3-ubyte: " "$DIGITS" info --data "$T/bad"

bad_set; { idx_header 8 3 4294967295 4294967295 4294967295; } >"$F"
expect_fail "absurd dimensions 2" "train-images-idx3-ubyte: " "$DIGITS" info --data "$T/bad"

bad_set; gzip -c "$D/train-images-idx3-ubyte" >"$F.gz"; rm "$F"
printf '\377\377\377\377\377\377\377\377' | dd of="$F.gz" bs=1 seek=40 conv=notrunc 2>/dev/null
expect_fail "corrupt gzip" "train-images-idx3-ubyte.gz: " "$DIGITS" info --data "$T/bad"

bad_set; gzip -c "$D/train-images-idx3-ubyte" | head -c 200 >"$F.gz"; rm "$F"
expect_fail "truncated gzip" "train-images-idx3-ubyte.gz: " "$DIGITS" info --data "$T/bad"

bad_set; rm "$F"; mkdir "$F"
expect_fail "folder for file" "train-images-idx3-ubyte: .*(directory|regular)" "$DIGITS" info --data "$T/bad"

bad_set; rm "$T/bad/t10k-labels-idx1-ubyte"
expect_fail "missing file" "t10k-labels-idx1-ubyte: .*(No such file|cannot open)" "$DIGITS" info --data "$T/bad"

bad_set; : >"$F"
expect_fail "empty file" "train-images-idx3-ubyte: " "$DIGITS" info --data "$T/bad"

# --- models: train, evaluate, damaged model files
cd "$T"
expect_ok "train tiny" "$DIGITS" train --data "$D" --model "dense(16,relu) dense(10,softmax)" --epochs 2 --batch-size 16 --out "$T/m.nn"
grep -q '^test_acc: ' "$T/out" && ok || bad "train prints test_acc"
grep -q '^test_loss: ' "$T/out" && ok || bad "train prints test_loss"
expect_ok "train json" "$DIGITS" train --data "$D" --model "dense(16,relu) dense(10,softmax)" --epochs 2 --out "$T/m2.nn" --json
if [ "$(wc -l <"$T/out")" -eq 1 ] && grep -q '"test_acc": ' "$T/out" && grep -q '"train_seconds": ' "$T/out" && grep -q '"epochs": \[{"epoch": 1' "$T/out"; then ok; else bad "train --json: $(cat "$T/out")"; fi
# without --threads, training uses every core, as --threads 0 does (the
# MPI work once made the default one thread; a build without OpenMP has 1)
dflt=$(grep -o '"threads": [0-9]*' "$T/out")
expect_ok "train --threads 0" "$DIGITS" train --data "$D" --model "dense(16,relu) dense(10,softmax)" --epochs 1 --threads 0 --out "$T/m0.nn" --json
all=$(grep -o '"threads": [0-9]*' "$T/out")
[ -n "$dflt" ] && [ "$dflt" = "$all" ] && ok || bad "train --json: default '$dflt', --threads 0 '$all'"
expect_ok "evaluate" "$DIGITS" evaluate --model "$T/m.nn" --data "$D"
grep -q '^test_acc: ' "$T/out" && grep -q 'confusion' "$T/out" && ok || bad "evaluate output"
expect_ok "evaluate json" "$DIGITS" evaluate --model "$T/m.nn" --data "$D" --json
grep -q '"confusion": \[\[' "$T/out" && ok || bad "evaluate --json confusion"
expect_ok "summary of file" "$DIGITS" summary --model "$T/m.nn"
grep -q "Total params: 12,730" "$T/out" && ok || bad "summary of file: 784*16+16+16*10+10 = 12,730"
expect_fail "evaluate missing model" "nope.nn: cannot open" "$DIGITS" evaluate --model "$T/nope.nn" --data "$D"
head -c 500 "$T/m.nn" >"$T/trunc.nn"
expect_fail "evaluate truncated model" "trunc.nn: " "$DIGITS" evaluate --model "$T/trunc.nn" --data "$D"
cp "$T/m.nn" "$T/flip.nn"; printf 'Z' | dd of="$T/flip.nn" bs=1 seek=3000 conv=notrunc 2>/dev/null
expect_fail "evaluate damaged model" "flip.nn: .*checksum" "$DIGITS" evaluate --model "$T/flip.nn" --data "$D"
expect_fail "evaluate folder as model" "$T: " "$DIGITS" evaluate --model "$T" --data "$D"
expect_fail "out into missing folder" "--out: no such folder" "$DIGITS" train --data "$D" --model "dense(10,softmax)" --epochs 1 --out "$T/no/such/dir/m.nn"
ls "$T"/*.tmp.* >/dev/null 2>&1 && bad "temporary files left behind" || ok

# --- training options: augmentation, schedule, early stopping, class names
expect_fail "bad augment" "--augment: expected" "$DIGITS" train --augment=2,x --data "$T/none"
expect_fail "augment out of range" "--augment: " "$DIGITS" train --augment=2,200,0.1 --data "$T/none"
expect_fail "bad lr-decay" "--lr-decay" "$DIGITS" train --lr-decay 2 --data "$T/none"
expect_fail "bad patience" "--patience" "$DIGITS" train --patience 0 --data "$T/none"
expect_ok "train augment decay patience" "$DIGITS" train --data "$D" --model "dense(16,relu) dense(10,softmax)" --epochs 3 --augment --lr-decay 0.9 --patience 1 --validation-split 0.2 --out "$T/aug.nn"
grep -q '^test_acc: ' "$T/out" && ok || bad "train with augmentation: no test_acc"
[ -f "$T/aug.nn" ] && [ ! -e "$T/aug.nn.ckpt" ] && ok || bad "checkpoint not removed after training"
expect_fail "resume without checkpoint" "aug.nn.ckpt: cannot open" "$DIGITS" train --data "$D" --out "$T/aug.nn" --resume
expect_ok "evaluate classes" "$DIGITS" evaluate --model "$T/m.nn" --data "$D" --classes a,b,c,d,e,f,g,h,i,j
grep -q '^classes: 0=a 1=b' "$T/out" && ok || bad "evaluate --classes legend"
expect_fail "classes count" "--classes: 2 names given, the model has 10" "$DIGITS" evaluate --model "$T/m.nn" --data "$D" --classes a,b

# --- Ctrl-C: a checkpoint at the step reached, the command to resume, and
# the resumed run ends with the same model as one never interrupted (the
# resumed run on one thread, the others on all cores: results do not
# depend on the thread count)
D2=$T/mid; make_set "$D2" 3000
run_train() { "$DIGITS" train --data "$D2" --model "conv2d(8,3,relu) maxpool(2) flatten dropout(0.2) dense(10,softmax)" --epochs 6 --batch-size 16 --augment "$@"; }
"$DIGITS" train --data "$D2" --model "conv2d(8,3,relu) maxpool(2) flatten dropout(0.2) dense(10,softmax)" --epochs 6 --batch-size 16 --augment --checkpoint-every 0 --out "$T/int.nn" >"$T/int.out" 2>"$T/int.err" &
pid=$!
i=0; while [ ! -e "$T/int.nn.ckpt" ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i + 1)); done
sleep 0.1
kill -INT $pid; wait $pid; rc=$?
if [ $rc -eq 130 ] && grep -q 'checkpoint saved to .*int.nn.ckpt; resume with' "$T/int.err" && [ -e "$T/int.nn.ckpt" ] && [ ! -e "$T/int.nn" ]; then ok
else bad "SIGINT: exit $rc, $(tail -2 "$T/int.err")"; fi
grep -q -- '--resume$' "$T/int.err" && ok || bad "SIGINT: no resume command"
expect_ok "resume after SIGINT" run_train --out "$T/int.nn" --resume --threads 1
expect_ok "uninterrupted run" run_train --out "$T/whole.nn"
cmp -s "$T/int.nn" "$T/whole.nn" && ok || bad "resumed model differs from an uninterrupted run"
[ ! -e "$T/int.nn.ckpt" ] && ok || bad "checkpoint left after resumed run"

# --- the real data set, when present: a subset, one epoch, well above chance
if [ -f "$MNIST/train-images-idx3-ubyte" ] || [ -f "$MNIST/train-images-idx3-ubyte.gz" ]; then
    expect_ok "real MNIST info" "$DIGITS" info --data "$MNIST"
    grep -q "train_images.shape (60000, 28, 28)" "$T/out" && ok || bad "real MNIST shape"
    expect_ok "real MNIST train" "$DIGITS" train --data "$MNIST" --limit 20000 --epochs 1 --out "$T/real.nn"
    acc=$(sed -n 's/^test_acc: //p' "$T/out")
    if awk -v a="$acc" 'BEGIN { exit !(a >= 0.90) }'; then ok; else bad "real MNIST accuracy $acc < 0.90"; fi
    echo "real MNIST (20,000 images, 1 epoch): test_acc $acc"
else
    echo "SKIP: real MNIST not in $MNIST (run scripts/fetch-mnist)"
fi

finish cli
