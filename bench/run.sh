#!/bin/sh
# bench/run.sh - `make bench`: libnn/digits vs PyTorch, side by side, one run.
# See bench/README.md. Environment: BENCH_RUNS (default 3), BENCH_DATA
# (default data/mnist), BENCH_SINGLE (one-image predictions, default 1000),
# TORCH_THREADS (torch.set_num_threads, default 1), BENCH_CNN (images in
# the cnn epoch of part (d), default 54000; 0 skips it), TORCH_CNN_THREADS
# (default 2).
set -u
cd "$(dirname "$0")/.." || exit 1

RUNS=${BENCH_RUNS:-3}
DATA=${BENCH_DATA:-data/mnist}
SINGLE=${BENCH_SINGLE:-1000}
CNN_N=${BENCH_CNN:-54000}
PY=/usr/bin/python3
EPOCHS=5 BATCH=128 SEED=42
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM

die() { echo "bench: $*" >&2; exit 1; }
[ -x build/digits ] && [ -f build/libnn.a ] || die "build first (make)"
[ -f "$DATA/train-images-idx3-ubyte" ] || die "no MNIST in $DATA"
command -v pkg-config >/dev/null && pkg-config --exists openblas ||
    die "needs OpenBLAS (libopenblas-dev) and pkg-config"
# Built by the Makefile (make bench, or make build/bench/infer ...).
O=${O:-build}
make -s O="$O" "$O/bench/sgemm" "$O/bench/infer" "$O/bench/int8" >&2 ||
    die "cannot build bench/sgemm.c, bench/infer.c and bench/int8.c"
cp "$O/bench/sgemm" "$O/bench/infer" "$O/bench/int8" "$TMP/"

# The OpenBLAS kernels build/digits runs with (it may choose newer ones than
# OpenBLAS' own on a CPU that OpenBLAS does not know: src/cli/blas_tune.c;
# `digits --version` names them). Exported for every run here, PyTorch's
# included (Debian's torch uses the same OpenBLAS, so it runs the same
# kernel family).
TUNED=""
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    OPENBLAS_CORETYPE=$(build/digits --version | sed -n 's/^blas kernels: //p')
    export OPENBLAS_CORETYPE
    TUNED="OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE "
fi
CORE=$OPENBLAS_CORETYPE
# ... and waiting OpenMP threads spin briefly, then sleep.
if [ -z "${GOMP_SPINCOUNT:-}" ] && [ -z "${OMP_WAIT_POLICY:-}" ]; then
    GOMP_SPINCOUNT=3000; export GOMP_SPINCOUNT
    TUNED="${TUNED}GOMP_SPINCOUNT=3000"
fi

# Peak memory of our process: GNU time if it works, else none.
GTIME=""
if /usr/bin/time -f %M -o "$TMP/t" true 2>/dev/null; then GTIME=/usr/bin/time
fi

TORCH=""
if "$PY" -c 'import torch, numpy' 2>/dev/null; then
    TORCH=$("$PY" -c 'import torch; print(torch.__version__)')
fi

now() { date +%s.%N; }
val() { sed -n "s/^$1=//p" "$2"; }          # key=value line of a file
median() {                                  # median of the numbers in file $1
    [ -s "$1" ] || { echo -; return; }
    sort -g "$1" | awk '{a[NR]=$1} END {
        if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'
}

MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
echo "machine: ${MODEL:-unknown}, $(nproc) cores; OpenBLAS kernels $CORE" \
     "(OpenBLAS' own choice: $(env -u OPENBLAS_CORETYPE "$TMP/sgemm" core | sed 's/^core=//'))"
echo "settings: ${TUNED:-none added}; runs: $RUNS (medians)"
if [ -n "$TORCH" ]; then
    echo "pytorch: $TORCH, set_num_threads(${TORCH_THREADS:-1}), OpenBLAS threads default"
else
    echo "pytorch: not installed for $PY (apt-get install python3-torch); skipped"
fi
[ -n "$GTIME" ] || echo "note: GNU time missing (apt-get install time): no peak RSS for ours"
echo

i=0
while [ "$i" -lt "$RUNS" ]; do
    i=$((i + 1))
    echo "run $i/$RUNS ..." >&2
    # (a) training: our whole process
    t0=$(now)
    if [ -n "$GTIME" ]; then
        $GTIME -f %M -o "$TMP/rss" build/digits train --data "$DATA" \
            --epochs $EPOCHS --batch-size $BATCH --optimizer rmsprop \
            --seed $SEED --out "$TMP/x.nn" --json >"$TMP/json" 2>/dev/null
    else
        build/digits train --data "$DATA" --epochs $EPOCHS \
            --batch-size $BATCH --optimizer rmsprop --seed $SEED \
            --out "$TMP/x.nn" --json >"$TMP/json" 2>/dev/null
    fi || die "digits train failed"
    t1=$(now)
    echo "$t0 $t1" | awk '{print $2-$1}' >>"$TMP/o_wall"
    sed -n 's/.*"train_seconds": *\([0-9.]*\).*/\1/p' "$TMP/json" >>"$TMP/o_fit"
    sed -n 's/.*"test_acc": *\([0-9.]*\).*/\1/p' "$TMP/json" >>"$TMP/o_acc"
    [ -n "$GTIME" ] && tail -1 "$TMP/rss" | awk '{print $1/1024}' >>"$TMP/o_rss"
    # (a) training: PyTorch's loop
    if [ -n "$TORCH" ]; then
        "$PY" bench/torch_mlp.py "$DATA" train $EPOCHS $BATCH $SEED \
            >"$TMP/tt" 2>/dev/null || die "torch_mlp.py train failed"
        val train_seconds "$TMP/tt" >>"$TMP/t_wall"
        val test_acc "$TMP/tt" >>"$TMP/t_acc"
        val peak_mb "$TMP/tt" >>"$TMP/t_rss"
    fi
    # (b) inference
    "$TMP/infer" "$TMP/x.nn" "$DATA" "$SINGLE" >"$TMP/oi" || die "infer failed"
    val latency_us "$TMP/oi" >>"$TMP/o_lat"
    val images_per_s "$TMP/oi" >>"$TMP/o_ips"
    if [ -n "$TORCH" ]; then
        "$PY" bench/torch_mlp.py "$DATA" infer "$SINGLE" >"$TMP/ti" 2>/dev/null ||
            die "torch_mlp.py infer failed"
        val latency_us "$TMP/ti" >>"$TMP/t_lat"
        val images_per_s "$TMP/ti" >>"$TMP/t_ips"
    fi
    # (d) one epoch of the cnn preset, per image
    if [ "$CNN_N" -gt 0 ]; then
        build/digits train --data "$DATA" --model cnn --epochs 1 \
            --batch-size $BATCH --seed $SEED --limit "$CNN_N" \
            --out "$TMP/c.nn" --json >"$TMP/cj" 2>/dev/null ||
            die "digits train --model cnn failed"
        sed -n 's/.*"train_seconds": *\([0-9.]*\).*/\1/p' "$TMP/cj" |
            awk -v n="$CNN_N" '{print $1 / n * 1e6}' >>"$TMP/o_cnn"
        if [ -n "$TORCH" ]; then
            OPENBLAS_NUM_THREADS=1 "$PY" bench/torch_cnn.py "$DATA" \
                "$CNN_N" $BATCH $SEED >"$TMP/tc" 2>/dev/null ||
                die "torch_cnn.py failed"
            val us_per_image "$TMP/tc" >>"$TMP/t_cnn"
        fi
    fi
    # (e) float vs int8 inference of the trained mlp, one process
    "$TMP/int8" "$TMP/x.nn" "$DATA" >"$TMP/q8" || die "int8 failed"
    val float_images_per_s "$TMP/q8" >>"$TMP/q_f"
    val int8_images_per_s "$TMP/q8" >>"$TMP/q_i"
    val portable_images_per_s "$TMP/q8" >>"$TMP/q_p"
    val int8_acc "$TMP/q8" >>"$TMP/q_acc"
    # (c) sgemm on the same shapes
    "$TMP/sgemm" $BATCH 200 >"$TMP/sg"
    val fwd_gflops "$TMP/sg" >>"$TMP/s_fwd"
    val dw_gflops "$TMP/sg" >>"$TMP/s_dw"
    val gflops "$TMP/sg" >>"$TMP/s_all"
done

# Matrix-product flops of the whole fit: per sample 2*784*512 (forward) +
# 2*784*512 (dW) + 3 * 2*512*10 (second layer: forward, dW, dX).
NTRAIN=$(od -An -j4 -N4 -tu1 "$DATA/train-images-idx3-ubyte" |
         awk '{print (($1*256+$2)*256+$3)*256+$4}')
FLOP=$(awk -v e=$EPOCHS -v n="$NTRAIN" \
    'BEGIN {print e*n*(2*784*512*2 + 3*2*512*10)}')
FIT=$(median "$TMP/o_fit")
awk -v f="$FLOP" '{print f/$1/1e9}' "$TMP/o_fit" >"$TMP/o_gf"

row() {  # label ours torch  (ratio ours/torch when both are numbers)
    awk -v l="$1" -v a="$2" -v b="$3" 'BEGIN {
        r = (a != "-" && b != "-" && b + 0 != 0) ? sprintf("%.2f", a / b) : "-"
        printf "%-38s %12s %12s %8s\n", l, a, b, r }'
}
fmt() { awk -v x="$1" -v f="$2" 'BEGIN { if (x == "-") print x; else printf f, x }'; }

printf "%-38s %12s %12s %8s\n" "" ours pytorch ratio
row "(a) train wall s (ours: whole process)" \
    "$(fmt "$(median "$TMP/o_wall")" %.2f)" "$(fmt "$(median "$TMP/t_wall")" %.2f)"
row "    ours: fit only (train_seconds)" "$(fmt "$FIT" %.2f)" "-"
row "    test accuracy" "$(fmt "$(median "$TMP/o_acc")" %.4f)" "$(fmt "$(median "$TMP/t_acc")" %.4f)"
row "    peak RSS MB" "$(fmt "$(median "$TMP/o_rss")" %.1f)" "$(fmt "$(median "$TMP/t_rss")" %.1f)"
row "(b) latency, one image, us" "$(fmt "$(median "$TMP/o_lat")" %.1f)" "$(fmt "$(median "$TMP/t_lat")" %.1f)"
row "    throughput, batches of 1000, img/s" "$(fmt "$(median "$TMP/o_ips")" %.0f)" "$(fmt "$(median "$TMP/t_ips")" %.0f)"
if [ "$CNN_N" -gt 0 ]; then
    row "(d) cnn epoch, us per image (${CNN_N})" \
        "$(fmt "$(median "$TMP/o_cnn")" %.1f)" "$(fmt "$(median "$TMP/t_cnn")" %.1f)"
fi
echo
printf "%-38s %12s %12s %8s\n" "" ours sgemm ratio
row "(c) GFLOP/s (fit: $(awk -v f="$FLOP" 'BEGIN{printf "%.3f", f/1e12}') TFLOP)" \
    "$(fmt "$(median "$TMP/o_gf")" %.1f)" "$(fmt "$(median "$TMP/s_all")" %.1f)"
row "    sgemm ${BATCH}x784*784x512 (forward)" "-" "$(fmt "$(median "$TMP/s_fwd")" %.1f)"
row "    sgemm 784x${BATCH}*${BATCH}x512 (dW)" "-" "$(fmt "$(median "$TMP/s_dw")" %.1f)"
echo
printf "%-38s %12s %12s %8s\n" "" int8 float ratio
row "(e) mlp img/s ($(val isa "$TMP/q8"))" \
    "$(fmt "$(median "$TMP/q_i")" %.0f)" "$(fmt "$(median "$TMP/q_f")" %.0f)"
row "    int8 plain C kernels, img/s" "$(fmt "$(median "$TMP/q_p")" %.0f)" \
    "$(fmt "$(median "$TMP/q_f")" %.0f)"
row "    test accuracy (int8, float)" "$(fmt "$(median "$TMP/q_acc")" %.4f)" \
    "$(fmt "$(median "$TMP/o_acc")" %.4f)"

# (f) data-parallel training over MPI, when Open MPI is installed
if command -v mpirun >/dev/null 2>&1 && command -v mpicc >/dev/null 2>&1; then
    echo
    BENCH_DATA=$DATA sh bench/mpi.sh
fi
