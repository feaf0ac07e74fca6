/*
 * idx.c - the IDX format (MNIST, Fashion-MNIST), raw or gzip-compressed.
 *
 *   magic: 0x00 0x00 TYPE RANK, then RANK big-endian u32 dimensions, then
 *   the elements. Only TYPE 0x08 (unsigned byte) is accepted.
 *
 * Everything is validated before it sizes an allocation: rank 1..4, each
 * dimension 1..NN_MAX_DIM, total bytes <= NN_MAX_IDX_BYTES without overflow,
 * and for raw files the file's length must equal header + payload. For
 * gzip, whose length is unknown up front, the buffer grows only as real data
 * arrives, so a lying header cannot make us allocate gigabytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "nn/internal.h"

#define GZ_CHUNK ((size_t)16 << 20)   /* gzip buffer growth step */

/* Private storage of a loaded data set (nn_dataset.owned_). */
typedef struct dataset_store {
    nn_idx images, labels;
} dataset_store;

void nn_idx_free(nn_idx *x)
{
    if (!x)
        return;
    free(x->data);
    memset(x, 0, sizeof *x);
}

/* Parses and checks the header; *payload receives the element bytes. */
static nn_status parse_header(const char *path, const unsigned char *h,
                              int rank, nn_idx *out, uint64_t *payload,
                              nn_error *err)
{
    uint64_t total = 1;
    out->rank = rank;
    for (int i = 0; i < rank; i++) {
        uint32_t d = nn_get_u32_be(h + 4 + 4 * i);
        if (d == 0 || d > NN_MAX_DIM)
            return nn_fail(err, NN_ERR_LIMIT, "%s: dimension %d is %u (must "
                           "be 1..%d)", path, i + 1, d, NN_MAX_DIM);
        out->dim[i] = d;
        total *= d;   /* <= 65536^4 = 2^64 - can overflow only at rank 4 */
        if (total > NN_MAX_IDX_BYTES)
            return nn_fail(err, NN_ERR_LIMIT, "%s: header promises more "
                           "than the limit of %llu bytes of data", path,
                           (unsigned long long)NN_MAX_IDX_BYTES);
    }
    *payload = total;
    return NN_OK;
}

/* Reads up to n bytes; returns the count read, or -1 on a gzip error. */
static long long gz_read_all(gzFile g, unsigned char *dst, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
        int r = gzread(g, dst + got, (unsigned)want);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (long long)got;
}

nn_status nn_idx_load(const char *path, nn_idx *out, nn_error *err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return nn_fail(err, NN_ERR_IO, "%s: cannot open: %s", path,
                       strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        bool dir = S_ISDIR(st.st_mode);
        fclose(f);
        return nn_fail(err, NN_ERR_IO, "%s: %s", path,
                       dir ? "is a directory" : "not a regular file");
    }
    unsigned char magic[2] = {0, 0};
    size_t m = fread(magic, 1, 2, f);
    bool gz = m == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    rewind(f);
    gzFile g = gzdopen(dup(fileno(f)), "rb");
    fclose(f);
    if (!g)
        return nn_fail(err, NN_ERR_NOMEM, "%s: cannot read", path);
    gzbuffer(g, 1 << 17);

    nn_status s = NN_OK;
    unsigned char h[4 + 16];
    long long r = gz_read_all(g, h, 4);
    if (r < 0) {
        s = nn_fail(err, NN_ERR_FORMAT, "%s: corrupt gzip data", path);
        goto done;
    }
    if (r < 4) {
        s = nn_fail(err, NN_ERR_FORMAT, "%s: too short for an IDX header "
                    "(%lld bytes)", path, r);
        goto done;
    }
    if (h[0] != 0 || h[1] != 0) {
        s = nn_fail(err, NN_ERR_FORMAT, "%s: bad magic (not an IDX file)",
                    path);
        goto done;
    }
    if (h[2] != 0x08) {
        s = nn_fail(err, NN_ERR_FORMAT, "%s: element type 0x%02x is not "
                    "supported (only unsigned byte, 0x08)", path, h[2]);
        goto done;
    }
    int rank = h[3];
    if (rank < 1 || rank > 4) {
        s = nn_fail(err, NN_ERR_FORMAT, "%s: bad magic: rank %d (must be "
                    "1..4)", path, rank);
        goto done;
    }
    r = gz_read_all(g, h + 4, 4 * (size_t)rank);
    if (r != 4 * rank) {
        s = nn_fail(err, NN_ERR_FORMAT, "%s: truncated header", path);
        goto done;
    }
    uint64_t payload = 0;
    if ((s = parse_header(path, h, rank, out, &payload, err)) != NN_OK)
        goto done;
    uint64_t header = 4 + 4 * (uint64_t)rank;
    if (!gz && (uint64_t)st.st_size != header + payload) {
        uint64_t have = (uint64_t)st.st_size - header;
        s = nn_fail(err, NN_ERR_FORMAT, have < payload ?
                    "%s: truncated: expected %llu bytes of data, found %llu" :
                    "%s: expected %llu bytes of data, found %llu (trailing "
                    "bytes)", path, (unsigned long long)payload,
                    (unsigned long long)have);
        goto done;
    }
    /* Raw: the file proved its length. Gzip: grow as data arrives. */
    size_t cap = gz && payload > GZ_CHUNK ? GZ_CHUNK : (size_t)payload;
    size_t got = 0;
    out->data = malloc(cap);
    if (!out->data) {
        s = nn_fail(err, NN_ERR_NOMEM, "%s: out of memory for %zu bytes",
                    path, cap);
        goto done;
    }
    while (got < payload) {
        if (got == cap) {
            size_t ncap = payload - cap > GZ_CHUNK ? cap + GZ_CHUNK
                                                   : (size_t)payload;
            unsigned char *p = realloc(out->data, ncap);
            if (!p) {
                s = nn_fail(err, NN_ERR_NOMEM, "%s: out of memory", path);
                goto done;
            }
            out->data = p;
            cap = ncap;
        }
        r = gz_read_all(g, out->data + got, cap - got);
        if (r < 0) {
            s = nn_fail(err, NN_ERR_FORMAT, "%s: corrupt gzip data", path);
            goto done;
        }
        got += (size_t)r;
        if (r == 0 || got < cap)
            break;
    }
    if (got < payload) {
        s = nn_fail(err, NN_ERR_FORMAT, "%s: truncated: expected %llu bytes "
                    "of data, found %zu", path, (unsigned long long)payload,
                    got);
        goto done;
    }
    if (gz) {
        unsigned char extra;
        r = gz_read_all(g, &extra, 1);
        if (r < 0) {
            s = nn_fail(err, NN_ERR_FORMAT, "%s: corrupt gzip data", path);
            goto done;
        }
        if (r > 0) {
            s = nn_fail(err, NN_ERR_FORMAT, "%s: trailing bytes after %llu "
                        "bytes of data", path, (unsigned long long)payload);
            goto done;
        }
    }
done:
    gzclose(g);
    if (s != NN_OK)
        nn_idx_free(out);
    return s;
}

nn_status nn_idx_save(const char *path, int rank, const uint32_t *dim,
                      const uint8_t *data, nn_error *err)
{
    if (rank < 1 || rank > 4)
        return nn_fail(err, NN_ERR_ARG, "%s: rank must be 1..4", path);
    unsigned char h[20] = {0, 0, 0x08, (unsigned char)rank};
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        h[4 + 4 * i] = (unsigned char)(dim[i] >> 24);
        h[5 + 4 * i] = (unsigned char)(dim[i] >> 16);
        h[6 + 4 * i] = (unsigned char)(dim[i] >> 8);
        h[7 + 4 * i] = (unsigned char)dim[i];
        n *= dim[i];
    }
    nn_afile af;
    nn_status s = nn_afile_open(&af, path, err);
    if (s != NN_OK)
        return s;
    if (fwrite(h, 1, 4 + 4 * (size_t)rank, af.f) != 4 + 4 * (size_t)rank ||
        (n && fwrite(data, 1, n, af.f) != n)) {
        nn_afile_abort(&af);
        return nn_fail(err, NN_ERR_IO, "%s: cannot write", path);
    }
    return nn_afile_commit(&af, err);
}

nn_status nn_idx_load_pair(const char *images_path, const char *labels_path,
                           int max_classes, nn_dataset *out, nn_error *err)
{
    memset(out, 0, sizeof *out);
    dataset_store *st = calloc(1, sizeof *st);
    if (!st)
        return nn_fail(err, NN_ERR_NOMEM, "out of memory");
    nn_status s;
    if ((s = nn_idx_load(images_path, &st->images, err)) ||
        (s = nn_idx_load(labels_path, &st->labels, err)))
        goto fail;
    nn_idx *im = &st->images, *lb = &st->labels;
    if (im->rank != 3 && im->rank != 4) {
        s = nn_fail(err, NN_ERR_FORMAT, "%s: images need rank 3 (n, h, w) "
                    "or 4 (n, h, w, c), found rank %d", images_path,
                    im->rank);
        goto fail;
    }
    if (lb->rank != 1) {
        s = nn_fail(err, NN_ERR_FORMAT, "%s: labels need rank 1, found rank "
                    "%d", labels_path, lb->rank);
        goto fail;
    }
    if (im->dim[0] != lb->dim[0]) {
        s = nn_fail(err, NN_ERR_FORMAT, "%s: %u images but %u labels in %s",
                    images_path, im->dim[0], lb->dim[0], labels_path);
        goto fail;
    }
    nn_shape shape = nn_shape3((int)im->dim[1], (int)im->dim[2],
                               im->rank == 4 ? (int)im->dim[3] : 1);
    if (nn_shape_size(shape) > NN_MAX_SAMPLE_SIZE) {
        s = nn_fail(err, NN_ERR_LIMIT, "%s: images of %zu values exceed the "
                    "limit", images_path, nn_shape_size(shape));
        goto fail;
    }
    int limit = max_classes > 0 ? max_classes : NN_MAX_CLASSES;
    int top = 0;
    for (uint32_t i = 0; i < lb->dim[0]; i++) {
        if (lb->data[i] >= limit) {
            s = nn_fail(err, NN_ERR_FORMAT, "%s: label %d of item %u is out "
                        "of range (must be below %d)", labels_path,
                        lb->data[i], i, limit);
            goto fail;
        }
        top = lb->data[i] > top ? lb->data[i] : top;
    }
    out->n = im->dim[0];
    out->shape = shape;
    out->x_u8 = im->data;
    out->scale = 1.0f / 255.0f;
    out->labels = lb->data;
    out->num_classes = top + 1;
    out->owned_ = st;
    return NN_OK;
fail:
    nn_idx_free(&st->images);
    nn_idx_free(&st->labels);
    free(st);
    return s;
}

void nn_dataset_free(nn_dataset *d)
{
    if (!d)
        return;
    dataset_store *st = d->owned_;
    if (st) {
        nn_idx_free(&st->images);
        nn_idx_free(&st->labels);
        free(st);
    }
    memset(d, 0, sizeof *d);
}

/* Targets rows are num_classes floats wide. */
nn_dataset nn_dataset_slice(const nn_dataset *d, size_t begin, size_t count)
{
    nn_dataset s = *d;
    size_t n = nn_shape_size(d->shape);
    s.n = count;
    s.owned_ = NULL;
    if (d->x_u8)
        s.x_u8 = d->x_u8 + begin * n;
    if (d->x_f32)
        s.x_f32 = d->x_f32 + begin * n;
    if (d->labels)
        s.labels = d->labels + begin;
    if (d->targets)
        s.targets = d->targets + begin * (size_t)d->num_classes;
    return s;
}
