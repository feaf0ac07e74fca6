#!/bin/sh
# CLI tests for data-parallel training under mpirun (docs/distributed.md):
# two ranks give one process's weights, the same accuracy, checkpoints that
# resume, one clear line when a rank fails, and no hangs (every mpirun runs
# under `timeout`). Usage: DIGITS=build/digits MODEL_DIFF=build/tests/cli/
# model_diff sh tests/cli/mpi.sh. MPI_ACC_SEEDS: seeds of the 5-epoch
# accuracy comparison (default "42 7"; each is two trainings on --limit 5000).
set -u
. "$(dirname "$0")/lib.sh"
MODEL_DIFF=${MODEL_DIFF:-build/tests/cli/model_diff}
case $MODEL_DIFF in /*) ;; *) MODEL_DIFF=$(pwd)/$MODEL_DIFF ;; esac
ACC_SEEDS=${MPI_ACC_SEEDS:-42 7}

# Root (as in CI) needs Open MPI's consent; 2 cores, up to 3 ranks: allow
# more ranks than cores. -q: no Open MPI banners, so that the tool's one
# line is the whole of stderr. ASan builds: Open MPI's own leaks are not ours.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
export ASAN_OPTIONS
command -v mpirun >/dev/null || { echo "FAIL: no mpirun (apt-get install openmpi-bin)"; exit 1; }
mpi() { # NP ARGS...: digits under mpirun, at most 300 s
    np=$1; shift
    timeout 300 mpirun -q --oversubscribe -x ASAN_OPTIONS -np "$np" "$DIGITS" "$@"
}
# value of key=... in model_diff's output
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" "$2"; }
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

# --- data: MNIST when present (the seed configuration), else generated
be32() { printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"; }
idx_header() { t=$1 r=$2; shift 2; printf "\\000\\000\\$(printf %03o "$t")\\$(printf %03o "$r")"; for d in "$@"; do be32 "$d"; done; }
labels() { i=0; while [ $i -lt "$1" ]; do printf "\\$(printf %03o $((i % 10)))"; i=$((i + 1)); done; }
make_set() { # DIR N
    mkdir -p "$1"
    { idx_header 8 3 "$2" 28 28; head -c $(($2 * 784)) /dev/urandom; } >"$1/train-images-idx3-ubyte"
    { idx_header 8 1 "$2"; labels "$2"; } >"$1/train-labels-idx1-ubyte"
    cp "$1/train-images-idx3-ubyte" "$1/t10k-images-idx3-ubyte"
    cp "$1/train-labels-idx1-ubyte" "$1/t10k-labels-idx1-ubyte"
}
S=$T/small; make_set "$S" 2000
if [ -f "$MNIST/train-images-idx3-ubyte" ] || [ -f "$MNIST/train-images-idx3-ubyte.gz" ]; then
    R=$MNIST
else
    echo "mpi.sh: no MNIST in $MNIST; the seed-configuration checks use generated data"
    R=$S
fi

# --- the plain binary needs no mpirun; one rank under mpirun is the same
expect_ok "plain train" "$DIGITS" train --data "$S" --limit 300 --epochs 1 --threads 1 --json --out "$T/plain.nn"
grep -q '"ranks": 1' "$T/out" && ok || bad "plain train: no \"ranks\": 1 in --json"
expect_ok "mpirun -np 1" mpi 1 train --data "$S" --limit 300 --epochs 1 --threads 1 --out "$T/np1.nn"
cmp -s "$T/plain.nn" "$T/np1.nn" && ok || bad "mpirun -np 1 differs from the plain run"

# --- memory per rank: under mpirun the images stay in their file (each rank
# reads its shard's rows), so a rank's peak RSS is below one process's by
# more than the 31 MB training set (the plain run holds it and the test
# set, here a copy of it)
W=$T/wide; mkdir -p "$W"
{ idx_header 8 3 40000 28 28; head -c $((40000 * 784)) /dev/urandom; } >"$W/train-images-idx3-ubyte"
{ idx_header 8 1 40000; head -c 40000 /dev/zero | tr '\000' '\001'; } >"$W/train-labels-idx1-ubyte"
cp "$W/train-images-idx3-ubyte" "$W/t10k-images-idx3-ubyte"
cp "$W/train-labels-idx1-ubyte" "$W/t10k-labels-idx1-ubyte"
peak() { sed -n 's/^peak_kB \([0-9]*\)$/\1/p' "$@"; }
expect_ok "plain train, 40000 images" /usr/bin/time -f "peak_kB %M" -o "$T/rss.plain" \
    "$DIGITS" train --data "$W" --limit 1000 --epochs 1 --threads 1 --out "$T/w1.nn"
expect_ok "2 ranks, 40000 images" timeout 300 mpirun -q --oversubscribe -x ASAN_OPTIONS -np 2 \
    sh -c 'exec /usr/bin/time -f "peak_kB %M" -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' "$T/rss" \
    "$DIGITS" train --data "$W" --limit 1000 --epochs 1 --threads 1 --out "$T/w2.nn"
p1=$(peak "$T/rss.plain"); r0=$(peak "$T/rss.0"); r1=$(peak "$T/rss.1")
if [ -n "$p1" ] && [ -n "$r0" ] && [ -n "$r1" ] &&
   [ "$r0" -lt $((p1 - 31360)) ] && [ "$r1" -lt $((p1 - 31360)) ]; then ok
    echo "mpi.sh: peak RSS one process $p1 kB, ranks $r0 and $r1 kB"
else bad "peak RSS kB: one process ${p1:-?}, ranks ${r0:-?} and ${r1:-?} (want both below $((${p1:-0} - 31360)))"; fi

# --- one step of the seed configuration (mlp, rmsprop, batch 128) on 2
# ranks = one process with the same global batch. RMSprop's first step is
# lr g / (sqrt(0.1 g^2) + 1e-7): where g is near 0 it magnifies the
# rounding of the sum by up to lr / 1e-7 = 1e4, so its weights are held to
# 1e-5 in the Euclidean norm (and 1e-4 of the largest weight element-wise);
# with sgd the step is linear in g and every weight must agree to 1e-5.
for seed in 42 7; do
    for o in rmsprop sgd; do
        expect_ok "1 step, 1 process, $o seed $seed" "$DIGITS" train --data "$R" --limit 128 --epochs 1 --threads 1 --seed $seed --optimizer $o --out "$T/s1.nn"
        expect_ok "1 step, 2 ranks, $o seed $seed" mpi 2 train --data "$R" --limit 128 --epochs 1 --threads 1 --seed $seed --optimizer $o --out "$T/s2.nn"
        "$MODEL_DIFF" "$T/s1.nn" "$T/s2.nn" >"$T/diff" || bad "model_diff failed"
        if [ $o = sgd ]; then below "$(field rel "$T/diff")" 1e-5 && ok || bad "1 step sgd seed $seed: $(cat "$T/diff")"
        else below "$(field l2rel "$T/diff")" 1e-5 && below "$(field rel "$T/diff")" 1e-4 && ok ||
            bad "1 step rmsprop seed $seed: $(cat "$T/diff")"; fi
    done
done

# --- ranks on one machine split a two-layer perceptron's hidden units
# (the mlp: above), else share one copy of the weights (docs/distributed.md)
expect_ok "split units" mpi 2 train --data "$R" --limit 256 --epochs 1 --threads 1 --json --out "$T/su.nn"
grep -q '"split_units": true, ' "$T/out" && grep -q '"shared_weights": false' "$T/out" && ok ||
    bad "2 ranks, mlp: want \"split_units\": true: $(cat "$T/out")"
MLP3="dense(64,relu) dense(32,relu) dense(10,softmax)"
expect_ok "shared weights" mpi 2 train --data "$R" --model "$MLP3" --limit 256 --epochs 1 --threads 1 --json --out "$T/sw.nn"
grep -q '"shared_weights": true' "$T/out" && grep -q '"split_units": false' "$T/out" && ok ||
    bad "2 ranks, 3 dense layers: want \"shared_weights\": true: $(cat "$T/out")"
expect_ok "plain --json" "$DIGITS" train --data "$R" --limit 256 --epochs 1 --threads 1 --json --out "$T/sw1.nn"
grep -q '"shared_weights": false, "split_units": false' "$T/out" && ok || bad "1 process: want both false: $(cat "$T/out")"
# split units over several epochs (the joins between them) and 3 ranks
# with 40 units (16, 16, 8): one process's weights to 1e-5
M40="dense(40,tanh) dense(10,softmax)"
for o in sgd adam; do
    expect_ok "40 units, 1 process, $o" "$DIGITS" train --data "$R" --model "$M40" --optimizer $o --limit 640 --batch-size 64 --epochs 3 --threads 1 --out "$T/u1.nn"
    expect_ok "40 units, 3 ranks, $o" mpi 3 train --data "$R" --model "$M40" --optimizer $o --limit 640 --batch-size 64 --epochs 3 --threads 1 --out "$T/u3.nn"
    "$MODEL_DIFF" "$T/u1.nn" "$T/u3.nn" >"$T/diff" && below "$(field rel "$T/diff")" 1e-5 && ok ||
        bad "split units, 3 ranks, $o: $(cat "$T/diff")"
done

# --- the test set in parts, one a rank (667, 667 and 666 of 2000 images),
# summed: the loss and accuracy `digits evaluate` gives the saved model
lossacc() { sed -n 's/.*"test_loss": \([0-9.]*\), "test_acc": \([0-9.]*\).*/\1 \2/p' "$T/out"; }
expect_ok "3 ranks, test set in parts" mpi 3 train --data "$S" --limit 300 --epochs 1 --threads 1 --json --out "$T/ev3.nn"
t3=$(lossacc)
expect_ok "evaluate the 3 ranks' model" "$DIGITS" evaluate --data "$S" --model "$T/ev3.nn" --threads 1 --json
ev=$(lossacc)
[ -n "$t3" ] && [ "$t3" = "$ev" ] && ok || bad "3 ranks' test set: '$t3', digits evaluate: '$ev'"

# --- dropout and augmentation: each rank draws what one process draws for
# its rows; 3 ranks on batches of 64, 64 and 2 (the last leaves rank 0
# without a row)
CNN="conv2d(4,3,relu) maxpool(2) flatten dropout(0.3) dense(10,softmax)"
expect_ok "cnn 1 process" "$DIGITS" train --data "$S" --model "$CNN" --optimizer sgd --augment --limit 130 --batch-size 64 --epochs 1 --threads 1 --out "$T/c1.nn"
expect_ok "cnn 3 ranks" mpi 3 train --data "$S" --model "$CNN" --optimizer sgd --augment --limit 130 --batch-size 64 --epochs 1 --threads 1 --out "$T/c3.nn"
"$MODEL_DIFF" "$T/c1.nn" "$T/c3.nn" >"$T/diff" && below "$(field rel "$T/diff")" 1e-5 && ok ||
    bad "dropout + augment, 3 ranks: $(cat "$T/diff")"

# --- batch normalisation: each rank normalises its rows by their own
# statistics (docs/distributed.md), so 2 ranks differ from one process, a
# little; its moving statistics are averaged, and the ranks stay identical
# (the tool compares their weights after training, or fails).
BN="conv2d(4,3) batchnorm maxpool(2) flatten dense(10,softmax)"
expect_ok "batchnorm 1 process" "$DIGITS" train --data "$R" --model "$BN" --limit 512 --epochs 1 --threads 1 --out "$T/b1.nn"
expect_ok "batchnorm 2 ranks" mpi 2 train --data "$R" --model "$BN" --limit 512 --epochs 1 --threads 1 --json --out "$T/b2.nn"
# its forward pass writes the moving statistics: no shared weights
grep -q '"shared_weights": false' "$T/out" && ok || bad "batchnorm, 2 ranks: want \"shared_weights\": false: $(cat "$T/out")"
"$MODEL_DIFF" "$T/b1.nn" "$T/b2.nn" >"$T/diff" || bad "model_diff failed"
d=$(field l2rel "$T/diff")
below 1e-6 "$d" && below "$d" 0.05 && ok || bad "batchnorm, 2 ranks: want a small, non-zero difference: $(cat "$T/diff")"

# --- the same test accuracy after 5 epochs (within 0.002), for each seed
# of $ACC_SEEDS, on the first 5000 training images (bounded for a 2-core
# machine; the full 60000 are in bench/run.sh)
for seed in $ACC_SEEDS; do
    expect_ok "5 epochs, 1 process, seed $seed" "$DIGITS" train --data "$R" --limit 5000 --threads 1 --seed $seed --out "$T/a1.nn"
    a1=$(sed -n 's/^test_acc: //p' "$T/out")
    expect_ok "5 epochs, 2 ranks, seed $seed" mpi 2 train --data "$R" --limit 5000 --threads 1 --seed $seed --out "$T/a2.nn"
    a2=$(sed -n 's/^test_acc: //p' "$T/out")
    awk -v a="$a1" -v b="$a2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d <= 0.002) }' &&
        ok || bad "5 epochs seed $seed: test_acc $a1 (1 process) vs $a2 (2 ranks)"
done

# --- stopping: SIGUSR1 to mpirun (forwarded to every rank, no deadline)
# stops all ranks after the same step; rank 0 saves a checkpoint; resuming
# with 2 ranks ends with the model of an uninterrupted 2-rank run, bit for
# bit. (In the background: no `timeout`, whose pid would get the signals;
# a watchdog instead.)
M="dense(32,relu) dropout(0.2) dense(10,softmax)"
run2() { mpi 2 train --data "$S" --model "$M" --epochs 8 --batch-size 8 --threads 1 --checkpoint-every 0 "$@"; }
watchdog() { (sleep 300; kill -9 "$1") >/dev/null 2>&1 & wd=$!; }
wait_for() { i=0; while [ ! -e "$1" ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i + 1)); done; }
mpirun -q --oversubscribe -x ASAN_OPTIONS -np 2 "$DIGITS" train --data "$S" --model "$M" --epochs 8 --batch-size 8 --threads 1 --checkpoint-every 0 --out "$T/int.nn" >"$T/int.out" 2>"$T/int.err" &
pid=$!; watchdog $pid
wait_for "$T/int.nn.ckpt"
kill -USR1 $pid; wait $pid; rc=$?; kill $wd 2>/dev/null
if [ $rc -eq 138 ] && grep -q 'checkpoint saved to .*int.nn.ckpt; resume with' "$T/int.err" &&
   grep -q 'mpirun -np 2 digits train .*--resume$' "$T/int.err" && [ ! -e "$T/int.nn" ]; then ok
else bad "SIGUSR1 to mpirun: exit $rc, $(tail -2 "$T/int.err")"; fi
cp "$T/int.nn.ckpt" "$T/int1.nn.ckpt"
expect_ok "resume with 2 ranks" run2 --out "$T/int.nn" --resume
expect_ok "uninterrupted 2 ranks" run2 --out "$T/whole.nn"
cmp -s "$T/int.nn" "$T/whole.nn" && ok || bad "resumed 2-rank model differs from an uninterrupted 2-rank run"
[ ! -e "$T/int.nn.ckpt" ] && ok || bad "checkpoint left after the resumed run"
# The position is global: the same checkpoint resumes in one process too,
# with the same batches and draws (sums in another order).
expect_ok "resume with 1 process" "$DIGITS" train --data "$S" --model "$M" --epochs 8 --batch-size 8 --threads 1 --checkpoint-every 0 --out "$T/int1.nn" --resume
"$MODEL_DIFF" "$T/whole.nn" "$T/int1.nn" >"$T/diff" && below "$(field l2rel "$T/diff")" 1e-3 && ok ||
    bad "2-rank checkpoint resumed by one process: $(cat "$T/diff")"
# Ctrl-C (SIGINT) to mpirun: Open MPI sends every rank SIGTERM, then
# SIGKILL a second later; the ranks agree to stop after the step and rank 0
# saves the checkpoint in time. mpirun passes the SIGTERM on about 2 s
# after the SIGINT (Open MPI 4.1.4), so the run must outlast that: 2,000
# epochs, about 40 s, that the interruption cuts short.
mpirun -q --oversubscribe -x ASAN_OPTIONS -np 2 "$DIGITS" train --data "$S" --model "$M" --epochs 2000 --batch-size 8 --threads 1 --checkpoint-every 0 --out "$T/c.nn" >"$T/c.out" 2>"$T/c.err" &
pid=$!; watchdog $pid
wait_for "$T/c.nn.ckpt"; rm -f "$T/c.nn.ckpt"
kill -INT $pid; wait $pid; rc=$?; kill $wd 2>/dev/null
[ $rc -ne 0 ] && grep -q 'checkpoint saved to .*c.nn.ckpt; resume with' "$T/c.err" && [ -s "$T/c.nn.ckpt" ] && [ ! -e "$T/c.nn" ] && ok ||
    bad "Ctrl-C to mpirun: exit $rc, $(tail -2 "$T/c.err")"

# --- faults: one line on stderr, exit status 1, no hang
B=$T/broken; mkdir -p "$B"; cp "$S"/t10k-* "$S/train-labels-idx1-ubyte" "$B/"
head -c 5000 "$S/train-images-idx3-ubyte" >"$B/train-images-idx3-ubyte"
expect_fail "rank 1 has a broken file" "^digits: rank 1: .*broken/train-images-idx3-ubyte: truncated" \
    timeout 120 mpirun -q --oversubscribe -x ASAN_OPTIONS -np 1 "$DIGITS" train --data "$S" --epochs 1 --threads 1 --out "$T/f.nn" : \
    -np 1 "$DIGITS" train --data "$B" --epochs 1 --threads 1 --out "$T/f.nn"
O=$T/other; make_set "$O" 2000
expect_fail "ranks have different data" "the training data differ between ranks \(rank 1 and rank 0\)" \
    timeout 120 mpirun -q --oversubscribe -x ASAN_OPTIONS -np 1 "$DIGITS" train --data "$S" --epochs 1 --threads 1 --out "$T/f.nn" : \
    -np 1 "$DIGITS" train --data "$O" --epochs 1 --threads 1 --out "$T/f.nn"
expect_fail "ranks have different options" "options .* differ between ranks \(rank 1 and rank 0\)" \
    timeout 120 mpirun -q --oversubscribe -x ASAN_OPTIONS -np 1 "$DIGITS" train --data "$S" --epochs 1 --threads 1 --out "$T/f.nn" : \
    -np 1 "$DIGITS" train --data "$S" --epochs 2 --threads 1 --out "$T/f.nn"
expect_fail "rank 1 has a bad --threads" "^digits: rank 1: --threads: expected an integer" \
    timeout 120 mpirun -q --oversubscribe -x ASAN_OPTIONS -np 1 "$DIGITS" train --data "$S" --epochs 1 --threads 1 --out "$T/f.nn" : \
    -np 1 "$DIGITS" train --data "$S" --epochs 1 --threads x --out "$T/f.nn"
expect_fail "rank 0's checkpoint folder is missing" "--checkpoint: no such folder" \
    mpi 2 train --data "$S" --limit 300 --epochs 2 --threads 1 --checkpoint "$T/nowhere/f.ckpt" --out "$T/f.nn"
# rank 0 cannot write a checkpoint mid-run (its folder went): every rank
# stops after that epoch, rank 0's line, status 1
mkdir -p "$T/gone"
mpirun -q --oversubscribe -x ASAN_OPTIONS -np 2 "$DIGITS" train --data "$S" --model "$M" --epochs 50 --batch-size 16 --threads 1 --checkpoint-every 0 --checkpoint "$T/gone/g.ckpt" --out "$T/g.nn" >"$T/g.out" 2>"$T/g.err" &
pid=$!; watchdog $pid
wait_for "$T/gone/g.ckpt"
# (rm can race a checkpoint's temporary file into the folder: again)
while [ -e "$T/gone" ]; do rm -rf "$T/gone" 2>/dev/null; done
wait $pid; rc=$?; kill $wd 2>/dev/null
[ $rc -eq 1 ] && [ "$(wc -l <"$T/g.err")" -eq 1 ] && grep -q '^digits: .*gone/g.ckpt' "$T/g.err" && [ ! -e "$T/g.nn" ] && ok ||
    bad "checkpoint write failing mid-run: exit $rc, $(cat "$T/g.err")"
expect_fail "resume without a checkpoint" "f.nn.ckpt: cannot open" mpi 2 train --data "$S" --threads 1 --out "$T/f.nn" --resume
# A killed rank: Open MPI ends the whole job; rank 0, stuck in the step's
# allreduce, says so in one line before mpirun's SIGKILL. (Open MPI's
# shared-memory transport may add its own "Read -1, expected N" line.)
mpirun -q --oversubscribe -x ASAN_OPTIONS -np 2 "$DIGITS" train --data "$S" --model "$M" --epochs 50 --batch-size 16 --threads 1 --checkpoint-every 0 --out "$T/k.nn" >"$T/k.out" 2>"$T/k.err" &
pid=$!; watchdog $pid
wait_for "$T/k.nn.ckpt"
set -- $(ps -o pid= --ppid $pid)
t0=$(date +%s)
[ $# -eq 2 ] && kill -9 "$2"
wait $pid; rc=$?; kill $wd 2>/dev/null
t1=$(date +%s)
[ $# -eq 2 ] && [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $((t1 - t0)) -lt 60 ] && [ ! -e "$T/k.nn" ] &&
    [ "$(grep -c '^digits:' "$T/k.err")" -eq 1 ] && grep -q '^digits: the job was ended by mpirun .*a rank failed or was killed.*k.nn.ckpt' "$T/k.err" && ok ||
    bad "killed rank: $# ranks, exit $rc after $((t1 - t0)) s: $(cat "$T/k.err")"

finish "mpi CLI tests"
