#!/bin/sh
# CLI tests for the answers the tool gives (issue 10): a model whose outputs
# are NaN is an error, --json output is strict JSON in every subcommand
# (checked by tests/cli/jsoncheck: no NaN tokens, names that are not UTF-8
# escaped), top-down BMP files, pictures that are not digits.
# Usage: DIGITS=build/digits JSONCHECK=build/tests/cli/jsoncheck \
#        NAN_MODEL=build/tests/cli/nan_model sh tests/cli/answers.sh
# Ends with "N passed, N failed"; exits non-zero if any failed.
set -u
. "$(dirname "$0")/lib.sh"
JSONCHECK=${JSONCHECK:-build/tests/cli/jsoncheck}
NAN_MODEL=${NAN_MODEL:-build/tests/cli/nan_model}

oct() { printf "\\$(printf %03o "$1")"; }
be32() { oct $(($1 >> 24 & 255)); oct $(($1 >> 16 & 255)); oct $(($1 >> 8 & 255)); oct $(($1 & 255)); }
le32() { oct $(($1 & 255)); oct $(($1 >> 8 & 255)); oct $(($1 >> 16 & 255)); oct $(($1 >> 24 & 255)); }
idx_header() { t=$1 r=$2; shift 2; printf "\\000\\000"; oct "$t"; oct "$r"; for d in "$@"; do be32 "$d"; done; }
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
# json NAME CMD...: CMD exits 0 and its stdout is strict JSON
json() {
    name=$1; shift
    if "$@" >"$T/out" 2>"$T/err"; then
        "$JSONCHECK" <"$T/out" 2>"$T/jerr" && ok || bad "$name: not valid JSON: $(cat "$T/jerr"): $(head -c 300 "$T/out")"
    else bad "$name: exit $? ($(head -c 300 "$T/err"))"; fi
}

# --- a tiny data set of random 28x28 images and a model trained on it
D=$T/data
mkdir -p "$D"
for s in train t10k; do
    { idx_header 8 3 100 28 28; head -c $((100 * 784)) /dev/urandom; } >"$D/$s-images-idx3-ubyte"
    { idx_header 8 1 100; i=0; while [ $i -lt 100 ]; do oct $((i % 10)); i=$((i + 1)); done; } >"$D/$s-labels-idx1-ubyte"
done
M=$T/m.nn
expect_ok "train tiny" "$DIGITS" train --data "$D" --model "dense(16,relu) dense(10,softmax)" --epochs 1 --out "$M"
pgm "$T/bar.pgm" 40 50 230 20

# --- the checker itself refuses what lax parsers accept
for bad_json in '{"a": nan}' '{"a": -nan}' '[1,]' '{"a": 1' '"\001"'; do
    printf '%s' "$bad_json" | "$JSONCHECK" 2>/dev/null && bad "jsoncheck accepts $bad_json" || ok
done
printf '"\377"' | "$JSONCHECK" 2>/dev/null && bad "jsoncheck accepts a byte that is not UTF-8" || ok
printf '{"a": [1, 2.5e-3, null, true], "b": "\303\251\\u00ff"}\n{}\n' | "$JSONCHECK" && ok || bad "jsoncheck refuses valid JSON"

# --- a model whose outputs are NaN: an error, not class 0 (-nan)
"$NAN_MODEL" "$T/nan.nn" || bad "nan_model failed"
expect_fail "predict NaN model" "nan.nn: the model's output for .*bar.pgm is (NaN|infinite), not a probability" "$DIGITS" predict --model "$T/nan.nn" "$T/bar.pgm"
[ -s "$T/out" ] && bad "predict NaN model printed an answer: $(cat "$T/out")" || ok
expect_fail "predict NaN model --json" "not a probability" "$DIGITS" predict --model "$T/nan.nn" --json "$T/bar.pgm"
grep -qi nan "$T/out" && bad "NaN in --json output: $(cat "$T/out")" || ok
expect_fail "evaluate NaN model" "nan.nn: the model's output for sample [0-9]+ is (NaN|infinite)" "$DIGITS" evaluate --model "$T/nan.nn" --data "$D"
[ -s "$T/out" ] && bad "evaluate NaN model printed results: $(head -2 "$T/out")" || ok

# --- --json is strict JSON in every subcommand
json "train --json" "$DIGITS" train --data "$D" --model "dense(10,softmax)" --epochs 1 --out "$T/j.nn" --validation-split 0.2 --json
json "evaluate --json" "$DIGITS" evaluate --model "$M" --data "$D" --json
json "evaluate --json --classes" "$DIGITS" evaluate --model "$M" --data "$D" --json --classes "$(printf 'z\351ro'),1,2,3,4,5,6,7,8,9"
json "predict --json" "$DIGITS" predict --model "$M" --json --top 3 "$T/bar.pgm"
# a file name and class names that are not UTF-8 (Latin-1 bytes), and a
# newline and a quote in a name
latin=$(printf 'caf\351')
cp "$T/bar.pgm" "$T/$latin.pgm"
json "predict --json, Latin-1 file name" "$DIGITS" predict --model "$M" --json "$T/$latin.pgm"
grep -q 'caf\\u00e9.pgm' "$T/out" && ok || bad "Latin-1 byte not escaped as \\u00e9: $(cat "$T/out")"
json "predict --json, Latin-1 classes" "$DIGITS" predict --model "$M" --json --top 10 --classes "$(printf '\3770,\3771,\3772,\3773,\3774,\3775,\3776,\3777,\3778,\3779')" "$T/bar.pgm"
nl='a
"b'
cp "$T/bar.pgm" "$T/$nl.pgm"
json "predict --json, newline and quote in a name" "$DIGITS" predict --model "$M" --json "$T/$nl.pgm"
[ "$(wc -l <"$T/out")" -eq 1 ] && ok || bad "a newline in a name split the JSON line"

# --- top-down BMP (negative height): decodes, the right way up
bmp() {  # bmp FILE HEIGHT(signed): 24-bit 8x8 picture, a dark bar in rows 0..3 as stored
    { printf 'BM'; le32 $((54 + 192)); le32 0; le32 54; le32 40; le32 8; le32 $(($2 & 0xFFFFFFFF)); printf '\001\000\030\000'
      le32 0; le32 192; le32 2835; le32 2835; le32 0; le32 0
      y=0; while [ $y -lt 8 ]; do x=0; while [ $x -lt 8 ]; do
          if [ $y -lt 4 ] && [ $x -ge 2 ] && [ $x -lt 6 ]; then printf '\024\024\024'; else printf '\346\346\346'; fi
          x=$((x + 1)); done; y=$((y + 1)); done; } >"$1"
}
bmp "$T/td.bmp" -8
bmp "$T/bu.bmp" 8
expect_ok "top-down BMP" "$DIGITS" predict --model "$M" --show "$T/td.bmp"
grep -q 'box 4x4 at 2,0 ' "$T/out" && ok || bad "top-down BMP: ink not in the top rows: $(head -2 "$T/out")"
expect_ok "bottom-up BMP" "$DIGITS" predict --model "$M" --show "$T/bu.bmp"
grep -q 'box 4x4 at 2,4 ' "$T/out" && ok || bad "bottom-up BMP: ink not in the bottom rows: $(head -2 "$T/out")"

# --- a picture that is not a digit: reported as such, in text and JSON
# checker FILE: a 96x96 checkerboard of 16-pixel squares in a paper margin
checker() {
    { printf 'P5\n96 96\n255\n'
      LC_ALL=C awk 'BEGIN { for (y = 0; y < 96; y++) for (x = 0; x < 96; x++) {
          ink = x >= 8 && x < 88 && y >= 8 && y < 88 && (int(x / 16) + int(y / 16)) % 2
          printf "%c", ink ? 30 : 230 } }'; } >"$1"
}
checker "$T/checker.pgm"
expect_ok "predict pattern" "$DIGITS" predict --model "$M" "$T/checker.pgm" "$T/bar.pgm"
grep -Eq 'checker.pgm: not a digit \(.+\)$' "$T/out" && ok || bad "pattern not reported as not a digit: $(cat "$T/out")"
grep -Eq 'bar.pgm: [0-9] \(' "$T/out" && ok || bad "a bar (a 1) reported as not a digit: $(cat "$T/out")"
expect_ok "predict pattern --top" "$DIGITS" predict --model "$M" --top 2 "$T/checker.pgm"
grep -Eq 'checker.pgm: not a digit \(.+\); the model would say [0-9] \([0-9.]+\), then [0-9] ' "$T/out" && ok || bad "--top on a pattern: $(cat "$T/out")"
json "predict pattern --json" "$DIGITS" predict --model "$M" --json "$T/checker.pgm" "$T/bar.pgm"
head -1 "$T/out" | grep -Eq '"digit": null, "probabilities": \[.*\], "not_digit": "[a-z].*"\}$' && ok || bad "pattern --json: $(head -1 "$T/out")"
tail -1 "$T/out" | grep -Eq '"digit": [0-9], "probabilities": \[.*\], "not_digit": null\}$' && ok || bad "digit --json: $(tail -1 "$T/out")"
expect_ok "predict --any" "$DIGITS" predict --model "$M" --any "$T/checker.pgm"
grep -Eq 'checker.pgm: [0-9] \(' "$T/out" && ok || bad "--any: $(cat "$T/out")"

# --- messages and help
# every option a command's --help lists appears in its usage lines
for cmd in info train evaluate summary predict fetch export-c; do
    "$DIGITS" "$cmd" --help >"$T/help" 2>&1 || bad "$cmd --help fails"
    usage=$(sed '/^$/q' "$T/help")
    for o in $(grep -Eo '^  --[a-z-]+' "$T/help" | tr -d ' '); do
        [ "$o" = --help ] && continue
        printf '%s' "$usage" | grep -q -- "$o" && ok || bad "$cmd: $o is in --help but not in the usage line"
    done
    "$DIGITS" help "$cmd" >"$T/help2" 2>&1 && cmp -s "$T/help" "$T/help2" && ok || bad "digits help $cmd differs from digits $cmd --help"
done
expect_fail "help unknown" "help: unknown command 'nope'" "$DIGITS" help nope
json "info --json" "$DIGITS" info --data "$D" --json
grep -q '"train": {"n": 100, "shape": \[28, 28, 1\], "label_counts": \[10, 10,' "$T/out" && ok || bad "info --json: $(cat "$T/out")"
json "summary --json" "$DIGITS" summary --model cnn --json
grep -q '"layers": \[{"name": "conv2d", "type": "Conv2D", "output_shape": \[26, 26, 32\], "params": 320}' "$T/out" && ok || bad "summary --json: $(head -c 300 "$T/out")"
# --classes names the classes in summary as in evaluate and predict
expect_ok "summary --classes names" "$DIGITS" summary --model mlp --classes cat,dog,bird
grep -q '(None, 3) ' "$T/out" && ok || bad "summary --classes cat,dog,bird: $(cat "$T/out")"
expect_ok "summary --classes N" "$DIGITS" summary --model mlp --classes 4
grep -q '(None, 4) ' "$T/out" && ok || bad "summary --classes 4"
expect_fail "one class name" "--classes: 1 name given, the model has 10 classes" "$DIGITS" predict --model "$M" --classes solo "$T/bar.pgm"
# no library step names (fit:, compile:) in front of users
expect_fail "no softmax" "^digits: --model: .*softmax" "$DIGITS" train --data "$D" --model "dense(10,relu)" --epochs 1 --out "$T/ns.nn"
grep -Eq 'compile:|fit:' "$T/err" && bad "library step in the message: $(cat "$T/err")" || ok
# human output and errors keep their order in one log
printf 'not a picture\n' >"$T/text.png"
"$DIGITS" predict --model "$M" "$T/bar.pgm" "$T/text.png" "$T/bar.pgm" >"$T/log" 2>&1
sed -n 1p "$T/log" | grep -q 'bar.pgm: ' && sed -n 2p "$T/log" | grep -q 'text.png: not an image' &&
  sed -n 3p "$T/log" | grep -q 'bar.pgm: ' && ok || bad "stdout and stderr out of order: $(cat "$T/log")"

finish answers
