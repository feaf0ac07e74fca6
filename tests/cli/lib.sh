# lib.sh - what the CLI test scripts share; sourced, not run.
# Sets DIGITS (absolute), MNIST, T (a temporary folder removed on exit),
# pass/fail counters, and:
#   ok / bad MESSAGE                 count a check
#   expect_ok NAME CMD...            exit 0; output in $T/out, $T/err
#   expect_fail NAME PATTERN CMD...  exit status exactly 1 and exactly one
#                                    line on stderr, starting "digits: " and
#                                    matching PATTERN (grep -E)
#   finish LABEL                     prints "LABEL: N passed, N failed" and
#                                    returns non-zero if any failed
DIGITS=${DIGITS:-build/digits}
case $DIGITS in /*) ;; *) DIGITS=$(pwd)/$DIGITS ;; esac
MNIST=${MNIST_DIR:-$(pwd)/data/mnist}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

expect_ok() {
    name=$1; shift
    if "$@" >"$T/out" 2>"$T/err"; then ok; else
        bad "$name: exit $? ($(head -c 300 "$T/err"))"; fi
}

expect_fail() {
    name=$1 pat=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    lines=$(wc -l <"$T/err")
    if [ $rc -ne 1 ]; then bad "$name: exit $rc, want 1 ($(head -c 300 "$T/err"))"
    elif [ "$lines" -ne 1 ]; then bad "$name: $lines lines on stderr: $(cat "$T/err")"
    elif ! grep -q '^digits: ' "$T/err"; then bad "$name: no 'digits: ' prefix: $(cat "$T/err")"
    elif ! grep -Eq -- "$pat" "$T/err"; then bad "$name: stderr '$(cat "$T/err")' lacks /$pat/"
    else ok; fi
}

finish() {
    echo "$1: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
