#!/bin/sh
# CLI test: `make install` into a temporary PREFIX, then a program built
# with plain `pkg-config --cflags --libs nn` (as the README says, not only
# --static) links against the installed libnn and runs.
# Usage: O=build sh tests/cli/pkgconfig.sh   (from the repository root)
# Ends with "N passed, N failed"; exits non-zero if any failed.
set -u
. "$(dirname "$0")/lib.sh"
O=${O:-build}
P=$T/prefix
if ${MAKE:-make} -s O="$O" install PREFIX="$P" >"$T/log" 2>&1; then ok; else bad "make install: $(tail -3 "$T/log")"; fi
cat >"$T/hello.c" <<'C'
#include <stdio.h>
#include <nn.h>
int main(void)
{
    nn_error err;
    nn_model *m = nn_model_from_spec("mlp", nn_shape3(28, 28, 1), 10, NULL, &err);
    if (!m)
        return 1;
    nn_rng rng;
    nn_rng_seed(&rng, 1);
    if (nn_model_init(m, &rng, &err) != NN_OK)
        return 1;
    printf("params %zu\n", nn_model_param_count(m));
    nn_model_free(m);
    return 0;
}
C
flags=$(PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --cflags --libs nn 2>"$T/err") && ok || bad "pkg-config nn: $(cat "$T/err")"
# A sanitizer build's library needs the sanitizer runtime in the program.
san=""
[ "${SAN:-0}" = 1 ] && san="-fsanitize=address,undefined"
# shellcheck disable=SC2086
if ${CC:-cc} -std=c11 $san "$T/hello.c" $flags -o "$T/hello" 2>"$T/err"; then ok; else bad "cc \$(pkg-config --cflags --libs nn) fails: $(head -5 "$T/err")"; fi
[ "$("$T/hello" 2>&1)" = "params 407050" ] && ok || bad "the program built with pkg-config: $("$T/hello" 2>&1)"
[ -x "$P/bin/digits" ] && "$P/bin/digits" --version >/dev/null && ok || bad "installed digits does not run"
finish pkgconfig
