#!/bin/sh
# The real-browser test of `digits serve`: trains a small model on MNIST,
# starts the server on port 0, and has Debian's Chromium (headless, driven
# by npm playwright-core, pinned in package-lock.json and installed here
# into tests/browser/node_modules) draw a 1, a 7 and a 0 with the mouse
# (tests/browser/draw.mjs). Screenshots go to $OUT (default
# build/browser). The server is killed on every exit path.
# Usage: DIGITS=build/digits sh tests/browser/run.sh
set -eu
cd "$(dirname "$0")/../.."
DIGITS=${DIGITS:-build/digits}
OUT=${OUT:-build/browser}
MNIST=${MNIST_DIR:-data/mnist}
export CHROMIUM=${CHROMIUM:-/usr/lib/chromium/chromium}
[ -x "$CHROMIUM" ] || { echo "browser: $CHROMIUM is missing (scripts/install-deps)"; exit 1; }
command -v node >/dev/null || { echo "browser: node is missing (scripts/install-deps)"; exit 1; }
if [ ! -f tests/browser/node_modules/playwright-core/package.json ] ||
   [ tests/browser/package-lock.json -nt tests/browser/node_modules/playwright-core/package.json ]; then
    (cd tests/browser && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
fi

T=$(mktemp -d)
SRV=
cleanup() {
    [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

mkdir -p "$OUT"
"$DIGITS" train --data "$MNIST" --limit 20000 --epochs 3 --out "$T/m.nn" >"$T/train.out" 2>&1 ||
    { cat "$T/train.out"; exit 1; }
"$DIGITS" serve --model "$T/m.nn" --port 0 --threads 2 >"$T/srv.out" 2>&1 &
SRV=$!
URL=
for _ in $(seq 100); do
    URL=$(sed -n 's|^serving \(http://[^ ]*/\) .*|\1|p' "$T/srv.out")
    [ -n "$URL" ] && break
    kill -0 "$SRV" 2>/dev/null || break
    sleep 0.1
done
[ -n "$URL" ] || { echo "browser: the server did not start: $(cat "$T/srv.out")"; exit 1; }
timeout 120 node tests/browser/draw.mjs "$URL" "$OUT"
echo "browser: screenshots in $OUT"
