#!/bin/sh
# Turns the page (web/index.html) into C for `digits serve`: its bytes as
# serve_page[] and serve_page_len, and serve_page_csp, a
# Content-Security-Policy that lets exactly the page's inline <script> and
# <style> run (by their SHA-256) and nothing else load.
# The page must have one <script> and one <style>, each opening tag alone
# at the end of a line and each closing tag at the start of one.
# Usage: sh web/embed.sh web/index.html > page.c   (needs od and openssl)
set -eu
page=$1
# hash of what lies between <TAG> and </TAG>: the newline after the opening
# tag, then every line up to the closing one
hash() {
    n=$(grep -c "^</$1>" "$page" || true)
    [ "$n" = 1 ] || { echo "embed.sh: $page: want one </$1> at a line start, found $n" >&2; exit 1; }
    { printf '\n'; sed -n "/<$1>\$/,/^<\\/$1>/{/<$1>\$/d;/^<\\/$1>/d;p;}" "$page"; } |
        openssl dgst -sha256 -binary | base64
}
script=$(hash script)
style=$(hash style)
echo "/* Generated from $page by web/embed.sh; do not edit. */"
echo '#include <stddef.h>'
echo 'const unsigned char serve_page[] = {'
od -An -v -tx1 "$page" | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/  /'
echo '  0};'
echo "const size_t serve_page_len = sizeof serve_page - 1;"
printf 'const char serve_page_csp[] = "default-src '"'none'"'; '
printf "script-src 'sha256-%s'; style-src 'sha256-%s'; " "$script" "$style"
printf "connect-src 'self'; base-uri 'none'; form-action 'none'; "
printf 'frame-ancestors '"'none'"'";\n'
