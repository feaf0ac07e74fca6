/*
 * test_idx.c - the IDX reader and data sets, on files generated here:
 * good raw and gzip files (small, and one past the first 16 MiB gzip
 * buffer), nn_idx_save round trips, and every kind of broken file with the
 * code and the message (path first, then a telling word) it must give.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "nn.h"
#include "util/tmpdir.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* Builds an IDX file image in buf: header (type, rank, dims big-endian),
 * then `payload` bytes of a fixed pattern. Returns the total length. */
static size_t make_idx(unsigned char *buf, int type, int rank,
                       const uint32_t *dims, size_t payload)
{
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = (unsigned char)type;
    buf[3] = (unsigned char)rank;
    for (int i = 0; i < rank; i++)
        for (int b = 0; b < 4; b++)
            buf[4 + 4 * i + b] = (unsigned char)(dims[i] >> (24 - 8 * b));
    size_t h = 4 + 4 * (size_t)rank;
    for (size_t i = 0; i < payload; i++)
        buf[h + i] = (unsigned char)((i * 7) % 251);
    return h + payload;
}

/* mode: "wb" (default level), "wb0" (stored blocks), "wb1" (fast). */
static void write_gz(const char *name, const char *mode, const void *data,
                     size_t n)
{
    gzFile g = gzopen(tu_path(name), mode);
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
    assert_int_equal(gzclose(g), Z_OK);
}

static void write_raw(const char *name, const void *data, size_t n)
{
    assert_true(tu_write(name, data, n));
}

/* The message starts with "PATH: " and contains `word` (if not NULL). */
static void check_msg(const nn_error *err, const char *path, const char *word)
{
    size_t n = strlen(path);
    if (strncmp(err->msg, path, n) != 0 || strncmp(err->msg + n, ": ", 2))
        fail_msg("message '%s' does not start with '%s: '", err->msg, path);
    if (word && !strstr(err->msg, word))
        fail_msg("message '%s' lacks '%s'", err->msg, word);
}

/* Loads `name`, expects `code`, a zeroed *out and `word` in the message. */
static void expect_fail(const char *name, nn_status code, const char *word)
{
    nn_idx x;
    nn_error err;
    memset(&x, 0xab, sizeof x);
    memset(&err, 0, sizeof err);
    const char *path = tu_path(name);
    nn_status s = nn_idx_load(path, &x, &err);
    if (s != code)
        fail_msg("%s: got %s (%s), want %s", name, nn_status_str(s), err.msg,
                 nn_status_str(code));
    assert_int_equal(err.code, code);
    assert_null(x.data);
    assert_int_equal(x.rank, 0);
    check_msg(&err, path, word);

    /* the same bytes from memory: the same verdict and message */
    static unsigned char bytes[1 << 16];
    struct stat st;
    long n = -1;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
        st.st_size < (off_t)sizeof bytes)
        n = tu_read(name, bytes, sizeof bytes);
    if (n < 0)
        return;
    nn_error e2;
    memset(&x, 0xab, sizeof x);
    s = nn_idx_load_mem(bytes, (size_t)n, path, &x, &e2);
    if (s != code || strcmp(e2.msg, err.msg) != 0)
        fail_msg("%s from memory: got %s (%s), want %s (%s)", name,
                 nn_status_str(s), e2.msg, nn_status_str(code), err.msg);
    assert_null(x.data);
    assert_int_equal(x.rank, 0);
}

static unsigned char buf[8192];

/* --------------------------------------------------------- good files */

static void test_good_raw_and_gz(void **state)
{
    (void)state;
    uint32_t dims[3] = {3, 4, 5};
    size_t n = make_idx(buf, 8, 3, dims, 60);
    write_raw("good", buf, n);
    write_gz("good.gz", "wb", buf, n);
    write_gz("good.idx", "wb", buf, n);   /* gzip found by content */
    const char *names[] = {"good", "good.gz", "good.idx"};
    for (int k = 0; k < 3; k++) {
        nn_idx x;
        nn_error err;
        nn_status s = nn_idx_load(tu_path(names[k]), &x, &err);
        if (s != NN_OK)
            fail_msg("%s: %s", names[k], err.msg);
        assert_int_equal(x.rank, 3);
        assert_int_equal(x.dim[0], 3);
        assert_int_equal(x.dim[1], 4);
        assert_int_equal(x.dim[2], 5);
        assert_memory_equal(x.data, buf + 16, 60);
        nn_idx_free(&x);
        assert_null(x.data);
        /* the same bytes from memory */
        static unsigned char file[8192];
        long fn = tu_read(names[k], file, sizeof file);
        assert_true(fn > 0);
        s = nn_idx_load_mem(file, (size_t)fn, names[k], &x, &err);
        if (s != NN_OK)
            fail_msg("%s from memory: %s", names[k], err.msg);
        assert_int_equal(x.rank, 3);
        assert_int_equal(x.dim[2], 5);
        assert_memory_equal(x.data, buf + 16, 60);
        nn_idx_free(&x);
    }
    nn_idx_free(NULL);
}

/* nn_idx_load_mem: gzip members read on, other trailing data ignored
 * (as zlib's gzread does for files), and the checks on its arguments. */
static void test_load_mem(void **state)
{
    (void)state;
    uint32_t dims[2] = {5, 8};
    size_t n = make_idx(buf, 8, 2, dims, 40);
    unsigned char z[512];
    size_t zn = 0;
    /* two gzip members: the header, then the data */
    for (int part = 0; part < 2; part++) {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 31, 8,
                                      Z_DEFAULT_STRATEGY), Z_OK);
        zs.next_in = buf + (part ? 12 : 0);
        zs.avail_in = part ? (uInt)(n - 12) : 12;
        zs.next_out = z + zn;
        zs.avail_out = (uInt)(sizeof z - zn);
        assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
        zn = sizeof z - zs.avail_out;
        deflateEnd(&zs);
    }
    memcpy(z + zn, "tail", 4);   /* not a gzip member: ignored */
    write_raw("two.gz", z, zn + 4);
    nn_idx x, y;
    nn_error err;
    assert_int_equal(nn_idx_load_mem(z, zn + 4, "two.gz", &x, &err), NN_OK);
    assert_int_equal(nn_idx_load(tu_path("two.gz"), &y, &err), NN_OK);
    assert_int_equal(x.rank, 2);
    assert_int_equal(x.dim[1], 8);
    assert_memory_equal(x.data, buf + 12, 40);
    assert_memory_equal(y.data, buf + 12, 40);
    nn_idx_free(&x);
    nn_idx_free(&y);

    assert_int_equal(nn_idx_load_mem(NULL, 0, NULL, &x, &err),
                     NN_ERR_FORMAT);
    assert_string_equal(err.msg, "IDX data: too short for an IDX header "
                        "(0 bytes)");
    assert_int_equal(nn_idx_load_mem(NULL, 5, "x", &x, &err), NN_ERR_ARG);
    assert_int_equal(nn_idx_load_mem(buf, n, "x", NULL, &err), NN_ERR_ARG);
}

/* A gzip payload larger than the first 16 MiB buffer: it must grow, keep
 * every byte, and still notice a stream that stops short. */
static void test_gz_past_first_buffer(void **state)
{
    (void)state;
    uint32_t dims[3] = {300, 256, 256};   /* 19,660,800 bytes */
    size_t payload = 300u * 256 * 256;
    unsigned char *big = malloc(16 + payload);
    assert_non_null(big);
    size_t n = make_idx(big, 8, 3, dims, payload);
    write_gz("big.gz", "wb1", big, n);
    nn_idx x;
    nn_error err;
    if (nn_idx_load(tu_path("big.gz"), &x, &err) != NN_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(x.dim[0], 300);
    assert_memory_equal(x.data, big + 16, payload);
    nn_idx_free(&x);

    dims[0] = 1200;   /* promise four times what is there */
    make_idx(big, 8, 3, dims, 0);
    write_gz("bigshort.gz", "wb1", big, n);
    expect_fail("bigshort.gz", NN_ERR_FORMAT,
                "truncated: expected 78643200 bytes of data, found 19660800");
    free(big);
}

static void test_save_round_trip(void **state)
{
    (void)state;
    uint32_t dims[4] = {7, 3, 2, 1};
    uint8_t data[42];
    for (int i = 0; i < 42; i++)
        data[i] = (uint8_t)(i * 11);
    nn_error err;
    assert_int_equal(nn_idx_save(tu_path("saved"), 4, dims, data, &err),
                     NN_OK);
    /* the bytes on disk: magic, then big-endian dims, then the data */
    unsigned char file[128];
    assert_int_equal(tu_read("saved", file, sizeof file), 20 + 42);
    const unsigned char head[20] = {0, 0, 8, 4, 0, 0, 0, 7, 0, 0, 0, 3,
                                    0, 0, 0, 2, 0, 0, 0, 1};
    assert_memory_equal(file, head, 20);
    assert_memory_equal(file + 20, data, 42);

    nn_idx x;
    assert_int_equal(nn_idx_load(tu_path("saved"), &x, &err), NN_OK);
    assert_int_equal(x.rank, 4);
    assert_int_equal(x.dim[0], 7);
    assert_int_equal(x.dim[1], 3);
    assert_int_equal(x.dim[2], 2);
    assert_int_equal(x.dim[3], 1);
    assert_memory_equal(x.data, data, 42);
    nn_idx_free(&x);

    /* overwrite in place with a different shape */
    uint32_t d1[1] = {5};
    assert_int_equal(nn_idx_save(tu_path("saved"), 1, d1, data, &err), NN_OK);
    assert_int_equal(nn_idx_load(tu_path("saved"), &x, &err), NN_OK);
    assert_int_equal(x.rank, 1);
    assert_int_equal(x.dim[0], 5);
    nn_idx_free(&x);
}

static void test_save_refuses(void **state)
{
    (void)state;
    uint32_t dims[5] = {1, 1, 1, 1, 1}, zero[2] = {2, 0};
    uint8_t data[4] = {0};
    nn_error err;
    assert_int_equal(nn_idx_save(tu_path("r5"), 5, dims, data, &err),
                     NN_ERR_ARG);
    check_msg(&err, tu_path("r5"), "rank");
    assert_int_equal(nn_idx_save(tu_path("z"), 2, zero, data, &err),
                     NN_ERR_ARG);
    check_msg(&err, tu_path("z"), "dimension 2");
    assert_int_equal(nn_idx_save(tu_path("no/such/dir/f"), 1, dims, data,
                                 &err), NN_ERR_IO);
    check_msg(&err, tu_path("no/such/dir/f"), "No such file");
    assert_int_equal(access(tu_path("r5"), F_OK), -1);
}

/* ------------------------------------------------------- broken files */

static void test_broken_headers(void **state)
{
    (void)state;
    uint32_t dims[4] = {2, 2, 2, 2};
    size_t n = make_idx(buf, 8, 1, dims, 2);
    buf[1] = 7;
    write_raw("magic", buf, n);
    expect_fail("magic", NN_ERR_FORMAT, "magic");

    n = make_idx(buf, 0x0D, 1, dims, 2);   /* float elements */
    write_raw("type", buf, n);
    expect_fail("type", NN_ERR_FORMAT, "type 0x0d");

    n = make_idx(buf, 8, 0, dims, 0);
    write_raw("rank0", buf, n);
    expect_fail("rank0", NN_ERR_FORMAT, "rank 0");

    n = make_idx(buf, 8, 4, dims, 32);
    buf[3] = 5;   /* 5 dims of 2 = 32 bytes would follow */
    write_raw("rank5", buf, n);
    expect_fail("rank5", NN_ERR_FORMAT, "rank 5");

    uint32_t zero[2] = {3, 0};
    n = make_idx(buf, 8, 2, zero, 0);
    write_raw("dim0", buf, n);
    expect_fail("dim0", NN_ERR_FORMAT, "dimension 2 is 0");

    write_raw("empty", buf, 0);
    expect_fail("empty", NN_ERR_FORMAT, "too short");
    write_gz("empty.gz", "wb", buf, 0);
    expect_fail("empty.gz", NN_ERR_FORMAT, "too short");

    make_idx(buf, 8, 3, dims, 0);
    write_raw("shorthdr", buf, 9);   /* 3 dims promised, 1.25 present */
    expect_fail("shorthdr", NN_ERR_FORMAT, "truncated header");
}

/* Child process body: under an address-space limit of `room` bytes more
 * than now, the absurd headers must still fail for the right reason. */
static int absurd_under_rlimit(unsigned long long room)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long pages = 0;
    if (!f || fscanf(f, "%llu", &pages) != 1)
        return 2;
    fclose(f);
    unsigned long long now = pages * (unsigned long long)sysconf(_SC_PAGESIZE);
    struct rlimit rl = {(rlim_t)(now + room), (rlim_t)(now + room)};
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        return 2;
    nn_idx x;
    nn_error err;
    if (nn_idx_load(tu_path("promise4g.gz"), &x, &err) != NN_ERR_FORMAT ||
        !strstr(err.msg, "truncated"))
        return 1;
    if (nn_idx_load(tu_path("huge"), &x, &err) != NN_ERR_LIMIT)
        return 1;
    return 0;
}

static void test_absurd_dimensions_fail_fast(void **state)
{
    (void)state;
    /* 65536^3 = 256 TiB promised: refused from the header alone. */
    uint32_t huge[3] = {65536, 65536, 65536};
    size_t n = make_idx(buf, 8, 3, huge, 10);
    write_raw("huge", buf, n);
    expect_fail("huge", NN_ERR_LIMIT, "limit");
    write_gz("huge.gz", "wb", buf, n);
    expect_fail("huge.gz", NN_ERR_LIMIT, "limit");
    uint32_t over[3] = {0xffffffffu, 1, 1};
    n = make_idx(buf, 8, 3, over, 0);
    write_raw("over", buf, n);
    expect_fail("over", NN_ERR_LIMIT, "dimension 1 is 4294967295");
    /* rank 4 whose product would overflow 64 bits unchecked */
    uint32_t wrap[4] = {65536, 65536, 65536, 65536};
    n = make_idx(buf, 8, 4, wrap, 0);
    write_raw("wrap", buf, n);
    expect_fail("wrap", NN_ERR_LIMIT, "limit");

    /* Exactly the 4 GiB limit, but a 100-byte stream: fails on the data
     * actually present. In a child whose address space can grow by only
     * 512 MiB, a reader that believed the header would get NN_ERR_NOMEM. */
    uint32_t limit[2] = {65536, 65536};
    n = make_idx(buf, 8, 2, limit, 100);
    write_gz("promise4g.gz", "wb", buf, n);
    expect_fail("promise4g.gz", NN_ERR_FORMAT,
                "truncated: expected 4294967296 bytes of data, found 100");
#ifdef UNDER_ASAN
    (void)absurd_under_rlimit;   /* ASan reserves terabytes of address space */
#else
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(absurd_under_rlimit(512ull << 20));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 2)
        skip();
    assert_int_equal(WEXITSTATUS(status), 0);
#endif
}

static void test_truncated_and_trailing(void **state)
{
    (void)state;
    uint32_t dims[2] = {10, 10};
    size_t n = make_idx(buf, 8, 2, dims, 100);
    write_raw("trunc", buf, n - 1);
    expect_fail("trunc", NN_ERR_FORMAT,
                "truncated: expected 100 bytes of data, found 99");
    buf[n] = 1;
    write_raw("trail", buf, n + 1);
    expect_fail("trail", NN_ERR_FORMAT, "trailing");
    write_gz("trail.gz", "wb", buf, n + 1);   /* one byte too many inside */
    expect_fail("trail.gz", NN_ERR_FORMAT, "trailing");
    write_gz("short.gz", "wb", buf, n - 5);   /* complete stream, short */
    expect_fail("short.gz", NN_ERR_FORMAT,
                "truncated: expected 100 bytes of data, found 95");
}

/* Stored (uncompressed) gzip: byte offsets are known exactly. */
static size_t stored_gz(const char *name, size_t payload, long *gn)
{
    uint32_t dims[1] = {(uint32_t)payload};
    static unsigned char raw[1100];
    size_t n = make_idx(raw, 8, 1, dims, payload);
    write_gz(name, "wb0", raw, n);
    *gn = tu_read(name, buf, sizeof buf);
    assert_true(*gn > (long)(n + 18));   /* header, block headers, trailer */
    return n;
}

static void test_truncated_gzip(void **state)
{
    (void)state;
    long gn;
    stored_gz("cut.gz", 1000, &gn);
    write_raw("cut.gz", buf, (size_t)gn / 2);   /* stream stops midway */
    expect_fail("cut.gz", NN_ERR_FORMAT, "truncated: expected 1000 bytes");
    write_raw("cut8.gz", buf, (size_t)gn - 8);   /* CRC and length lost */
    expect_fail("cut8.gz", NN_ERR_FORMAT, "truncated gzip data");
    write_raw("cut2.gz", buf, 12);   /* inside the gzip header */
    expect_fail("cut2.gz", NN_ERR_FORMAT, "too short");
}

static void test_corrupt_gzip(void **state)
{
    (void)state;
    long gn;
    /* a changed data byte in a stored block: only the CRC can tell */
    stored_gz("crc.gz", 1000, &gn);
    buf[gn - 8 - 500] ^= 0x01;
    write_raw("crc.gz", buf, (size_t)gn);
    expect_fail("crc.gz", NN_ERR_FORMAT, "corrupt gzip data");

    /* invalid deflate: a block type 3 (reserved) right after the header */
    stored_gz("bad.gz", 1000, &gn);
    buf[10] = 0x07;   /* BFINAL=1, BTYPE=11 */
    write_raw("bad.gz", buf, (size_t)gn);
    expect_fail("bad.gz", NN_ERR_FORMAT, "corrupt gzip data");

    /* a gzip magic followed by garbage */
    const unsigned char junk[16] = {0x1f, 0x8b, 0x63, 0x63, 0x63, 0x63};
    write_raw("junk.gz", junk, sizeof junk);
    expect_fail("junk.gz", NN_ERR_FORMAT, "corrupt gzip data");

    /* a compressed stream with flipped bytes in the middle */
    uint32_t dims[1] = {4000};
    static unsigned char raw[4100];
    size_t n = make_idx(raw, 8, 1, dims, 4000);
    for (size_t i = 8; i < n; i++)   /* less regular than the pattern */
        raw[i] = (unsigned char)((i * i * 2654435761u) >> 13);
    write_gz("flip.gz", "wb9", raw, n);
    gn = tu_read("flip.gz", buf, sizeof buf);
    assert_true(gn > 200);
    for (long i = gn / 2; i < gn / 2 + 8; i++)
        buf[i] ^= 0xa5;
    write_raw("flip.gz", buf, (size_t)gn);
    expect_fail("flip.gz", NN_ERR_FORMAT, "corrupt gzip data");
}

static void test_not_a_file(void **state)
{
    (void)state;
    expect_fail("nothing-here", NN_ERR_IO,
                "cannot open: No such file or directory");
    assert_int_equal(mkdir(tu_path("adir"), 0755), 0);
    expect_fail("adir", NN_ERR_IO, "is a directory");
    assert_int_equal(mkfifo(tu_path("fifo"), 0644), 0);
    expect_fail("fifo", NN_ERR_IO, "not a regular file");   /* no hang */

    nn_idx x;
    nn_error err;
    assert_int_equal(nn_idx_load(NULL, &x, &err), NN_ERR_ARG);
    assert_null(x.data);
    assert_int_equal(nn_idx_load(tu_path("good"), NULL, &err), NN_ERR_ARG);
}

/* ---------------------------------------------------------- data sets */

/* images (4, 2, 3) with the pattern; labels 0 8 0 7 -> "img", "lab" */
static void write_pair(void)
{
    uint32_t idims[3] = {4, 2, 3};
    size_t n = make_idx(buf, 8, 3, idims, 24);
    write_raw("img", buf, n);
    const unsigned char lab[12] = {0, 0, 8, 1, 0, 0, 0, 4, 0, 8, 0, 7};
    write_raw("lab", lab, sizeof lab);
}

static void test_pair(void **state)
{
    (void)state;
    write_pair();
    nn_dataset d;
    nn_error err;
    assert_int_equal(nn_idx_load_pair(tu_path("img"), tu_path("lab"), 10, &d,
                                      &err), NN_OK);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.shape.rank, 3);
    assert_int_equal(d.shape.dim[0], 2);
    assert_int_equal(d.shape.dim[1], 3);
    assert_int_equal(d.shape.dim[2], 1);
    assert_int_equal(d.num_classes, 9);
    assert_int_equal(d.labels[1], 8);
    assert_int_equal(d.labels[3], 7);
    assert_null(d.x_f32);
    assert_non_null(d.owned[0]);
    assert_non_null(d.owned[1]);
    assert_memory_equal(d.x_u8, buf + 16, 24);
    assert_float_equal(d.scale, 1.0f / 255.0f, 1e-9f);
    nn_dataset_free(&d);
    assert_null(d.x_u8);
    assert_null(d.owned[0]);
    assert_null(d.owned[1]);
    assert_int_equal(d.n, 0);
    nn_dataset_free(NULL);

    /* rank 4 images: (n, h, w, c) -> shape (h, w, c); labels as gzip */
    uint32_t i4[4] = {4, 2, 2, 3};
    size_t n = make_idx(buf, 8, 4, i4, 48);
    write_raw("img4", buf, n);
    const unsigned char lab[12] = {0, 0, 8, 1, 0, 0, 0, 4, 0, 8, 0, 7};
    write_gz("lab.gz", "wb", lab, sizeof lab);
    assert_int_equal(nn_idx_load_pair(tu_path("img4"), tu_path("lab.gz"), 0,
                                      &d, &err), NN_OK);
    assert_int_equal(d.shape.dim[0], 2);
    assert_int_equal(d.shape.dim[1], 2);
    assert_int_equal(d.shape.dim[2], 3);
    assert_memory_equal(d.x_u8, buf + 20, 48);
    nn_dataset_free(&d);
}

/* Loads a pair expecting failure: code, zeroed *out, message. */
static void expect_pair_fail(const char *img, const char *lab, int max,
                             nn_status code, const char *blame,
                             const char *word)
{
    nn_dataset d;
    nn_error err;
    memset(&d, 0xab, sizeof d);
    nn_status s = nn_idx_load_pair(tu_path(img), tu_path(lab), max, &d, &err);
    if (s != code)
        fail_msg("%s + %s: got %s (%s)", img, lab, nn_status_str(s), err.msg);
    assert_null(d.x_u8);
    assert_null(d.labels);
    assert_null(d.owned[0]);
    assert_null(d.owned[1]);
    check_msg(&err, tu_path(blame), word);
}

static void test_pair_refuses(void **state)
{
    (void)state;
    write_pair();
    expect_pair_fail("img", "lab", 8, NN_ERR_FORMAT, "lab",
                     "label 8 of item 1 is out of range");
    expect_pair_fail("img", "lab", -1, NN_ERR_ARG, "img", NULL);

    uint32_t ldims[1] = {3};
    size_t n = make_idx(buf, 8, 1, ldims, 3);
    write_raw("lab3", buf, n);
    expect_pair_fail("img", "lab3", 0, NN_ERR_FORMAT, "img",
                     "4 images but 3 labels");

    expect_pair_fail("lab", "lab", 0, NN_ERR_FORMAT, "lab", "rank 1");
    expect_pair_fail("img", "img", 0, NN_ERR_FORMAT, "img", "rank 3");
    expect_pair_fail("img", "missing", 0, NN_ERR_IO, "missing",
                     "cannot open");
    expect_pair_fail("missing", "lab", 0, NN_ERR_IO, "missing",
                     "cannot open");
}

/* ------------------------------------------------------------- slices */

static void test_slice(void **state)
{
    (void)state;
    float x[5 * 2], t[5 * 3];
    uint8_t lab[5] = {0, 1, 2, 0, 1};
    for (int i = 0; i < 10; i++)
        x[i] = (float)i;
    for (int i = 0; i < 15; i++)
        t[i] = (float)(100 + i);
    nn_dataset d = {.n = 5, .shape = {1, {2, 0, 0}}, .x_f32 = x, .scale = 1,
                    .labels = lab, .targets = t, .num_classes = 3};
    nn_dataset s = nn_dataset_slice(&d, 1, 3);
    assert_int_equal(s.n, 3);
    assert_ptr_equal(s.x_f32, x + 2);
    assert_ptr_equal(s.labels, lab + 1);
    assert_ptr_equal(s.targets, t + 3);   /* rows of num_classes floats */
    assert_null(s.x_u8);
    assert_int_equal(s.num_classes, 3);
    assert_int_equal(s.shape.dim[0], 2);

    /* the row width: target_width when set, whatever num_classes says */
    nn_dataset w = d;
    w.num_classes = 0;
    w.target_width = 3;
    assert_ptr_equal(nn_dataset_slice(&w, 2, 1).targets, t + 6);
    w.target_width = 0;                  /* unknown: no view past row 0 */
    assert_null(nn_dataset_slice(&w, 2, 1).targets);
    assert_ptr_equal(nn_dataset_slice(&w, 0, 1).targets, t);

    s = nn_dataset_slice(&d, 3, 10);   /* clamped to the end */
    assert_int_equal(s.n, 2);
    assert_ptr_equal(s.labels, lab + 3);
    s = nn_dataset_slice(&d, 9, 1);    /* past the end: empty */
    assert_int_equal(s.n, 0);
    assert_ptr_equal(s.labels, lab + 5);

    write_pair();
    nn_dataset p;
    nn_error err;
    assert_int_equal(nn_idx_load_pair(tu_path("img"), tu_path("lab"), 0, &p,
                                      &err), NN_OK);
    s = nn_dataset_slice(&p, 2, 2);
    assert_int_equal(s.n, 2);
    assert_ptr_equal(s.x_u8, p.x_u8 + 12);   /* 2 samples of 2x3 */
    assert_int_equal(s.labels[0], 0);
    assert_int_equal(s.labels[1], 7);
    assert_null(s.owned[0]);
    assert_null(s.owned[1]);
    nn_dataset_free(&s);   /* owns nothing: p stays valid */
    assert_int_equal(p.labels[3], 7);
    nn_dataset_free(&p);
}

int main(void)
{
    if (!tu_tmpdir_make("idx"))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_raw_and_gz),
        cmocka_unit_test(test_gz_past_first_buffer),
        cmocka_unit_test(test_load_mem),
        cmocka_unit_test(test_save_round_trip),
        cmocka_unit_test(test_save_refuses),
        cmocka_unit_test(test_broken_headers),
        cmocka_unit_test(test_absurd_dimensions_fail_fast),
        cmocka_unit_test(test_truncated_and_trailing),
        cmocka_unit_test(test_truncated_gzip),
        cmocka_unit_test(test_corrupt_gzip),
        cmocka_unit_test(test_not_a_file),
        cmocka_unit_test(test_pair),
        cmocka_unit_test(test_pair_refuses),
        cmocka_unit_test(test_slice),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_tmpdir_remove();
    return rc;
}
