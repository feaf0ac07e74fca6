#!/bin/sh
# Crash and concurrency tests for model saving (issue 6):
#  - kill -9 at random moments while a model is saved over and over: the
#    file is always one complete earlier save (byte for byte), loads and
#    predicts as it did, and at most the killed writer's temporary is left
#    (the next save removes it);
#  - kill -9 at random moments during `digits train --out`: the previous
#    file stays intact;
#  - two writers of the same file at once (two `digits train`, two save
#    loops): the result is always one complete model, never a mix.
# Usage: DIGITS=build/digits SAVE_LOOP=build/tests/cli/save_loop \
#        sh tests/cli/crash.sh   [KILLS=30]
set -u
. "$(dirname "$0")/lib.sh"
SAVE_LOOP=${SAVE_LOOP:-build/tests/cli/save_loop}
KILLS=${KILLS:-30}

# a random delay of 0 to $1 milliseconds, as "0.123" (for sleep)
rand_sleep() {
    r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
    ms=$((r % $1))
    sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
}
tmps() { ls "$1".tmp.* 2>/dev/null | wc -l; }

# --- a small data set (50 random 28x28 images) and a picture to predict
be32() { printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"; }
D=$T/data; mkdir -p "$D"
{ printf '\000\000\010\003'; be32 50; be32 28; be32 28; head -c 39200 /dev/urandom; } >"$D/train-images-idx3-ubyte"
{ printf '\000\000\010\001'; be32 50; i=0; while [ $i -lt 50 ]; do printf "\\$(printf %03o $((i % 10)))"; i=$((i + 1)); done; } >"$D/train-labels-idx1-ubyte"
cp "$D/train-images-idx3-ubyte" "$D/t10k-images-idx3-ubyte"
cp "$D/train-labels-idx1-ubyte" "$D/t10k-labels-idx1-ubyte"
{ printf 'P5\n28 28\n255\n'; head -c 784 /dev/urandom; } >"$T/x.pgm"

train() { # SEED OUT: the seed mlp, one epoch, one thread (deterministic)
    "$DIGITS" train --data "$D" --epochs 1 --threads 1 --seed "$1" --out "$2" >/dev/null 2>&1
}
train 1 "$T/A.nn" && train 2 "$T/B.nn" || { echo "FAIL: cannot train"; exit 1; }
# references: what save_loop writes for each (with optimizer state)
"$SAVE_LOOP" "$T/refA.nn" 1 "$T/A.nn" && "$SAVE_LOOP" "$T/refB.nn" 1 "$T/B.nn" || { echo "FAIL: save_loop"; exit 1; }
pA=$("$DIGITS" predict --model "$T/refA.nn" "$T/x.pgm")
pB=$("$DIGITS" predict --model "$T/refB.nn" "$T/x.pgm")
[ -n "$pA" ] && [ -n "$pB" ] && ok || bad "predict on the reference models"

# check FILE WHAT: byte for byte refA or refB, and it predicts as that one
# did. FILE is copied first (one open: a writer may rename a new file over
# it meanwhile, but never changes an open file), then the copy is checked.
check() {
    cp "$1" "$T/snap.nn"
    if cmp -s "$T/snap.nn" "$T/refA.nn"; then want=$pA
    elif cmp -s "$T/snap.nn" "$T/refB.nn"; then want=$pB
    else bad "$2: $1 is neither complete model ($(wc -c <"$T/snap.nn") bytes)"; return; fi
    got=$("$DIGITS" predict --model "$T/snap.nn" "$T/x.pgm" 2>&1)
    [ "$got" = "$want" ] && ok || bad "$2: predicts '$got', want '$want'"
}

# --- kill -9 during repeated saves
M=$T/m.nn
cp "$T/refA.nn" "$M"
inside=0 k=0
while [ $k -lt "$KILLS" ]; do
    k=$((k + 1))
    "$SAVE_LOOP" "$M" 0 "$T/A.nn" "$T/B.nn" &
    pid=$!
    rand_sleep 400
    kill -9 $pid; wait $pid 2>/dev/null
    check "$M" "kill $k"
    n=$(tmps "$M")
    [ "$n" -gt 0 ] && inside=$((inside + 1))
    [ "$n" -le 1 ] && ok || bad "kill $k: $n temporary files (at most the killed one)"
done
echo "crash: $inside of $KILLS kills landed inside a save"
[ $inside -gt 0 ] && ok || bad "no kill landed inside a save: the test proves nothing"
"$SAVE_LOOP" "$M" 1 "$T/B.nn"
cmp -s "$M" "$T/refB.nn" && ok || bad "a save after the kills"
[ "$(tmps "$M")" -eq 0 ] && ok || bad "stale temporaries left after a complete save: $(ls "$M".tmp.*)"

# --- kill -9 during `digits train --out`: the old file survives intact
R=$T/r.nn
train 3 "$T/R3.nn"
cp "$T/R3.nn" "$R"
k=0
while [ $k -lt 8 ]; do
    k=$((k + 1))
    "$DIGITS" train --data "$D" --epochs 1 --threads 1 --seed 3 --out "$R" >/dev/null 2>&1 &
    pid=$!
    rand_sleep 600
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    cmp -s "$R" "$T/R3.nn" && ok || bad "train killed ($k): $R changed or damaged"
    "$DIGITS" summary --model "$R" >/dev/null 2>&1 && ok || bad "train killed ($k): $R does not load"
done

# --- two writers at once
k=0
while [ $k -lt 3 ]; do
    k=$((k + 1))
    rm -f "$T/c.nn"
    train 1 "$T/c.nn" & p1=$!
    train 2 "$T/c.nn" & p2=$!
    wait $p1 && wait $p2 || bad "concurrent train ($k) failed"
    if cmp -s "$T/c.nn" "$T/A.nn" || cmp -s "$T/c.nn" "$T/B.nn"; then ok
    else bad "concurrent train ($k): result is neither run's model"; fi
    "$DIGITS" summary --model "$T/c.nn" >/dev/null 2>&1 && ok || bad "concurrent train ($k): does not load"
done
C=$T/c2.nn
"$SAVE_LOOP" "$C" 1 "$T/A.nn"
"$SAVE_LOOP" "$C" 40 "$T/A.nn" & p1=$!
"$SAVE_LOOP" "$C" 40 "$T/B.nn" & p2=$!
while kill -0 $p1 2>/dev/null || kill -0 $p2 2>/dev/null; do
    check "$C" "concurrent saves"   # read while both write
done
wait $p1 && wait $p2 && ok || bad "concurrent save loops failed"
check "$C" "after concurrent saves"
[ "$(tmps "$C")" -eq 0 ] && ok || bad "temporaries left by concurrent writers"

finish crash
