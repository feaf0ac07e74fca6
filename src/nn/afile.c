/*
 * afile.c - atomic file replacement: write a temporary file in the target's
 * folder, fsync it, rename it over the target, fsync the folder. A crash at
 * any moment leaves either the old file or the complete new one.
 *
 * A writer killed outright (SIGKILL, power cut) leaves its temporary
 * "<path>.tmp.<pid>.<n>" behind; the next save to the same path removes
 * those whose process no longer exists (on this machine: a writer on
 * another host sharing the folder must not write the same path).
 *
 * Only regular files are replaced. An existing target that is a folder, a
 * device (/dev/null), a FIFO or a socket is refused, at open and again just
 * before the rename. A symbolic link is followed: the file it points to is
 * replaced (atomically, in that file's folder) and the link stays; a link
 * to nothing is refused. The new file keeps the permission bits (and, where
 * allowed, the owner) of the file it replaces.
 */
#define _XOPEN_SOURCE 700   /* realpath, fchown */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* "<n>", or "<n>.tmp.<pid>.<m>": the temporary of a save to a writer's
 * own temporary name (the tool saves checkpoints that way, then renames
 * them into place). */
static bool counter_ok(const char *k)
{
    size_t d = strspn(k, "0123456789");
    if (!d)
        return false;
    if (!k[d])
        return true;
    if (strncmp(k + d, ".tmp.", 5) != 0)
        return false;
    k += d + 5;
    d = strspn(k, "0123456789");
    if (!d || k[d] != '.')
        return false;
    k += d + 1;
    d = strspn(k, "0123456789");
    return d && !k[d];
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
        if (!counter_ok(end + 1))
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;   /* alive (or not ours to ask): leave it */
        (void)unlinkat(dirfd(d), n, 0);
    }
    closedir(d);
}

/* NN_OK when `path` is missing (*exists false) or a regular file (*exists
 * true, *st filled); otherwise an error naming what it is. */
static nn_status check_target(const char *path, struct stat *st, bool *exists,
                              nn_error *err)
{
    *exists = false;
    if (lstat(path, st) != 0) {
        if (errno == ENOENT)
            return NN_OK;
        return nn_fail(err, NN_ERR_IO, "%s: cannot create: %s", path,
                       strerror(errno));
    }
    if (S_ISDIR(st->st_mode))
        return nn_fail(err, NN_ERR_IO, "%s: is a folder, not a file", path);
    if (S_ISLNK(st->st_mode))
        return nn_fail(err, NN_ERR_IO, "%s: is a symbolic link", path);
    if (!S_ISREG(st->st_mode))
        return nn_fail(err, NN_ERR_IO, "%s: is not a regular file (a device, "
                       "FIFO or socket); not replacing it", path);
    *exists = true;
    return NN_OK;
}

nn_status nn_afile_open(nn_afile *af, const char *path, nn_error *err)
{
    static atomic_uint counter;
    memset(af, 0, sizeof *af);
    if (!path || !*path)
        return nn_fail(err, NN_ERR_ARG, "empty file name");
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        /* write the file the link points to; the link itself stays */
        af->path = realpath(path, NULL);
        if (!af->path)
            return nn_fail(err, NN_ERR_IO, "%s: is a symbolic link to a "
                           "missing file (%s); not following it", path,
                           strerror(errno));
    } else {
        af->path = dup_str(path);
    }
    size_t n = af->path ? strlen(af->path) + 64 : 0;
    af->tmp = af->path ? malloc(n) : NULL;
    if (!af->path || !af->tmp) {
        free(af->path);
        free(af->tmp);
        memset(af, 0, sizeof *af);
        return nn_fail(err, NN_ERR_NOMEM, "%s: out of memory", path);
    }
    bool exists;
    nn_status s = check_target(af->path, &st, &exists, err);
    if (s != NN_OK) {
        free(af->path);
        free(af->tmp);
        memset(af, 0, sizeof *af);
        return s;
    }
    remove_stale(af->path);
    snprintf(af->tmp, n, "%s.tmp.%ld.%u", af->path, (long)getpid(),
             atomic_fetch_add(&counter, 1));
    /* O_EXCL: two writers never share a temporary file. A new file gets
     * 0666 less the umask; a replaced one keeps its bits and owner. */
    int fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 && exists) {
        if (fchown(fd, st.st_uid, st.st_gid) != 0) {
            /* not allowed to give it away: keep ours */
        }
        (void)fchmod(fd, st.st_mode & 07777);
    }
    if (fd < 0 || !(af->f = fdopen(fd, "wb"))) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
            unlink(af->tmp);
        }
        s = nn_fail(err, NN_ERR_IO, "%s: cannot create: %s", path,
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
    struct stat st;
    bool exists;
    if (!e && (s = check_target(af->path, &st, &exists, err)) != NN_OK) {
        /* became a folder, link, device, FIFO or socket meanwhile */
        unlink(af->tmp);
    } else if (!e && rename(af->tmp, af->path) != 0) {
        e = errno;
    }
    if (e) {
        s = nn_fail(err, NN_ERR_IO, "%s: cannot write: %s", af->path,
                    strerror(e));
        unlink(af->tmp);
    } else if (s == NN_OK) {
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
