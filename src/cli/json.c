/*
 * json.c - the one JSON writer of the digits tool: every subcommand's
 * --json output goes through these, so that it is always valid JSON
 * (RFC 8259): strings are valid UTF-8 with control characters escaped,
 * and numbers are finite (NaN and infinities, which JSON cannot express,
 * are written as null).
 */
#include <math.h>

#include "cli/cli.h"

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there
 * are not one: a stray continuation byte, a truncated sequence, an
 * overlong form, a surrogate or a code point above U+10FFFF. */
static int utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    int n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, min = 0x10000;
    else
        return 0;
    unsigned cp = c & (0x3Fu >> (n - 1));
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)   /* also stops at the NUL */
            return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* A byte that is not part of valid UTF-8 (a Latin-1 file name, say) is
 * written as the code point of the same number, \u00XX: the output stays
 * valid JSON and the byte stays recognisable. */
void cli_json_string(FILE *f, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    while (*s) {
        unsigned c = *s;
        int n = utf8_len(s);
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else if (c == '\t') {
            fputs("\\t", f);
        } else if (c < 0x20 || c == 0x7F || n == 0) {
            fprintf(f, "\\u%04x", c);
        } else {
            fwrite(s, 1, (size_t)n, f);
            s += n;
            continue;
        }
        s++;
    }
    fputc('"', f);
}

void cli_json_number(FILE *f, double v, int decimals)
{
    if (isfinite(v))
        fprintf(f, "%.*f", decimals, v);
    else
        fputs("null", f);
}
