/*
 * error.c - status names and error filling.
 */
#include <stdarg.h>
#include <stdio.h>

#include "nn/internal.h"

const char *nn_status_str(nn_status s)
{
    switch (s) {
    case NN_OK: return "ok";
    case NN_ERR_ARG: return "invalid argument";
    case NN_ERR_NOMEM: return "out of memory";
    case NN_ERR_IO: return "input/output error";
    case NN_ERR_FORMAT: return "malformed file";
    case NN_ERR_LIMIT: return "limit exceeded";
    case NN_ERR_SHAPE: return "shape mismatch";
    case NN_ERR_STATE: return "invalid state";
    case NN_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown error";
}

nn_status nn_fail(nn_error *err, nn_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void nn_ok(nn_error *err)
{
    if (err) {
        err->code = NN_OK;
        err->msg[0] = '\0';
    }
}
