/*
 * jsoncheck.c - a strict JSON (RFC 8259) checker for the CLI tests: reads
 * standard input, one or more JSON values separated by white space (the
 * JSON Lines of `digits predict --json`), and exits 0 if every one is
 * valid, else prints where it went wrong and exits 1. Strict where lax
 * parsers (jq 1.6) are not: no NaN, Infinity or -nan, no bytes that are
 * not UTF-8, no raw control characters in strings, no trailing commas.
 * Usage: jsoncheck < FILE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char *p, *end, *start;

static int fail(const char *why)
{
    fprintf(stderr, "jsoncheck: byte %ld: %s\n", (long)(p - start), why);
    exit(1);
}

static void ws(void)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
}

static void lit(const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(end - p) < n || memcmp(p, w, n))
        fail("unknown literal");
    p += n;
}

static void digits(void)
{
    if (p >= end || *p < '0' || *p > '9')
        fail("digit expected");
    while (p < end && *p >= '0' && *p <= '9')
        p++;
}

static void number(void)
{
    if (*p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else
        digits();
    if (p < end && *p == '.') {
        p++;
        digits();
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        digits();
    }
}

static void string(void)
{
    p++;   /* the opening quote */
    for (;;) {
        if (p >= end)
            fail("unterminated string");
        unsigned c = *p;
        if (c == '"') {
            p++;
            return;
        }
        if (c < 0x20)
            fail("raw control character in a string");
        if (c == '\\') {
            p++;
            if (p >= end)
                fail("unterminated escape");
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (p + i >= end || !strchr("0123456789abcdefABCDEF",
                                                 p[i]) || !p[i])
                        fail("bad \\u escape");
                p += 5;
            } else if (strchr("\"\\/bfnrt", *p) && *p) {
                p++;
            } else {
                fail("bad escape");
            }
            continue;
        }
        if (c < 0x80) {
            p++;
            continue;
        }
        int n;
        unsigned cp, min;
        if (c >= 0xC2 && c <= 0xDF)
            n = 2, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 3, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 4, cp = c & 0x07, min = 0x10000;
        else
            fail("byte that is not UTF-8");
        for (int i = 1; i < n; i++) {
            if (p + i >= end || (p[i] & 0xC0) != 0x80)
                fail("truncated UTF-8 sequence");
            cp = cp << 6 | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            fail("invalid UTF-8 sequence");
        p += n;
    }
}

static void value(int depth)
{
    if (depth > 256)
        fail("nested too deeply");
    ws();
    if (p >= end)
        fail("value expected");
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int obj = *p == '{';
        p++;
        ws();
        if (p < end && *p == close) {
            p++;
            return;
        }
        for (;;) {
            if (obj) {
                ws();
                if (p >= end || *p != '"')
                    fail("member name expected");
                string();
                ws();
                if (p >= end || *p != ':')
                    fail("':' expected");
                p++;
            }
            value(depth + 1);
            ws();
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == close) {
                p++;
                return;
            }
            fail("',' or closing bracket expected");
        }
    }
    if (*p == '"')
        string();
    else if (*p == '-' || (*p >= '0' && *p <= '9'))
        number();
    else if (*p == 't')
        lit("true");
    else if (*p == 'f')
        lit("false");
    else if (*p == 'n')
        lit("null");
    else
        fail("value expected");
}

int main(void)
{
    static unsigned char buf[1 << 24];
    size_t n = fread(buf, 1, sizeof buf, stdin);
    if (n == sizeof buf)
        return fprintf(stderr, "jsoncheck: input too large\n"), 1;
    start = p = buf;
    end = buf + n;
    int values = 0;
    for (ws(); p < end; ws()) {
        value(0);
        values++;
    }
    if (!values)
        return fprintf(stderr, "jsoncheck: no JSON value\n"), 1;
    return 0;
}
