/*
 * afile.c - atomic file replacement: write a temporary file in the target's
 * folder, fsync it, rename it over the target, fsync the folder. A crash at
 * any moment leaves either the old file or the complete new one.
 *
 * A writer killed outright (SIGKILL, power cut) leaves its temporary
 * "<path>.tmp.<pid>.<n>" behind; the next save to the same path removes
 * those whose process no longer exists (on this machine: a writer on
 * another host sharing the folder must not write the same path).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/internal.h"

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Removes "<base>.tmp.<pid>.<n>" in path's folder for every pid that is
 * not a live process: temporaries of writers that were killed. Best
 * effort: any failure just leaves files in place. */
static void remove_stale(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t blen = strlen(base);
    char *dir = dup_str(path);
    if (!dir || !blen) {
        free(dir);
        return;
    }
    if (slash)
        dir[slash == path ? 1 : (size_t)(slash - path)] = '\0';
    DIR *d = opendir(slash ? dir : ".");
    free(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, base, blen) != 0 || strncmp(n + blen, ".tmp.", 5) != 0)
            continue;
        char *end;
        errno = 0;
        long pid = strtol(n + blen + 5, &end, 10);
        if (errno || end == n + blen + 5 || *end != '.' || pid <= 0 ||
            pid == (long)getpid())
            continue;
        const char *k = end + 1;
        if (!*k || k[strspn(k, "0123456789")] != '\0')
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;   /* alive (or not ours to ask): leave it */
        (void)unlinkat(dirfd(d), n, 0);
    }
    closedir(d);
}

nn_status nn_afile_open(nn_afile *af, const char *path, nn_error *err)
{
    static atomic_uint counter;
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 64;
    af->path = dup_str(path);
    af->tmp = malloc(n);
    if (!af->path || !af->tmp) {
        free(af->path);
        free(af->tmp);
        return nn_fail(err, NN_ERR_NOMEM, "%s: out of memory", path);
    }
    remove_stale(path);
    snprintf(af->tmp, n, "%s.tmp.%ld.%u", path, (long)getpid(),
             atomic_fetch_add(&counter, 1));
    /* O_EXCL: two writers never share a temporary file. */
    int fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || !(af->f = fdopen(fd, "wb"))) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        nn_status s = nn_fail(err, NN_ERR_IO, "%s: cannot create: %s", path,
                              strerror(e));
        free(af->path);
        free(af->tmp);
        memset(af, 0, sizeof *af);
        return s;
    }
    return NN_OK;
}

static void sync_parent(const char *path)
{
    char *dir = dup_str(path);
    if (!dir)
        return;
    char *slash = strrchr(dir, '/');
    const char *d = ".";
    if (slash) {
        slash[slash == dir ? 1 : 0] = '\0';
        d = dir;
    }
    int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

nn_status nn_afile_commit(nn_afile *af, nn_error *err)
{
    nn_status s = NN_OK;
    int e = 0;
    if (fflush(af->f) != 0 || ferror(af->f) || fsync(fileno(af->f)) != 0)
        e = errno ? errno : EIO;
    if (fclose(af->f) != 0 && !e)
        e = errno ? errno : EIO;
    af->f = NULL;
    if (!e && rename(af->tmp, af->path) != 0)
        e = errno;
    if (e) {
        s = nn_fail(err, NN_ERR_IO, "%s: cannot write: %s", af->path,
                    strerror(e));
        unlink(af->tmp);
    } else {
        sync_parent(af->path);
    }
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
    return s;
}

void nn_afile_abort(nn_afile *af)
{
    if (af->f)
        fclose(af->f);
    if (af->tmp)
        unlink(af->tmp);
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
}
