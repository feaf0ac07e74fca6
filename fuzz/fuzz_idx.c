/*
 * fuzz_idx.c - libFuzzer target for the IDX reader, raw and gzip
 * (nn_idx_load_mem), checked against the file reader (nn_idx_load on the
 * same bytes in a memfd): both must accept or refuse it, and agree on the
 * data.
 *
 * Input: the file as it is (gzip is detected by content, as in files).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* nn_idx_load on a memfd holding the bytes; -1 if no memfd could be made. */
static int load_file(const uint8_t *data, size_t size, nn_idx *out,
                     nn_status *st)
{
    static int fd = -2;
    if (fd == -2)
        fd = memfd_create("fuzz_idx", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, 0) != 0 ||
        pwrite(fd, data, size, 0) != (ssize_t)size)
        return -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    nn_error err;
    *st = nn_idx_load(path, out, &err);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nn_error err;
    nn_idx x;
    nn_status s = nn_idx_load_mem(data, size, "fuzz", &x, &err);
    if (s != NN_OK && (err.code != s || !err.msg[0] || x.data || x.rank))
        abort();
    size_t n = 0;
    if (s == NN_OK) {
        if (x.rank < 1 || x.rank > 4 || !x.data)
            abort();
        n = 1;
        for (int i = 0; i < x.rank; i++) {
            if (x.dim[i] < 1 || x.dim[i] > NN_MAX_DIM)
                abort();
            n *= x.dim[i];
        }
        unsigned sum = 0;   /* every byte readable */
        for (size_t i = 0; i < n; i++)
            sum += x.data[i];
        (void)sum;
    }
    /* the file reader must agree */
    nn_idx y;
    nn_status sf;
    if (load_file(data, size, &y, &sf) == 0) {
        /* Both succeed or both fail. The failure may differ: the file
         * reader inflates ahead (zlib's gzread fills 128 KiB), so corrupt
         * data after a bad header can be what it meets first. */
        if ((sf == NN_OK) != (s == NN_OK))
            abort();
        if (s == NN_OK && (y.rank != x.rank ||
                           memcmp(y.dim, x.dim, sizeof x.dim) != 0 ||
                           memcmp(y.data, x.data, n) != 0))
            abort();
        nn_idx_free(&y);
    }
    nn_idx_free(&x);
    return 0;
}
