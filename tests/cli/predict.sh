#!/bin/sh
# CLI tests for `digits predict` and the pictures of `evaluate --errors /
# --confusion` and `train --plot`: answers, JSON, blank pictures, standard
# input, one clear line and exit status 1 for every unreadable picture
# (others still processed), and, when MNIST is present, the round trip:
# a test digit written to PNG and read back through predict gives the same
# answer as evaluate gives for it.
# Usage: DIGITS=build/digits sh tests/cli/predict.sh
# Ends with "N passed, N failed"; exits non-zero if any failed.
set -u
. "$(dirname "$0")/lib.sh"
ROOT=$(pwd)

# --- bytes: be32 N, and a PGM picture writer (P5 is read by predict too)
oct() { printf "\\$(printf %03o "$1")"; }
be32() { oct $(($1 >> 24 & 255)); oct $(($1 >> 16 & 255)); oct $(($1 >> 8 & 255)); oct $(($1 & 255)); }
# pgm FILE W H PAPER INK: a W x H picture of PAPER with a thick ink bar
pgm() {
    { printf 'P5\n%d %d\n255\n' "$2" "$3"
      y=0; while [ $y -lt "$3" ]; do
          x=0; while [ $x -lt "$2" ]; do
              if [ $x -ge $(($2 * 2 / 5)) ] && [ $x -lt $(($2 * 3 / 5)) ] &&
                 [ $y -ge $(($3 / 5)) ] && [ $y -lt $(($3 * 4 / 5)) ]; then oct "$5"; else oct "$4"; fi
              x=$((x + 1)); done
          y=$((y + 1)); done; } >"$1"
}
idx_header() { t=$1 r=$2; shift 2; printf "\\000\\000"; oct "$t"; oct "$r"; for d in "$@"; do be32 "$d"; done; }

# --- a model: real MNIST if present (also used for the round trip), else a
# tiny one trained on random 28x28 data (answers meaningless, paths tested)
D=$T/data
mkdir -p "$D"
if [ -f "$MNIST/t10k-images-idx3-ubyte" ] || [ -f "$MNIST/t10k-images-idx3-ubyte.gz" ]; then
    real=1
    expect_ok "train on MNIST" "$DIGITS" train --data "$MNIST" --limit 6000 --epochs 2 --out "$T/m.nn" --plot "$T/curves.svg" --validation-split 0.1
else
    real=0
    for s in train t10k; do
        { idx_header 8 3 200 28 28; head -c $((200 * 784)) /dev/urandom; } >"$D/$s-images-idx3-ubyte"
        { idx_header 8 1 200; i=0; while [ $i -lt 200 ]; do oct $((i % 10)); i=$((i + 1)); done; } >"$D/$s-labels-idx1-ubyte"
    done
    expect_ok "train tiny" "$DIGITS" train --data "$D" --model "dense(16,relu) dense(10,softmax)" --epochs 1 --out "$T/m.nn" --plot "$T/curves.svg"
fi
M=$T/m.nn

# --- pictures of train and evaluate
grep -q '<svg' "$T/curves.svg" && grep -q '</svg>' "$T/curves.svg" && ok || bad "train --plot wrote no SVG"
DATA=$D; [ $real = 1 ] && DATA=$MNIST
expect_ok "evaluate pictures" "$DIGITS" evaluate --model "$M" --data "$DATA" --errors "$T/errors.png" --confusion "$T/confusion.png"
for f in errors confusion; do
    [ "$(head -c 8 "$T/$f.png" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ] && ok || bad "$f.png is not a PNG"
    expect_ok "$f.png reads back" "$DIGITS" predict --model "$M" "$T/$f.png"
done
expect_ok "confusion svg" "$DIGITS" evaluate --model "$M" --data "$DATA" --confusion "$T/c.svg"
grep -q '</svg>' "$T/c.svg" && ok || bad "evaluate --confusion .svg"
expect_fail "errors as svg" "--errors: .*\\.png" "$DIGITS" evaluate --model "$M" --data "$DATA" --errors "$T/e.svg"
expect_fail "plot as pdf" "--plot: .*\\.svg or \\.png" "$DIGITS" train --data "$DATA" --plot "$T/p.pdf"
expect_fail "picture into missing folder" "--confusion: no such folder: .*/no/such" "$DIGITS" evaluate --model "$M" --data "$DATA" --confusion "$T/no/such/c.png"
ls "$T"/*.tmp.* >/dev/null 2>&1 && bad "temporary files left behind" || ok

# --- predict: answers
pgm "$T/dark.pgm" 60 80 230 20
pgm "$T/light.pgm" 60 80 10 240
pgm "$T/blank.pgm" 40 40 255 255
expect_ok "predict" "$DIGITS" predict --model "$M" "$T/dark.pgm" "$T/light.pgm"
grep -Eq "dark.pgm: [0-9] \\(0\\.[0-9]{3}|1\\.000\\)" "$T/out" && ok || bad "predict line: $(cat "$T/out")"
[ "$(sed 's/.*: //' "$T/out" | sort -u | wc -l)" -eq 1 ] && ok || bad "dark-on-light and light-on-dark differ: $(cat "$T/out")"
expect_ok "predict blank" "$DIGITS" predict --model "$M" "$T/blank.pgm"
grep -qx ".*blank.pgm: no digit found" "$T/out" && ok || bad "blank: $(cat "$T/out")"
expect_ok "predict json" "$DIGITS" predict --model "$M" --json --top 3 "$T/dark.pgm" "$T/blank.pgm"
if [ "$(wc -l <"$T/out")" -eq 2 ] && head -1 "$T/out" | grep -Eq '^\{"file": ".*dark.pgm", "digit": [0-9], "probabilities": \[([0-9.]+, ){9}[0-9.]+\], "top": \[\{"digit": [0-9], "probability": [0-9.]+\}, \{.*\}, \{.*\}\], "not_digit": null\}$' &&
   tail -1 "$T/out" | grep -q '"digit": null'; then ok; else bad "predict --json: $(cat "$T/out")"; fi
expect_ok "predict top" "$DIGITS" predict --model "$M" --top 3 "$T/dark.pgm"
grep -Eq ': [0-9] \([0-9.]+\), then [0-9] \([0-9.]+\), [0-9] \([0-9.]+\)$' "$T/out" && ok || bad "--top 3: $(cat "$T/out")"
expect_ok "predict show" "$DIGITS" predict --model "$M" --show "$T/dark.pgm"
[ "$(grep -c '^  |.*|$' "$T/out")" -eq 28 ] && ok || bad "--show: not 28 rows"
"$DIGITS" predict --model "$M" - <"$T/dark.pgm" >"$T/out" 2>"$T/err" && grep -Eq '^-: [0-9] ' "$T/out" && ok || bad "stdin: $(cat "$T/out" "$T/err")"

# --- predict: errors, one line each, the other pictures still answered
printf 'hello, not a picture\n' >"$T/text.png"
: >"$T/empty.png"
head -c 60 "$T/errors.png" >"$T/trunc.png"
{ printf '\211PNG\r\n\032\n'; be32 13; printf 'IHDR'; be32 100000; be32 100000; printf '\010\000\000\000\000'; be32 0; } >"$T/huge.png"
expect_fail "not an image" "text.png: not an image" "$DIGITS" predict --model "$M" "$T/text.png"
expect_fail "empty file" "empty.png: empty" "$DIGITS" predict --model "$M" "$T/empty.png"
expect_fail "truncated png" "trunc.png: " "$DIGITS" predict --model "$M" "$T/trunc.png"
expect_fail "huge png" "huge.png: .*100000x100000.*limit" "$DIGITS" predict --model "$M" "$T/huge.png"
expect_fail "missing file" "nope.png: cannot open" "$DIGITS" predict --model "$M" "$T/nope.png"
expect_fail "stdin empty" "standard input: empty" "$DIGITS" predict --model "$M" - </dev/null
expect_fail "mixed" "text.png: not an image" "$DIGITS" predict --model "$M" "$T/dark.pgm" "$T/text.png" "$T/light.pgm"
[ "$(wc -l <"$T/out")" -eq 2 ] && ok || bad "mixed: the good pictures were not all answered: $(cat "$T/out")"
expect_fail "no image" "no image given" "$DIGITS" predict --model "$M"
expect_fail "stdin twice" "'-'.*2 times" "$DIGITS" predict --model "$M" - -
expect_fail "bad top" "--top" "$DIGITS" predict --model "$M" --top 0 "$T/dark.pgm"
expect_fail "bad ink" "--ink" "$DIGITS" predict --model "$M" --ink blue "$T/dark.pgm"
expect_fail "missing model" "nomodel.nn: cannot open" "$DIGITS" predict --model "$T/nomodel.nn" "$T/dark.pgm"
expect_ok "predict help" "$DIGITS" predict --help
# a model for 10x10 pictures cannot read digits
mkdir -p "$T/small"
for s in train t10k; do
    { idx_header 8 3 20 10 10; head -c 2000 /dev/urandom; } >"$T/small/$s-images-idx3-ubyte"
    { idx_header 8 1 20; i=0; while [ $i -lt 20 ]; do oct $((i % 10)); i=$((i + 1)); done; } >"$T/small/$s-labels-idx1-ubyte"
done
expect_ok "train 10x10" "$DIGITS" train --data "$T/small" --model "dense(10,softmax)" --epochs 1 --out "$T/small.nn"
expect_fail "wrong model" "small.nn: the model takes 100 inputs" "$DIGITS" predict --model "$T/small.nn" "$T/dark.pgm"

# --- round trip: MNIST test digits as PNG through predict, as PGM through
# predict --raw, and through evaluate on a one-digit data set; all must
# give the same answer.
if [ $real = 1 ]; then
    DIGITS_DATA=$MNIST "$ROOT/scripts/make-user-digits" --plain "$T/png" 12 >"$T/log" 2>&1 || bad "make-user-digits: $(tail -3 "$T/log")"
    imgs=$MNIST/t10k-images-idx3-ubyte
    [ -f "$imgs" ] || { gzip -dc "$imgs.gz" >"$T/t10k-images"; imgs=$T/t10k-images; }
    for f in "$T"/png/*.png; do
        [ -f "$f" ] || { bad "no PNGs rendered"; break; }
        b=$(basename "$f" .png); i=$(expr "$b" : '0*\([0-9][0-9]*\)-' || true); i=${i:-0}; label=${b#*-}
        mkdir -p "$T/one"
        { idx_header 8 3 1 28 28; tail -c +$((16 + i * 784 + 1)) "$imgs" | head -c 784; } >"$T/one/t10k-images-idx3-ubyte"
        { idx_header 8 1 1; oct "$label"; } >"$T/one/t10k-labels-idx1-ubyte"
        # one sample: the single 1 in the confusion matrix is its answer
        ev=$("$DIGITS" evaluate --model "$M" --data "$T/one" --json |
             sed -n 's/.*"confusion": \(\[\[[^"]*\]\]\).*/\1/p' | tr -d '[] ' | tr ',' '\n' |
             awk '$1 == 1 { print (NR - 1) % 10; exit }')
        pr=$("$DIGITS" predict --model "$M" "$f" | sed 's/.*: \([0-9]\) .*/\1/')
        [ -n "$ev" ] && [ "$ev" = "$pr" ] && ok || bad "round trip $b: evaluate says '$ev', predict says '$pr'"
        # the same 784 bytes as a PGM through predict --raw: the very input
        { printf 'P5\n28 28\n255\n'; tail -c +$((16 + i * 784 + 1)) "$imgs" | head -c 784; } >"$T/raw.pgm"
        raw=$("$DIGITS" predict --raw --model "$M" "$T/raw.pgm" | sed 's/.*: \([0-9]\) .*/\1/')
        [ -n "$ev" ] && [ "$ev" = "$raw" ] && ok || bad "round trip $b: evaluate says '$ev', predict --raw says '$raw'"
    done
else
    echo "SKIP: round trip needs MNIST in $MNIST"
fi

finish predict
