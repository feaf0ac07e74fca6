/*
 * replay.c - runs a fuzz target's LLVMFuzzerTestOneInput over files, without
 * libFuzzer, so any compiler (gcc too) and valgrind can replay a corpus.
 * Usage: replay_TARGET FILE|DIR...  (directories: every regular file in
 * them, in name order). Exits 0 when every input ran; a crash is a crash.
 * REPLAY_VERBOSE=1 prints each input's name on stderr before running it.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    if (getenv("REPLAY_VERBOSE"))   /* names each input (to find a culprit) */
        fprintf(stderr, "replay: %s\n", path);
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    size_t cap = 1 << 12, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            fprintf(stderr, "%s: out of memory\n", path);
            return 1;
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        uint8_t *nb = realloc(buf, cap *= 2);
        if (!nb)
            free(buf);
        buf = nb;
    }
    fclose(f);
    /* an exact-size copy, so reading past the input is caught */
    uint8_t *in = malloc(n ? n : 1);
    if (!in) {
        free(buf);
        return 1;
    }
    memcpy(in, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(in, n);
    free(in);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return 1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int fail = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) {
                fail = 1;
                break;
            }
            names = nn;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(len))) {
            fail = 1;
            break;
        }
        snprintf(names[n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (!fail && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            fail |= run_file(names[i]);
            (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return fail;
}

int main(int argc, char **argv)
{
    int fail = 0, count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            fail = 1;
        } else if (S_ISDIR(st.st_mode)) {
            fail |= run_dir(argv[i], &count);
        } else {
            fail |= run_file(argv[i]);
            count++;
        }
    }
    printf("%s: %d inputs replayed\n", argc > 0 ? argv[0] : "replay", count);
    return fail;
}
