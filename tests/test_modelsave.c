/*
 * test_modelsave.c - what nn_model_save may replace and what it may write
 * (issue 10): never a folder, device, FIFO or socket; through a symbolic
 * link to the file it points to; the replaced file's permission bits kept;
 * never a model that nn_model_load would refuse (non-finite parameters,
 * optimizer state of an uncompiled model). Also nn_model_fit_position.
 */
#define _XOPEN_SOURCE 700   /* mknod, symlink, readlink */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "nn.h"
#include "util/tmpdir.h"

/* A small initialised model, compiled when `compile`. */
static nn_model *small(bool compile)
{
    nn_error err;
    nn_model *m = nn_model_new(nn_shape1(4));
    assert_non_null(m);
    assert_int_equal(nn_model_add(m, nn_dense(3, NN_ACT_SOFTMAX), &err),
                     NN_OK);
    nn_rng rng;
    nn_rng_seed(&rng, 1);
    assert_int_equal(nn_model_init(m, &rng, &err), NN_OK);
    if (compile)
        assert_int_equal(nn_model_compile(m, NN_LOSS_CATEGORICAL_CROSSENTROPY,
                                          nn_adam(), &err), NN_OK);
    return m;
}

/* A file's whole contents (at most 4 KiB) as a string. */
static const char *contents(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return buf;
}

static int setup(void **state)
{
    (void)state;
    return tu_tmpdir_make("modelsave") ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tu_tmpdir_remove();
    return 0;
}

static void test_refuses_fifo_socket_folder(void **state)
{
    (void)state;
    nn_model *m = small(true);
    nn_error err;
    struct stat st;
    const char *fifo = tu_path("fifo.nn");
    assert_int_equal(mkfifo(fifo, 0644), 0);
    assert_int_equal(nn_model_save(m, fifo, false, &err), NN_ERR_IO);
    assert_non_null(strstr(err.msg, "not a regular file"));
    assert_int_equal(lstat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));

    const char *sock = tu_path("sock.nn");
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
    assert_true(s >= 0);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(nn_model_save(m, sock, false, &err), NN_ERR_IO);
    assert_int_equal(lstat(sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    close(s);

    const char *dir = tu_path("dir.nn");
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(nn_model_save(m, dir, false, &err), NN_ERR_IO);
    assert_non_null(strstr(err.msg, "folder"));
    assert_int_equal(lstat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* a device node of our own (root only; elsewhere mknod fails) */
    const char *dev = tu_path("null.nn");
    if (mknod(dev, S_IFCHR | 0666, makedev(1, 3)) == 0) {
        assert_int_equal(nn_model_save(m, dev, false, &err), NN_ERR_IO);
        assert_int_equal(lstat(dev, &st), 0);
        assert_true(S_ISCHR(st.st_mode));
    }
    assert_int_equal(nn_model_save(m, "", false, &err), NN_ERR_ARG);
    nn_model_free(m);
}

static void test_follows_symlink(void **state)
{
    (void)state;
    nn_model *m = small(true);
    nn_error err;
    const char *target = tu_path("target.nn"), *link = tu_path("link.nn");
    assert_true(tu_write("target.nn", "old", 3));
    assert_int_equal(symlink("target.nn", link), 0);
    assert_int_equal(nn_model_save(m, link, false, &err), NN_OK);
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));                 /* the link stays */
    nn_model *back = nn_model_load(target, &err);     /* its target is new */
    assert_non_null(back);
    nn_model_free(back);

    const char *dangling = tu_path("dangling.nn");
    assert_int_equal(symlink("nowhere/x.nn", dangling), 0);
    assert_int_equal(nn_model_save(m, dangling, false, &err), NN_ERR_IO);
    assert_non_null(strstr(err.msg, "symbolic link"));
    assert_int_equal(lstat(dangling, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    nn_model_free(m);
}

static void test_keeps_mode(void **state)
{
    (void)state;
    nn_model *m = small(true);
    nn_error err;
    const char *p = tu_path("mode.nn");
    assert_true(tu_write("mode.nn", "x", 1));
    assert_int_equal(chmod(p, 0600), 0);
    assert_int_equal(nn_model_save(m, p, false, &err), NN_OK);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(chmod(p, 0640), 0);
    assert_int_equal(nn_model_save(m, p, true, &err), NN_OK);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    nn_model_free(m);
}

static void test_refuses_what_load_refuses(void **state)
{
    (void)state;
    nn_error err;
    nn_model *m = small(true);
    const char *p = tu_path("nan.nn");
    assert_true(tu_write("nan.nn", "previous", 8));
    nn_model_params(m)[2] = NAN;
    assert_int_equal(nn_model_save(m, p, false, &err), NN_ERR_STATE);
    assert_non_null(strstr(err.msg, "NaN or infinity"));
    nn_model_params(m)[2] = INFINITY;
    assert_int_equal(nn_model_save(m, p, true, &err), NN_ERR_STATE);
    assert_string_equal(contents(p), "previous");     /* left alone */
    nn_model_params(m)[2] = 0.5f;
    assert_int_equal(nn_model_save(m, p, false, &err), NN_OK);
    nn_model *back = nn_model_load(p, &err);
    assert_non_null(back);
    nn_model_free(back);
    nn_model_free(m);

    /* uncompiled: no optimizer state to write */
    m = small(false);
    assert_int_equal(nn_model_save(m, tu_path("u.nn"), true, &err),
                     NN_ERR_STATE);
    assert_int_equal(access(tu_path("u.nn"), F_OK), -1);
    nn_model_free(m);
    assert_int_equal(nn_model_save(NULL, p, false, &err), NN_ERR_ARG);
}

static void test_fit_position(void **state)
{
    (void)state;
    nn_error err;
    nn_model *m = small(true);
    int epoch = -1;
    float lr = 0;
    assert_false(nn_model_fit_position(m, &epoch, &lr));
    assert_false(nn_model_fit_position(NULL, NULL, NULL));
    /* a fit interrupted after its first epoch carries epoch 1 and its lr */
    float x[8 * 4];
    uint8_t lab[8];
    for (int i = 0; i < 8 * 4; i++)
        x[i] = (float)(i % 5) / 5.0f;
    for (int i = 0; i < 8; i++)
        lab[i] = (uint8_t)(i % 3);
    nn_dataset d = {.n = 8, .shape = nn_shape1(4), .x_f32 = x, .scale = 1,
                    .labels = lab, .num_classes = 3};
    nn_fit_options fo = nn_fit_defaults();
    fo.epochs = 3;
    fo.batch_size = 4;
    fo.on_epoch = NULL;
    fo.on_batch = NULL;
    assert_int_equal(nn_model_fit(m, &d, &fo, NULL, &err), NN_OK);
    assert_false(nn_model_fit_position(m, NULL, NULL));  /* finished */
    nn_model_free(m);
}

static bool stop_after_first(void *user, int epoch, const nn_epoch_stats *s)
{
    (void)user;
    (void)s;
    return epoch < 0;
}

static void test_fit_position_interrupted(void **state)
{
    (void)state;
    nn_error err;
    nn_model *m = small(true);
    float x[8 * 4];
    uint8_t lab[8];
    for (int i = 0; i < 8 * 4; i++)
        x[i] = (float)(i % 5) / 5.0f;
    for (int i = 0; i < 8; i++)
        lab[i] = (uint8_t)(i % 3);
    nn_dataset d = {.n = 8, .shape = nn_shape1(4), .x_f32 = x, .scale = 1,
                    .labels = lab, .num_classes = 3};
    nn_fit_options fo = nn_fit_defaults();
    fo.epochs = 3;
    fo.batch_size = 4;
    fo.on_epoch = stop_after_first;
    assert_int_equal(nn_model_fit(m, &d, &fo, NULL, &err), NN_ERR_INTERRUPTED);
    int epoch = -1;
    float lr = 0;
    assert_true(nn_model_fit_position(m, &epoch, &lr));
    assert_int_equal(epoch, 1);
    assert_true(lr == nn_adam().lr);
    /* the checkpoint round-trips, and a finished model file is not one */
    const char *p = tu_path("ck.nn");
    assert_int_equal(nn_model_save(m, p, true, &err), NN_OK);
    nn_model *back = nn_model_load(p, &err);
    assert_non_null(back);
    epoch = -1;
    assert_true(nn_model_fit_position(back, &epoch, NULL));
    assert_int_equal(epoch, 1);
    nn_model_free(back);
    assert_int_equal(nn_model_save(m, p, false, &err), NN_OK);
    back = nn_model_load(p, &err);
    assert_non_null(back);
    assert_false(nn_model_fit_position(back, NULL, NULL));
    nn_model_free(back);
    nn_model_free(m);
}

static void test_load_refuses_foreign_file_early(void **state)
{
    (void)state;
    nn_error err;
    assert_true(tu_write("notes.txt", "my notes, not a model", 21));
    assert_null(nn_model_load(tu_path("notes.txt"), &err));
    assert_int_equal(err.code, NN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "not a digits model file"));
}

/* A checkpoint the tool saves under its own temporary name first
 * ("<ckpt>.tmp.<pid>.<n>") and a writer killed during that save leave
 * "<ckpt>.tmp.<pid>.<n>.tmp.<pid>.<m>": the next save to <ckpt> removes
 * both when <pid> is gone, and nothing of a live process. */
static void test_removes_nested_stale_temporaries(void **state)
{
    (void)state;
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    assert_true(dead > 0);
    assert_int_equal(waitpid(dead, NULL, 0), dead);
    char names[4][96];
    snprintf(names[0], 96, "c.ckpt.tmp.%ld.999999999", (long)dead);
    snprintf(names[1], 96, "c.ckpt.tmp.%ld.999999999.tmp.%ld.0", (long)dead,
             (long)dead);
    snprintf(names[2], 96, "c.ckpt.tmp.%ld.9.tmp.%ld.0", (long)getppid(),
             (long)getppid());                                  /* alive */
    snprintf(names[3], 96, "c.ckpt.tmp.%ld.9.tmp.x", (long)dead); /* not ours */
    for (int i = 0; i < 4; i++)
        assert_true(tu_write(names[i], "x", 1));
    nn_model *m = small(true);
    nn_error err;
    assert_int_equal(nn_model_save(m, tu_path("c.ckpt"), true, &err), NN_OK);
    assert_int_equal(access(tu_path(names[0]), F_OK), -1);
    assert_int_equal(access(tu_path(names[1]), F_OK), -1);
    assert_int_equal(access(tu_path(names[2]), F_OK), 0);
    assert_int_equal(access(tu_path(names[3]), F_OK), 0);
    nn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refuses_fifo_socket_folder),
        cmocka_unit_test(test_follows_symlink),
        cmocka_unit_test(test_keeps_mode),
        cmocka_unit_test(test_refuses_what_load_refuses),
        cmocka_unit_test(test_fit_position),
        cmocka_unit_test(test_fit_position_interrupted),
        cmocka_unit_test(test_load_refuses_foreign_file_early),
        cmocka_unit_test(test_removes_nested_stale_temporaries),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
