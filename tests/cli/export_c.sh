#!/bin/sh
# CLI tests for `digits export-c` (and evaluate --int8): the mlp and cnn
# presets and a model with every other layer kind, trained briefly on
# MNIST, exported as float and int8 C, compiled with gcc and clang
# (-std=c99 -Wall -Wextra -Werror -pedantic) and run on test images:
#   float: the library's class for every image, scores within 1e-5
#   int8:  exactly the classes and scores of `evaluate --int8`
# The int8 cnn is also built for a Cortex-M4 (arm-none-eabi-gcc, newlib)
# and run under qemu-system-arm -M mps2-an386 with semihosting: the same
# bytes again; its flash and scratch are checked against 48 KB / 16 KB,
# and one prediction's cycle estimate (qemu -icount) is printed.
# Then hostile input: one line on stderr, exit 1.
# Usage: DIGITS=build/digits sh tests/cli/export_c.sh  (EXPORT_N images,
# default 500; EXPORT_ARM_N under qemu, default 200)
set -u
. "$(dirname "$0")/lib.sh"
ROOT=$(pwd)
N=${EXPORT_N:-500}
ARM_N=${EXPORT_ARM_N:-200}
HOST_MAIN=$ROOT/tests/export/host_main.c
CFLAGS99="-std=c99 -Wall -Wextra -Werror -pedantic"
CAL="--calibrate 300 --data $MNIST"

[ -f "$MNIST/t10k-images-idx3-ubyte" ] || { bad "no MNIST in $MNIST (scripts/fetch-mnist)"; finish "export-c"; exit 1; }
tail -c +17 "$MNIST/t10k-images-idx3-ubyte" | head -c $((N * 784)) >"$T/test.raw"

# max |difference| of the scores and count of differing classes (line by line)
compare() { # A B -> "classes DIFF max MAX lines N"
    awk 'NR == FNR { a[FNR] = $0; next }
         { split(a[FNR], x, " "); if (x[1] != $1) c++
           for (j = 2; j <= NF; j++) { d = x[j] - $j; if (d < 0) d = -d; if (d > m) m = d } n++ }
         END { printf "classes %d max %g lines %d\n", c, m, n }' "$1" "$2"
}

# check_model NAME SPEC TRAIN_LIMIT: train, export, compile, compare
# (lib.sh's helpers use $name: ours is $mn)
check_model() {
    mn=$1 spec=$2 limit=$3
    m=$T/$mn.nn
    expect_ok "$mn: train" "$DIGITS" train --model "$spec" --epochs 1 --limit "$limit" \
        --data "$MNIST" --out "$m"
    expect_ok "$mn: evaluate" "$DIGITS" evaluate --model "$m" --data "$MNIST" --limit "$N" --scores "$T/$mn.f.txt"
    expect_ok "$mn: evaluate --int8" "$DIGITS" evaluate --model "$m" --int8 $CAL --limit "$N" --scores "$T/$mn.q.txt"
    for kind in f q; do
        out=$T/$mn.$kind
        if [ $kind = q ]; then
            expect_ok "$mn: export-c --int8" "$DIGITS" export-c --model "$m" --int8 $CAL --out "$out"
        else
            expect_ok "$mn: export-c" "$DIGITS" export-c --model "$m" --out "$out"
        fi
        grep -q "^int model_predict(const uint8_t \*pixels, void \*scratch, float \*scores);" "$out/model.h" &&
            grep -q "^#define MODEL_INPUT_SIZE   784 " "$out/model.h" &&
            grep -q "^#define MODEL_OUTPUTS      10$" "$out/model.h" &&
            grep -q "^#define MODEL_SCRATCH_BYTES [0-9]" "$out/model.h" && ok ||
            bad "$mn.$kind: model.h lacks the interface"
        # plain C: no allocation, no mutable globals, only stdint.h (+ math.h for float)
        if grep -Eq "malloc|#pragma|cblas|^(static )?(float|int8_t|int32_t|uint32_t) [a-z0-9_]+\[" "$out/model.c"; then
            bad "$mn.$kind: model.c allocates, uses pragmas/BLAS or has mutable tables"; else ok; fi
        incs=$(grep '^#include' "$out/model.c" | tr '\n' ' ')
        want='#include <stdint.h> #include "model.h" '
        [ $kind = f ] && want="#include <math.h> $want"
        [ "$incs" = "$want" ] && ok || bad "$mn.$kind: includes '$incs'"
        for cc in gcc clang; do
            if $cc $CFLAGS99 -O2 -I"$out" -o "$out/run-$cc" "$HOST_MAIN" "$out/model.c" -lm 2>"$T/cc.err"; then ok; else
                bad "$mn.$kind: $cc: $(head -c 400 "$T/cc.err")"; continue; fi
            if "$out/run-$cc" "$T/test.raw" >"$out/$cc.txt"; then ok; else bad "$mn.$kind: run-$cc failed"; fi
            r=$(compare "$T/$mn.$kind.txt" "$out/$cc.txt")
            if [ $kind = q ]; then
                cmp -s "$T/$mn.$kind.txt" "$out/$cc.txt" && ok || bad "$mn int8 $cc: not identical to evaluate --int8 ($r)"
            else
                echo "$r" | awk -v n="$N" '{ exit !($2 == 0 && $4 <= 1e-5 && $6 == n) }' && ok ||
                    bad "$mn float $cc: $r (want classes 0, max <= 1e-5, lines $N)"
            fi
        done
    done
    echo "export-c: $mn: float export vs library: $(compare "$T/$mn.f.txt" "$T/$mn.f/gcc.txt")"
}

check_model mlp mlp 2000
check_model cnn cnn 2000
# every other layer kind: both paddings, strides, both pools (fused and on
# their own), batch normalization folded and not, dropout, the activations
check_model zoo "conv2d(6,3,tanh,stride=2,padding=same) batchnorm avgpool(2) conv2d(8,3,padding=same) batchnorm maxpool(2,stride=1) conv2d(8,2,sigmoid) maxpool(2) flatten dropout(0.2) dense(16,relu) dense(12) batchnorm dense(10,softmax)" 1000
check_model gap "conv2d(8,3) leakyrelu(0.2) maxpool(2) conv2d(16,3,relu,padding=same) gap dense(24) leakyrelu dense(10,softmax)" 1000

# --- predict --int8: a test digit as a picture; the int8 model's answer
# is a probability distribution, and the digit is the one evaluate --int8
# gives for that image (MNIST digits are already what preprocessing makes)
{ printf 'P5\n28 28\n255\n'; head -c 784 "$T/test.raw"; } >"$T/digit0.pgm"
expect_ok "predict --int8" "$DIGITS" predict --model "$T/cnn.nn" --int8 $CAL --json "$T/digit0.pgm"
want=$(head -1 "$T/cnn.q.txt" | cut -d' ' -f1)
grep -q "\"digit\": $want," "$T/out" && ok || bad "predict --int8: want digit $want: $(cat "$T/out")"
sed 's/.*"probabilities": \[\([^]]*\)\].*/\1/' "$T/out" | tr ',' '\n' |
    awk '{ s += $1 } END { exit !(s > 0.999 && s < 1.001) }' && ok || bad "predict --int8: probabilities do not sum to 1"

# --- the int8 cnn on a Cortex-M4 under qemu
ARMCC="arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -Os"
Q=$T/cnn.q
if ! command -v arm-none-eabi-gcc >/dev/null || ! command -v qemu-system-arm >/dev/null; then
    bad "arm-none-eabi-gcc / qemu-system-arm missing (scripts/install-deps)"
else
    $ARMCC $CFLAGS99 -ffunction-sections -fdata-sections -c -I"$Q" -o "$Q/model.arm.o" "$Q/model.c" &&
    $ARMCC $CFLAGS99 -DNN_SYSTICK -c -I"$Q" -o "$Q/main.arm.o" "$HOST_MAIN" &&
    $ARMCC $CFLAGS99 -c -o "$Q/startup.arm.o" "$ROOT/tests/arm/startup.c" &&
    $ARMCC --specs=rdimon.specs -Wl,--gc-sections -Wl,-u,vectors -T "$ROOT/tests/arm/mps2.ld" \
        -o "$Q/prog.elf" "$Q/main.arm.o" "$Q/startup.arm.o" "$Q/model.arm.o" 2>"$T/cc.err" &&
        ok || bad "arm build: $(head -c 400 "$T/cc.err")"
    # flash: the model's code and constants (text + data of its object)
    flash=$(arm-none-eabi-size "$Q/model.arm.o" | awk 'NR == 2 { print $1 + $2 }')
    scratch=$(awk '/^#define MODEL_SCRATCH_BYTES/ { print $3 }' "$Q/model.h")
    echo "export-c: int8 cnn on Cortex-M4: flash $flash bytes (text+data of model.o), scratch $scratch bytes"
    [ "$flash" -le 49152 ] && [ "$scratch" -le 16384 ] && ok || bad "int8 cnn: flash $flash > 48 KB or scratch $scratch > 16 KB"
    head -c $((ARM_N * 784)) "$T/test.raw" >"$T/arm.raw"
    if timeout 300 qemu-system-arm -M mps2-an386 -nographic -icount shift=0 \
        -semihosting-config enable=on,target=native,arg=prog,arg="$T/arm.raw" \
        -kernel "$Q/prog.elf" >"$Q/arm.txt" 2>"$Q/arm.err"; then ok; else bad "qemu run failed: $(head -c 300 "$Q/arm.err")"; fi
    head -n "$ARM_N" "$T/cnn.q.txt" | cmp -s - "$Q/arm.txt" && [ "$(grep -c . "$Q/arm.txt")" -eq "$ARM_N" ] && ok ||
        bad "int8 cnn on Cortex-M4: not identical to evaluate --int8 ($(compare "$T/cnn.q.txt" "$Q/arm.txt"))"
    # qemu -icount shift=0: one instruction per virtual ns; SysTick runs on
    # the 25 MHz system clock, so one tick is about 40 instructions
    ticks=$(sed -n 's/^systick_ticks: //p' "$Q/arm.err")
    [ -n "$ticks" ] && ok || bad "no systick_ticks from the Cortex-M4 run"
    echo "export-c: int8 cnn, one prediction under qemu -icount: about $((${ticks:-0} * 40)) instructions (an estimate, not M4 cycles)"
fi

# --- hostile input
m=$T/mlp.nn
expect_fail "name not an identifier" "--name: '1abc' is not a C identifier" "$DIGITS" export-c --model "$m" --name 1abc --out "$T/o1"
expect_fail "name with a dash" "--name: 'a-b'" "$DIGITS" export-c --model "$m" --name a-b --out "$T/o1"
expect_fail "name a keyword" "--name: 'int'" "$DIGITS" export-c --model "$m" --name int --out "$T/o1"
expect_fail "name too long" "--name" "$DIGITS" export-c --model "$m" --name "$(printf 'a%.0s' $(seq 70))" --out "$T/o1"
: >"$T/afile"
expect_fail "out is a file" "--out: '.*afile' exists and is not a folder" "$DIGITS" export-c --model "$m" --out "$T/afile"
expect_fail "out in a missing folder" "--out: cannot create folder" "$DIGITS" export-c --model "$m" --out "$T/none/deeper"
expect_fail "no --out" "--out DIR is required" "$DIGITS" export-c --model "$m"
expect_fail "bad --calibrate" "--calibrate: expected an integer" "$DIGITS" export-c --model "$m" --int8 --calibrate 0 --out "$T/o1"
expect_fail "missing model" "nope.nn" "$DIGITS" export-c --model "$T/nope.nn" --out "$T/o1"
expect_ok "big model" "$DIGITS" train --model "dense(6000,relu) dense(10,softmax)" --epochs 1 --limit 32 --data "$MNIST" --out "$T/big.nn"
expect_fail "model too large" "at most 4194304" "$DIGITS" export-c --model "$T/big.nn" --out "$T/o2"
[ ! -e "$T/o2/model.c" ] && ok || bad "too large: model.c written anyway"
# a file that is not ours to replace stays: the output is written atomically
mkdir -p "$T/o3" && expect_ok "export twice" "$DIGITS" export-c --model "$m" --name twice --out "$T/o3"
expect_ok "export twice (again)" "$DIGITS" export-c --model "$m" --name twice --out "$T/o3"
[ "$(ls "$T/o3" | tr '\n' ' ')" = "twice.c twice.h " ] && ok || bad "o3 holds: $(ls "$T/o3")"

finish "export-c"
