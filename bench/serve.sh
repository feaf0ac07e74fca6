#!/bin/sh
# bench/serve.sh - `digits serve` under load, on loopback: a 280x280 PNG of
# a digit (an MNIST test digit enlarged 10 times, dark ink on white, as the
# page sends it) POSTed to /predict by ApacheBench (`ab`, Debian package
# apache2-utils; keep-alive connections), SERVE_REQUESTS times (default
# 20000) at SERVE_CONC connections (16), after 1000 warm-up requests. ab
# is light (about 0.04 ms of CPU a request here, against 0.2 ms for hey),
# which matters when it shares the server's two cores. Prints requests per second, latency
# percentiles, answers that were not 200, and the server's memory (RSS)
# after the warm-up and after the run; exits 1 on any error answer or when
# memory grew by more than 10%.
# Environment: SERVE_REQUESTS, SERVE_CONC, SERVE_THREADS (server threads,
# default 2), BENCH_DATA (default data/mnist), O (build folder, default
# build). Run by `make bench`.
set -u
cd "$(dirname "$0")/.." || exit 1
C=${SERVE_CONC:-16}
N=${SERVE_REQUESTS:-20000}
TH=${SERVE_THREADS:-2}
DATA=${BENCH_DATA:-data/mnist}
O=${O:-build}
die() { echo "bench/serve: $*" >&2; exit 1; }
[ -x "$O/digits" ] && [ -x "$O/tests/cli/digit_png" ] ||
    die "build first (make all $O/tests/cli/digit_png)"
command -v ab >/dev/null || die "needs ab (apt-get install apache2-utils)"
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
run() { # COUNT: ab's report in $TMP/ab.out, its percentiles in $TMP/ab.csv
    timeout 600 ab -q -k -n "$1" -c "$C" -p "$TMP/seven.png" -T image/png \
        -e "$TMP/ab.csv" "${URL}predict" >"$TMP/ab.out" 2>&1 ||
        die "ab failed: $(tail -3 "$TMP/ab.out")"
}
run 1000
rss1=$(rss)
load0=$(cut -d' ' -f1 /proc/loadavg)
t0=$(ticks)
run "$N"
t1=$(ticks)
rss2=$(rss)
hz=$(getconf CLK_TCK)
cpu=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$N" 'BEGIN { printf "%.3f", 1000 * t / hz / n }')
load1=$(cut -d' ' -f1 /proc/loadavg)
field() { sed -n "s/^$1:[[:space:]]*\([0-9.]*\).*/\1/p" "$TMP/ab.out"; }
complete=$(field 'Complete requests')
failed=$(field 'Failed requests')
non2xx=$(field 'Non-2xx responses')
rps=$(field 'Requests per second')
pct() { awk -F, -v p="$1" '$1 == p { printf "%.1f", $2 }' "$TMP/ab.csv"; }
cat <<EOF
digits serve, mlp, 280x280 PNG, $N requests at $C connections, --threads $TH
($(nproc) cores, load average $load0 before, $load1 after; $(date -u +%Y-%m-%d))
  requests/s        $rps
  latency ms        p50 $(pct 50)  p90 $(pct 90)  p99 $(pct 99)
  answers           ${complete:-0} complete, ${non2xx:-0} not 2xx, ${failed:-0} failed
  server CPU        $cpu ms a request (user + system; $(nproc) idle cores would
                    answer about $(awk -v c="$cpu" -v n="$(nproc)" 'BEGIN { printf "%d", n * 1000 / c }') a second)
  server RSS kB     $rss1 after 1000 requests, $rss2 after $N more
EOF
[ "${complete:-0}" = "$N" ] && [ "${failed:-1}" = 0 ] && [ "${non2xx:-0}" = 0 ] ||
    die "errors under load: $(cat "$TMP/ab.out")"
[ "$rss2" -le $((rss1 + rss1 / 10)) ] || die "memory grew by more than 10%"
