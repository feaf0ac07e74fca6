/*
 * file.c - whole files in and out: reading a file (or any stream) under a
 * size limit, and writing a buffer atomically through afile.c. Used by the
 * model and image loaders and, through nn.h, by the tool.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nn/internal.h"

nn_status nn_write_file_atomic(const char *path, const void *data,
                               size_t size, nn_error *err)
{
    if (!path || (!data && size))
        return nn_fail(err, NN_ERR_ARG, "nn_write_file_atomic: NULL "
                       "argument");
    nn_afile af;
    nn_status s = nn_afile_open(&af, path, err);
    if (s != NN_OK)
        return s;
    if (size && fwrite(data, 1, size, af.f) != size) {
        int e = errno;
        nn_afile_abort(&af);
        return nn_fail(err, NN_ERR_IO, "%s: cannot write: %s", path,
                       strerror(e));
    }
    return nn_afile_commit(&af, err);
}

nn_status nn_read_stream(FILE *f, const char *name, size_t max,
                         size_t size_hint, void **data, size_t *size,
                         nn_error *err)
{
    if (!f || !data || !size)
        return nn_fail(err, NN_ERR_ARG, "nn_read_stream: NULL argument");
    *data = NULL;
    *size = 0;
    if (max > SIZE_MAX - 2)
        max = SIZE_MAX - 2;
    /* Room for up to max + 1 bytes (so that one more than the limit is
     * seen) and the NUL after them; grows for pipes and devices. */
    size_t cap = size_hint && size_hint <= max ? size_hint + 2 : 1 << 16;
    if (cap > max + 2)
        cap = max + 2;
    size_t n = 0;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return nn_fail(err, NN_ERR_NOMEM, "%s: out of memory", name);
    for (;;) {
        if (n == cap - 1) {
            if (n > max)
                break;
            size_t ncap = cap * 2 > max + 2 ? max + 2 : cap * 2;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return nn_fail(err, NN_ERR_NOMEM, "%s: out of memory", name);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                int e = errno;
                free(buf);
                return nn_fail(err, NN_ERR_IO, "%s: read error: %s", name,
                               strerror(e));
            }
            break;
        }
    }
    if (n > max) {
        free(buf);
        return nn_fail(err, NN_ERR_LIMIT, "%s: larger than the limit of "
                       "%zu bytes", name, max);
    }
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return NN_OK;
}

nn_status nn_read_file(const char *path, size_t max_bytes, void **data,
                       size_t *size, nn_error *err)
{
    if (!path || !data || !size)
        return nn_fail(err, NN_ERR_ARG, "nn_read_file: NULL argument");
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return nn_fail(err, NN_ERR_IO, "%s: cannot open: %s", path,
                       strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        memset(&st, 0, sizeof st);
    if (S_ISDIR(st.st_mode)) {
        fclose(f);
        return nn_fail(err, NN_ERR_IO, "%s: is a folder, not a file", path);
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return nn_fail(err, NN_ERR_LIMIT, "%s: larger than the limit of "
                       "%zu bytes", path, max_bytes);
    }
    size_t hint = S_ISREG(st.st_mode) ? (size_t)st.st_size : 0;
    nn_status s = nn_read_stream(f, path, max_bytes, hint, data, size, err);
    fclose(f);
    return s;
}
