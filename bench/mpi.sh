#!/bin/sh
# bench/mpi.sh - data-parallel training (docs/distributed.md), side by side
# in one run: the seed configuration (mlp, batch 128, 5 epochs) as
#   digits train --threads 1,  digits train --threads 2,
#   mpirun -np 2 digits train --threads 1,
# and, for the machine's ceiling, two independent --threads 1 runs at once,
# interleaved, medians of BENCH_MPI_RUNS (default 3), the same for one cnn
# epoch (CNN_LIMIT images, default 12800), then the numbers the
# cost model starts from: mpirun's start-up, one step's MPI_Allreduce of
# the mlp's and the cnn's gradients on 2 ranks (shared memory), and one
# process's time per step at per-rank batch sizes.
# Environment: BENCH_DATA (default data/mnist), BENCH_MPI_EPOCHS (default
# 5), BENCH_MPI_RUNS (default 3), CNN_LIMIT, MPIRUN_FLAGS (added to every
# mpirun).
# Called by bench/run.sh (make bench) when mpirun is installed.
set -u
cd "$(dirname "$0")/.." || exit 1
DATA=${BENCH_DATA:-data/mnist}
EPOCHS=${BENCH_MPI_EPOCHS:-5}
RUNS=${BENCH_MPI_RUNS:-3}
FLAGS=${MPIRUN_FLAGS:-}
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
die() { echo "bench/mpi: $*" >&2; exit 1; }
command -v mpirun >/dev/null && command -v mpicc >/dev/null ||
    die "needs Open MPI (apt-get install openmpi-bin libopenmpi-dev)"
[ -x build/digits ] || die "build first (make)"
[ -f "$DATA/train-images-idx3-ubyte" ] || [ -f "$DATA/train-images-idx3-ubyte.gz" ] ||
    die "no MNIST in $DATA"
# Root (CI, containers) needs Open MPI's consent.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpicc -O2 -o "$TMP/allreduce" bench/allreduce.c || die "cannot build bench/allreduce.c"

median() {
    [ -s "$1" ] || { echo -; return; }
    sort -g "$1" | awk '{a[NR]=$1} END {
        if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'
}
json() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" "$2"; }
now() { date +%s.%N; }

echo "data-parallel training: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
     "Open MPI $(mpirun --version 2>/dev/null | sed -n 's/.*(Open MPI) //p')"
echo "seed configuration: mlp, batch 128, $EPOCHS epochs, seed 42; $RUNS runs (medians)"
T="train --data $DATA --epochs $EPOCHS --seed 42 --json"
for r in $(seq "$RUNS"); do
    for v in t1 t2 np2 pair; do
        t0=$(now)
        case $v in
        t1) build/digits $T --threads 1 --out "$TMP/m.nn" >"$TMP/out" 2>/dev/null ;;
        t2) build/digits $T --threads 2 --out "$TMP/m.nn" >"$TMP/out" 2>/dev/null ;;
        # shellcheck disable=SC2086
        np2) mpirun -q $FLAGS -np 2 build/digits $T --threads 1 --out "$TMP/m.nn" >"$TMP/out" 2>/dev/null ;;
        # the machine's ceiling: two independent one-thread trainings at once
        pair) taskset -c 1 build/digits $T --threads 1 --out "$TMP/p.nn" >/dev/null 2>&1 &
              p=$!
              taskset -c 0 build/digits $T --threads 1 --out "$TMP/m.nn" >"$TMP/out" 2>/dev/null &&
                  wait $p ;;
        esac || die "$v run failed"
        t1=$(now)
        echo "$t1 - $t0" | bc -l >>"$TMP/${v}_wall"
        json train_seconds "$TMP/out" >>"$TMP/${v}_fit"
        json test_acc "$TMP/out" >>"$TMP/${v}_acc"
    done
done
label() { # VARIANT: the command it stands for
    case $1 in
    t1) echo "digits train --threads 1" ;;
    t2) echo "digits train --threads 2" ;;
    np2) echo "mpirun -np 2 digits train --threads 1" ;;
    pair) echo "2 x digits train --threads 1, at once" ;;
    esac
}
printf "%-40s %10s %10s %10s\n" "" "wall s" "fit s" "test_acc"
for v in t1 t2 np2 pair; do
    printf "%-40s %10.2f %10.2f %10.4f\n" "$(label $v)" "$(median "$TMP/${v}_wall")" \
        "$(median "$TMP/${v}_fit")" "$(median "$TMP/${v}_acc")"
done
awk -v a="$(median "$TMP/t1_wall")" -v b="$(median "$TMP/t2_wall")" -v c="$(median "$TMP/np2_wall")" \
    'BEGIN { printf "speed-up of mpirun -np 2 (wall): %.2fx over --threads 1 (goal >= 1.7), %.2fx over --threads 2 (goal >= 1)\n", a / c, b / c }'
# two runs in the time of `pair` against one in t1's: what the two cores
# give two programs that share nothing, the most any split of one can get
awk -v a="$(median "$TMP/t1_wall")" -v p="$(median "$TMP/pair_wall")" \
    'BEGIN { printf "the machine'"'"'s ceiling (2 independent runs at once): %.2fx the work of --threads 1 in its time\n", 2 * a / p }'

# The cnn: 12x the compute per sample and 12x fewer gradient bytes; one
# epoch of CNN_LIMIT images (default 12800, 100 steps), fit seconds.
CL=${CNN_LIMIT:-12800}
C="train --data $DATA --model cnn --epochs 1 --limit $CL --seed 42 --json"
for r in $(seq "$RUNS"); do
    for v in t1 t2 np2; do
        case $v in
        t1) build/digits $C --threads 1 --out "$TMP/c.nn" >"$TMP/out" 2>/dev/null ;;
        t2) build/digits $C --threads 2 --out "$TMP/c.nn" >"$TMP/out" 2>/dev/null ;;
        # shellcheck disable=SC2086
        np2) mpirun -q $FLAGS -np 2 build/digits $C --threads 1 --out "$TMP/c.nn" >"$TMP/out" 2>/dev/null ;;
        esac || die "cnn $v run failed"
        json train_seconds "$TMP/out" >>"$TMP/cnn_${v}_fit"
        json test_acc "$TMP/out" >>"$TMP/cnn_${v}_acc"
    done
done
echo "cnn, 1 epoch of $CL images, batch 128:"
for v in t1 t2 np2; do
    printf "%-40s %10s %10.2f %10.4f\n" "$(label $v)" "" "$(median "$TMP/cnn_${v}_fit")" "$(median "$TMP/cnn_${v}_acc")"
done
awk -v a="$(median "$TMP/cnn_t1_fit")" -v b="$(median "$TMP/cnn_t2_fit")" -v c="$(median "$TMP/cnn_np2_fit")" \
    'BEGIN { printf "cnn speed-up of mpirun -np 2 (fit): %.2fx over --threads 1, %.2fx over --threads 2\n", a / c, b / c }'

echo
echo "cost-model inputs"
for i in 1 2 3 4 5; do
    t0=$(now); mpirun -q -np 2 true; t1=$(now); echo "$t1 - $t0" | bc -l >>"$TMP/up"
    t0=$(now); mpirun -q -np 2 build/digits --version >/dev/null; t1=$(now); echo "$t1 - $t0" | bc -l >>"$TMP/upd"
done
printf "mpirun -np 2 start-up: true %.3f s, digits --version %.3f s (median of 5)\n" \
    "$(median "$TMP/up")" "$(median "$TMP/upd")"
for n in 407050 34826; do
    # shellcheck disable=SC2086
    mpirun -q $FLAGS -np 2 "$TMP/allreduce" $n 300
done | sed 's/^/allreduce, 2 ranks, shared memory: /'
for model in mlp cnn; do
    line="$model, 1 process, --threads 1, ms per step at batch:"
    for b in 128 64 32 16 8 4 2; do
        steps=$([ $model = mlp ] && echo 100 || echo 12)
        build/digits train --data "$DATA" --model $model --threads 1 --epochs 1 \
            --batch-size $b --limit $((b * steps)) --json --out "$TMP/s.nn" >"$TMP/out" 2>/dev/null ||
            die "$model step run failed"
        s=$(sed -n 's/.*"epochs": \[{[^}]*"seconds": \([0-9.]*\).*/\1/p' "$TMP/out")
        line="$line $b:$(echo "$s * 1000 / $steps" | bc -l | xargs printf %.2f)"
    done
    echo "$line"
done
