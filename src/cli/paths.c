/*
 * paths.c - the files the tool writes, checked before any work starts: an
 * output must be a regular file (or a new name) in a folder that exists,
 * and no two of the files a command reads and writes may be the same file.
 */
#define _XOPEN_SOURCE 700   /* realpath */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

/* The folder part of path ("." when it has none) into out. */
static void folder_of(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, size, ".");
    else if (slash == path)
        snprintf(out, size, "/");
    else
        snprintf(out, size, "%.*s", (int)(slash - path), path);
}

bool cli_check_output(const char *opt, const char *path)
{
    struct stat st;
    if (!*path) {
        cli_error("%s: empty file name", opt);
        return false;
    }
    if (lstat(path, &st) == 0) {
        bool link = S_ISLNK(st.st_mode);
        if (link && stat(path, &st) != 0) {
            cli_error("%s: %s is a symbolic link to a missing file", opt,
                      path);
            return false;
        }
        if (S_ISDIR(st.st_mode)) {
            cli_error("%s: %s is a folder, not a file", opt, path);
            return false;
        }
        if (!S_ISREG(st.st_mode)) {
            cli_error("%s: %s is not a regular file (a device, FIFO or "
                      "socket); refusing to replace it", opt, path);
            return false;
        }
        if (link)
            return true;   /* the file it points to is replaced */
    } else if (errno != ENOENT) {
        cli_error("%s: %s: %s", opt, path, strerror(errno));
        return false;
    } else if (path[strlen(path) - 1] == '/') {
        cli_error("%s: '%s' names a folder, not a file", opt, path);
        return false;
    }
    char dir[4096];
    folder_of(path, dir, sizeof dir);
    if (stat(dir, &st) != 0) {
        cli_error("%s: no such folder: %s", opt, dir);
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_error("%s: %s is not a folder", opt, dir);
        return false;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        cli_error("%s: cannot write in %s: %s", opt, dir, strerror(errno));
        return false;
    }
    return true;
}

/* Who a path is: device and inode when it exists (links followed), else
 * its folder's real path and its own name. */
typedef struct identity {
    bool exists;
    dev_t dev;
    ino_t ino;
    char name[8192];
} identity;

static void identify(const char *path, identity *id)
{
    struct stat st;
    memset(id, 0, sizeof *id);
    if (stat(path, &st) == 0) {
        id->exists = true;
        id->dev = st.st_dev;
        id->ino = st.st_ino;
        return;
    }
    char dir[4096];
    folder_of(path, dir, sizeof dir);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *real = realpath(dir, NULL);
    snprintf(id->name, sizeof id->name, "%s/%s", real ? real : dir, base);
    free(real);
}

static bool same(const identity *a, const identity *b)
{
    if (a->exists != b->exists)
        return false;
    if (a->exists)
        return a->dev == b->dev && a->ino == b->ino;
    return strcmp(a->name, b->name) == 0;
}

bool cli_check_distinct(const cli_file *out, int n_out, const cli_file *in,
                        int n_in)
{
    identity *id = malloc(sizeof *id * (size_t)(n_out + n_in));
    if (!id) {
        cli_error("out of memory");
        return false;
    }
    for (int i = 0; i < n_out + n_in; i++) {
        const cli_file *f = i < n_out ? &out[i] : &in[i - n_out];
        if (f->path)
            identify(f->path, &id[i]);
    }
    bool ok = true;
    for (int i = 0; ok && i < n_out; i++) {
        if (!out[i].path)
            continue;
        for (int j = 0; ok && j < n_out + n_in; j++) {
            const cli_file *g = j < n_out ? &out[j] : &in[j - n_out];
            if (j == i || (j < n_out && j < i) || !g->path ||
                !same(&id[i], &id[j]))
                continue;
            if (j < n_out)
                cli_error("%s and %s name the same file (%s)", out[i].opt,
                          g->opt, out[i].path);
            else
                cli_error("%s: %s is the %s this command reads; refusing "
                          "to overwrite it", out[i].opt, out[i].path, g->opt);
            ok = false;
        }
    }
    free(id);
    return ok;
}
