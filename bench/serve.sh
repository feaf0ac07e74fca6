#!/bin/sh
# bench/serve.sh - `digits serve` under load, on loopback: a 280x280 PNG of
# a digit (an MNIST test digit enlarged 10 times, dark ink on white, as the
# page sends it) POSTed to /predict by `hey` (Debian package hey),
# SERVE_REQUESTS times (default 20000) at SERVE_CONC connections (16),
# after 1008 warm-up requests. Prints requests per second, latency
# percentiles, answers that were not 200, and the server's memory (RSS)
# after the warm-up and after the run; exits 1 on any error answer or when
# memory grew by more than 10%.
# Environment: SERVE_REQUESTS, SERVE_CONC, SERVE_THREADS (server threads,
# default 2), BENCH_DATA (default data/mnist), O (build folder, default
# build). Run by `make bench`.
set -u
cd "$(dirname "$0")/.." || exit 1
C=${SERVE_CONC:-16}
N=$(( ${SERVE_REQUESTS:-20000} / C * C ))   # hey sends a multiple of C
TH=${SERVE_THREADS:-2}
DATA=${BENCH_DATA:-data/mnist}
O=${O:-build}
die() { echo "bench/serve: $*" >&2; exit 1; }
[ -x "$O/digits" ] && [ -x "$O/tests/cli/digit_png" ] ||
    die "build first (make all $O/tests/cli/digit_png)"
command -v hey >/dev/null || die "needs hey (apt-get install hey)"
[ -f "$DATA/t10k-images-idx3-ubyte" ] || [ -f "$DATA/t10k-images-idx3-ubyte.gz" ] ||
    die "no MNIST in $DATA"

TMP=$(mktemp -d) || exit 1
SRV=
cleanup() {
    [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# the mlp (its speed does not depend on how long it trained)
"$O/digits" train --data "$DATA" --model mlp --limit 10000 --epochs 1 \
    --out "$TMP/mlp.nn" >"$TMP/train.out" 2>&1 || die "train: $(tail -1 "$TMP/train.out")"
"$O/tests/cli/digit_png" "$DATA" 0 10 "$TMP/seven.png" >/dev/null || die "digit_png"
"$O/digits" serve --model "$TMP/mlp.nn" --port 0 --threads "$TH" >"$TMP/srv.out" 2>&1 &
SRV=$!
URL=
for _ in $(seq 100); do
    URL=$(sed -n 's|^serving \(http://[^ ]*/\) .*|\1|p' "$TMP/srv.out")
    [ -n "$URL" ] && break
    sleep 0.1
done
[ -n "$URL" ] || die "the server did not start: $(cat "$TMP/srv.out")"
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SRV/status"; }
# the server's CPU time so far (user + system), in clock ticks
ticks() { sed 's/^.*) //' "/proc/$SRV/stat" | awk '{ print $12 + $13 }'; }
run() { # COUNT: hey's report in $TMP/hey.out
    timeout 600 hey -n "$1" -c "$C" -m POST -T image/png -D "$TMP/seven.png" \
        "${URL}predict" >"$TMP/hey.out" 2>&1 || die "hey failed: $(tail -3 "$TMP/hey.out")"
}
run 1008
rss1=$(rss)
load0=$(cut -d' ' -f1 /proc/loadavg)
t0=$(ticks)
run "$N"
t1=$(ticks)
rss2=$(rss)
hz=$(getconf CLK_TCK)
cpu=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$N" 'BEGIN { printf "%.3f", 1000 * t / hz / n }')
load1=$(cut -d' ' -f1 /proc/loadavg)
ok200=$(sed -n 's/^ *\[200\][[:space:]]*\([0-9]*\) responses/\1/p' "$TMP/hey.out")
total=$(awk '/^ *\[[0-9]+\]/ { s += $2 } END { print s + 0 }' "$TMP/hey.out")
errors=$(awk '/Error distribution/ { on = 1; next } on && /\[[0-9]+\]/ { s += substr($1, 2) } END { print s + 0 }' "$TMP/hey.out")
rps=$(sed -n 's/^ *Requests\/sec:[[:space:]]*\([0-9.]*\)/\1/p' "$TMP/hey.out")
pct() { sed -n "s/^ *$1% in \\([0-9.]*\\) secs/\\1/p" "$TMP/hey.out" | awk '{ printf "%.1f", $1 * 1000 }'; }
cat <<EOF
digits serve, mlp, 280x280 PNG, $N requests at $C connections, $TH server threads
($(nproc) cores, load average $load0 before, $load1 after; $(date -u +%Y-%m-%d))
  requests/s        $rps
  latency ms        p50 $(pct 50)  p90 $(pct 90)  p99 $(pct 99)
  answers           ${ok200:-0} of 200, $((total - ${ok200:-0})) other, $errors failed connections
  server CPU        $cpu ms a request (user + system; $(nproc) idle cores would
                    answer about $(awk -v c="$cpu" -v n="$(nproc)" 'BEGIN { printf "%d", n * 1000 / c }') a second)
  server RSS kB     $rss1 after 1008 requests, $rss2 after $N more
EOF
[ "${ok200:-0}" = "$total" ] && [ "$errors" = 0 ] || die "errors under load"
[ "$rss2" -le $((rss1 + rss1 / 10)) ] || die "memory grew by more than 10%"
