#!/bin/sh
# HTTP tests for `digits serve`, against a server started here on port 0:
# every route, the answers equal to `digits predict --json` on the same
# files (probabilities within 2e-6, the 28x28 input equal to `--show`'s),
# multipart uploads, every refusal (404, 405, 413 by Content-Length and by
# a chunked body, 415, 400 with a JSON error), idle connections past the
# connection limit and the timeout, a load of 20,000 requests (ab) after
# which the server still answers and its memory has not grown, and a clean
# stop on SIGTERM that still answers the request in flight.
# Usage: DIGITS=build/digits DIGIT_PNG=build/tests/cli/digit_png sh tests/cli/serve.sh
# (SAN=1: an ASan build, whose memory is not compared.) Needs curl, ab
# (apache2-utils).
# Ends with "N passed, N failed"; exits non-zero if any failed.
set -u
. "$(dirname "$0")/lib.sh"
DIGIT_PNG=${DIGIT_PNG:-build/tests/cli/digit_png}
SRV= SLEEPERS= LSRV=
stop_all() {
    [ -n "$SLEEPERS" ] && kill $SLEEPERS 2>/dev/null
    [ -n "$LSRV" ] && kill "$LSRV" 2>/dev/null && wait "$LSRV" 2>/dev/null
    [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
    SRV=
    rm -rf "$T"
}
trap stop_all EXIT
trap 'exit 1' INT TERM

for tool in curl ab; do
    command -v $tool >/dev/null || { echo "serve.sh: $tool is missing (scripts/install-deps)"; exit 1; }
done

# --- a model and pictures: MNIST test digits as PNG and JPEG (dark ink on
# white, 280x280 and others), a blank picture, a text file
[ -f "$MNIST/t10k-images-idx3-ubyte" ] || [ -f "$MNIST/t10k-images-idx3-ubyte.gz" ] ||
    { echo "serve.sh: MNIST is missing in $MNIST (scripts/fetch-mnist)"; exit 1; }
expect_ok "train" "$DIGITS" train --data "$MNIST" --limit 6000 --epochs 2 --out "$T/m.nn"
M=$T/m.nn
pics=
for i in 0 1 2 3 4; do
    "$DIGIT_PNG" "$MNIST" $i 10 "$T/d$i.png" >/dev/null && pics="$pics $T/d$i.png" || bad "digit_png $i"
done
"$DIGIT_PNG" "$MNIST" 5 4 "$T/d5.jpg" >/dev/null && pics="$pics $T/d5.jpg" || bad "digit_png jpg"
"$DIGIT_PNG" "$MNIST" 6 1 "$T/d6.png" >/dev/null && pics="$pics $T/d6.png" || bad "digit_png 28"
printf 'P5\n40 40\n255\n' >"$T/blank.pgm"
head -c 1600 /dev/zero | tr '\000' '\377' >>"$T/blank.pgm"
printf 'hello, not a picture\n' >"$T/text.png"
head -c $((9 * 1024 * 1024)) /dev/zero >"$T/big.bin"

# --- the server: port 0, its URL from its first line
url_of() { # PID NAME: sets U to the URL server PID prints first in $T/NAME.out
    U=
    for _ in $(seq 100); do
        U=$(sed -n 's|^serving \(http://[^ ]*/\) .*|\1|p' "$T/$2.out")
        [ -n "$U" ] && break
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$U" ] && ok || bad "server did not start: $(cat "$T/$2.out" "$T/$2.err")"
}
start() { # OPTIONS...: starts a server, sets SRV, URL, PORT
    "$DIGITS" serve --model "$M" --port 0 "$@" >"$T/srv.out" 2>"$T/srv.err" &
    SRV=$!
    url_of "$SRV" srv
    URL=$U
    PORT=$(echo "$URL" | sed 's|.*:\([0-9]*\)/$|\1|')
}
start --threads 2 --max-connections 8 --timeout 2
echo "$URL" | grep -Eq '^http://127\.0\.0\.1:[0-9]+/$' && [ "$PORT" -gt 0 ] && ok || bad "URL '$URL'"

# get NAME EXPECTED-STATUS CURL-ARGS...: body in $T/body, headers in $T/head
get() {
    name=$1 want=$2; shift 2
    code=$(curl -s --max-time 20 -o "$T/body" -D "$T/head" -w '%{http_code}' "$@")
    [ "$code" = "$want" ] && ok || bad "$name: status $code, want $want ($(head -c 200 "$T/body"))"
}
header() { grep -i "^$1:" "$T/head" | tr -d '\r' | sed 's/^[^:]*: //'; }
json_error() { # NAME PATTERN: the body is {"error": "...PATTERN..."}
    grep -Eq "^\\{\"error\": \".*$2.*\"\\}\$" "$T/body" && [ "$(header Content-Type)" = application/json ] &&
        ok || bad "$1: body '$(head -c 200 "$T/body")' lacks /$2/"
}

# --- GET /, HEAD /: the page, with its security headers
get "page" 200 "$URL"
[ "$(header Content-Type)" = "text/html; charset=utf-8" ] && ok || bad "page type '$(header Content-Type)'"
grep -q '<canvas id="pad"' "$T/body" && grep -q 'aria-live' "$T/body" && ok || bad "page body"
csp=$(header Content-Security-Policy)
case $csp in *"default-src 'none'"*"script-src 'sha256-"*"style-src 'sha256-"*"connect-src 'self'"*) ok ;;
    *) bad "page CSP '$csp'" ;; esac
[ "$(header X-Content-Type-Options)" = nosniff ] && ok || bad "page nosniff"
cmp -s "$T/body" web/index.html && ok || bad "page differs from web/index.html"
get "head page" 200 -I "$URL"
[ "$(header Content-Length)" = "$(wc -c <web/index.html | tr -d ' ')" ] &&
    ok || bad "HEAD / length '$(header Content-Length)'"

# --- GET /healthz, GET /model
get "healthz" 200 "${URL}healthz"
grep -q '^{"status": "ok", "served": [0-9]*}$' "$T/body" && ok || bad "healthz body $(cat "$T/body")"
[ "$(header X-Content-Type-Options)" = nosniff ] && ok || bad "healthz nosniff"
get "model" 200 "${URL}model"
params=$("$DIGITS" summary --model "$M" | sed -n 's/^Total params: \([0-9,]*\).*/\1/p' | tr -d ,)
grep -q "\"classes\": 10, \"parameters\": $params, \"layers\": \\[{\"kind\": \"dense\", \"activation\": \"relu\", \"units\": 512, \"output\": \\[512\\], \"parameters\": 401920}, {\"kind\": \"dense\", \"activation\": \"softmax\"" "$T/body" &&
    grep -q '"input": \[28, 28, 1\]' "$T/body" && ok || bad "model body $(head -c 300 "$T/body")"

# --- POST /predict: the same answers as digits predict --json, and the
# 28x28 input equal to predict --show's picture (its ramp, 2 chars a pixel)
probs() { sed -n 's/.*"probabilities": \[\([^]]*\)\].*/\1/p' "$1"; }
same_probs() { # A B: two lists "p, p, ..." equal within 2e-6
    printf '%s\n%s\n' "$1" "$2" | awk -F', ' 'NR == 1 { n = split($0, a, ", ") }
        NR == 2 { if (NF != n || n == 0) exit 1
                  for (i = 1; i <= n; i++) { d = a[i] - $i; if (d < 0) d = -d; if (d > 2e-6) exit 1 } }'
}
show_art() { # JSON-FILE: its input as predict --show draws it
    sed -n 's/.*"input": \[\([^]]*\)\].*/\1/p' "$1" | tr , '\n' | awk '
        BEGIN { ramp = " .:-=+*#%@" }
        { c = substr(ramp, int($1 * 9 / 255) + 1, 1); row = row c c
          if (NR % 28 == 0) { print "  |" row "|"; row = "" } }'
}
for f in $pics; do
    case $f in *.jpg) type=image/jpeg ;; *) type=image/png ;; esac
    b=$(basename "$f")
    get "predict $b" 200 -H "Content-Type: $type" --data-binary "@$f" "${URL}predict"
    cp "$T/body" "$T/ans-$b"
    "$DIGITS" predict --model "$M" --json "$f" >"$T/cli.json" 2>"$T/cli.err" || bad "digits predict $b"
    "$DIGITS" predict --model "$M" --show "$f" | grep '^  |' >"$T/cli.art"
    want=$(sed -n 's/.*"digit": \([0-9]*\),.*/\1/p' "$T/cli.json")
    got=$(sed -n 's/^{"digit": \([0-9]*\),.*/\1/p' "$T/body")
    [ -n "$want" ] && [ "$got" = "$want" ] && ok || bad "$b: serve says '$got', predict '$want'"
    same_probs "$(probs "$T/body")" "$(probs "$T/cli.json")" && ok ||
        bad "$b: probabilities $(probs "$T/body") vs $(probs "$T/cli.json")"
    show_art "$T/body" | cmp -s - "$T/cli.art" && ok || bad "$b: input differs from predict --show"
done
# the first five MNIST test digits are 7 2 1 0 4, and the model knows them
for k in "0 7" "1 2" "2 1" "3 0" "4 4"; do
    set -- $k
    grep -q "^{\"digit\": $2, " "$T/ans-d$1.png" && ok || bad "d$1.png is a $2: $(head -c 80 "$T/ans-d$1.png")"
done
[ "$(sed -n 's/.*"input": \[\([^]]*\)\].*/\1/p' "$T/ans-d0.png" | tr , '\n' | grep -c '^[0-9]\{1,3\}$')" -eq 784 ] &&
    ok || bad "input is not 784 values"

# image/* other than the file's own type, and multipart/form-data as a form sends it
get "predict as image/x-any" 200 -H "Content-Type: image/x-anything" --data-binary "@$T/d0.png" "${URL}predict"
cmp -s "$T/body" "$T/ans-d0.png" && ok || bad "image/x-anything answer differs"
get "predict multipart" 200 -F "image=@$T/d0.png;type=image/png" -F "note=plain field" "${URL}predict"
cmp -s "$T/body" "$T/ans-d0.png" && ok || bad "multipart answer differs"
get "multipart no file" 400 -F "note=just text" "${URL}predict"
json_error "multipart no file" "one file part, got 0"
get "multipart two files" 400 -F "a=@$T/d0.png" -F "b=@$T/d1.png" "${URL}predict"
json_error "multipart two files" "one file part, got 2"
get "multipart no boundary" 400 -H "Content-Type: multipart/form-data" --data-binary "@$T/d0.png" "${URL}predict"
json_error "multipart no boundary" "boundary"

# a blank picture: no digit, an all-black input
get "predict blank" 200 -H "Content-Type: image/x-portable-graymap" --data-binary "@$T/blank.pgm" "${URL}predict"
grep -q '^{"digit": null, "probabilities": null, "input": \[0\(,0\)\{783\}\]}$' "$T/body" && ok || bad "blank: $(head -c 100 "$T/body")"

# --- refusals: each a JSON error with the right status
get "404" 404 "${URL}nope"
json_error "404" "no such page"
get "404 index.html" 404 "${URL}index.html"
get "404 traversal" 404 --path-as-is "${URL}../../etc/passwd"
grep -q root: "$T/body" && bad "served /etc/passwd" || ok
get "404 web/index.html" 404 "${URL}web/index.html"
get "405 GET /predict" 405 "${URL}predict"
[ "$(header Allow)" = POST ] && ok || bad "405 Allow '$(header Allow)'"
json_error "405" "/predict takes POST"
get "405 POST /" 405 -X POST --data-binary x "$URL"
[ "$(header Allow)" = "GET, HEAD" ] && ok || bad "405 / Allow '$(header Allow)'"
get "GET with a body" 200 -X GET -H "Content-Type: image/png" --data-binary "@$T/d0.png" "${URL}healthz"
get "405 DELETE /model" 405 -X DELETE "${URL}model"
get "405 PUT /healthz" 405 -X PUT --data-binary x "${URL}healthz"
get "415 text/plain" 415 -H "Content-Type: text/plain" --data-binary "@$T/d0.png" "${URL}predict"
json_error "415" "image/\\* or multipart/form-data"
get "415 imagery/png" 415 -H "Content-Type: imagery/png" --data-binary "@$T/d0.png" "${URL}predict"
get "415 form-urlencoded" 415 --data-binary "@$T/d0.png" "${URL}predict"
get "400 no Content-Type" 400 -H "Content-Type:" --data-binary "@$T/d0.png" "${URL}predict"
json_error "400 no Content-Type" "missing Content-Type"
get "400 not a picture" 400 -H "Content-Type: image/png" --data-binary "@$T/text.png" "${URL}predict"
json_error "400 not a picture" "request body"
head -c 200 "$T/d0.png" >"$T/cut.png"
get "400 truncated" 400 -H "Content-Type: image/png" --data-binary "@$T/cut.png" "${URL}predict"
json_error "400 truncated" "request body"
get "400 empty" 400 -H "Content-Type: image/png" --data-binary "" "${URL}predict"
json_error "400 empty" "empty body"
get "413 Content-Length" 413 -H "Content-Type: image/png" --data-binary "@$T/big.bin" "${URL}predict"
json_error "413" "over 8388608 bytes"
rm -f "$T/body"
get "413 chunked" 413 -H "Content-Type: image/png" -H "Transfer-Encoding: chunked" --data-binary "@$T/big.bin" "${URL}predict"
get "413 multipart" 413 -F "image=@$T/big.bin;type=image/png" "${URL}predict"
get "still answers" 200 -H "Content-Type: image/png" --data-binary "@$T/d0.png" "${URL}predict"

# --- idle connections: 12 opened and left idle, past the limit of 8; the
# server drops them after its 2 s timeout and answers again
for _ in $(seq 12); do
    sleep 30 | curl -s --max-time 30 "telnet://127.0.0.1:$PORT" >/dev/null 2>&1 &
    SLEEPERS="$SLEEPERS $!"
done
sleep 0.5
t0=$(date +%s)
get "answers past idle connections" 200 --max-time 15 "${URL}healthz"
t1=$(date +%s)
[ $((t1 - t0)) -le 8 ] && ok || bad "waited $((t1 - t0)) s for a slot"
# a slow client: headers begun, never finished
{ printf 'POST /predict HTTP/1.1\r\nHost: x\r\n'; sleep 30; } | curl -s --max-time 30 "telnet://127.0.0.1:$PORT" >"$T/slow.out" 2>&1 &
SLEEPERS="$SLEEPERS $!"
sleep 3
kill -0 "$SRV" 2>/dev/null && ok || bad "server died with idle clients"
get "answers after the timeout" 200 --max-time 5 "${URL}healthz"
kill $SLEEPERS 2>/dev/null
SLEEPERS=

# --- load: 1,000 then 20,000 POSTs of a 280x280 PNG at 16 keep-alive
# connections (ab), on a server of its own with the default connection
# limit; every answer 200 and the same as before, memory after the 20,000
# within 10% (+2 MiB) of that after the first 1,000. Bounded in count, and
# in time by `timeout` (an ASan build answers ~400 a second here).
"$DIGITS" serve --model "$M" --port 0 --threads 2 >"$T/load.out" 2>"$T/load.err" &
LSRV=$!
url_of "$LSRV" load
LURL=$U
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$LSRV/status"; }
load() { # COUNT: ab at 16 connections; prints "complete failed non-2xx"
    timeout 300 ab -q -k -n "$1" -c 16 -p "$T/d0.png" -T image/png "${LURL}predict" >"$T/ab.out" 2>&1 ||
        echo "ab exit $?" >>"$T/ab.out"
    awk '/^Complete requests:/ { c = $3 } /^Failed requests:/ { f = $3 }
         /^Non-2xx responses:/ { x = $3 } /^ab exit/ { f = "exit" }
         END { print c + 0, (f == "" ? "?" : f), x + 0 }' "$T/ab.out"
}
[ "$(load 1000)" = "1000 0 0" ] && ok || bad "load 1000: $(cat "$T/ab.out")"
r1=$(rss)
[ "$(load 20000)" = "20000 0 0" ] && ok || bad "load 20000: $(cat "$T/ab.out")"
r2=$(rss)
if [ "${SAN:-0}" = 1 ]; then ok; else
    [ "$r2" -le $((r1 + r1 / 10 + 2048)) ] && ok || bad "memory grew from $r1 kB to $r2 kB"
fi
code=$(curl -s --max-time 20 -o "$T/body" -w '%{http_code}' -H "Content-Type: image/png" \
    --data-binary "@$T/d0.png" "${LURL}predict")
[ "$code" = 200 ] && cmp -s "$T/body" "$T/ans-d0.png" && ok || bad "answer changed under load ($code)"
curl -s --max-time 5 "${LURL}healthz" | grep -q '"served": 2100[0-9]' && ok ||
    bad "healthz after load: $(curl -s --max-time 5 "${LURL}healthz")"
kill -TERM "$LSRV"
wait "$LSRV"
rc=$?
LSRV=
[ $rc -eq 0 ] && grep -q '^stopped (SIGTERM) after 2100[0-9] requests$' "$T/load.out" && ok ||
    bad "load server stop: exit $rc, $(cat "$T/load.out" "$T/load.err")"

# --- SIGTERM during a slow upload: the request is still answered, then
# the server exits 0 saying so
"$DIGIT_PNG" "$MNIST" 0 40 "$T/large.png" >/dev/null
size=$(wc -c <"$T/large.png")
curl -s --max-time 30 --limit-rate $((size / 2 + 1)) -o "$T/late.json" -w '%{http_code}' \
    -H "Content-Type: image/png" --data-binary "@$T/large.png" "${URL}predict" >"$T/late.code" &
up=$!
sleep 0.6
kill -TERM "$SRV"
wait $up
wait "$SRV"
rc=$?
SRV=
[ "$(cat "$T/late.code")" = 200 ] && grep -q '^{"digit": 7,' "$T/late.json" && ok ||
    bad "request in flight at SIGTERM: $(cat "$T/late.code") $(head -c 100 "$T/late.json")"
[ $rc -eq 0 ] && grep -q '^stopped (SIGTERM) after [0-9]* requests$' "$T/srv.out" && ok ||
    bad "stop: exit $rc, $(cat "$T/srv.out" "$T/srv.err")"

# --- start-up errors: one line, exit 1
start --port 0
expect_fail "port in use" "cannot listen on 127.0.0.1 port $PORT" "$DIGITS" serve --model "$M" --port "$PORT"
kill "$SRV"; wait "$SRV"; SRV=
expect_fail "bad port" "--port: expected an integer from 0 to 65535" "$DIGITS" serve --model "$M" --port 70000
expect_fail "bad host" "--host: cannot use 'no such host'" "$DIGITS" serve --model "$M" --host "no such host" --port 0
expect_fail "missing model" "nope.nn" "$DIGITS" serve --model "$T/nope.nn" --port 0
expect_fail "not a model" "text.png" "$DIGITS" serve --model "$T/text.png" --port 0
expect_fail "bad threads" "--threads" "$DIGITS" serve --model "$M" --threads 0
expect_ok "serve --help" "$DIGITS" serve --help
grep -q 127.0.0.1 "$T/out" && ok || bad "help does not name the default address"

finish "serve"
