/*
 * tmpdir.c - a scratch folder for tests; see tmpdir.h.
 */
#include "tmpdir.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tu_dir[512];

const char *tu_tmpdir_make(const char *tag)
{
    const char *base = getenv("TMPDIR");
    snprintf(tu_dir, sizeof tu_dir, "%s/test_%s.XXXXXX",
             base && *base ? base : "/tmp", tag);
    return mkdtemp(tu_dir) ? tu_dir : NULL;
}

const char *tu_path(const char *name)
{
    static char buf[8][640];
    static unsigned next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tu_dir, name);
    return p;
}

bool tu_write(const char *name, const void *data, size_t n)
{
    FILE *f = fopen(tu_path(name), "wb");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

long tu_read(const char *name, void *buf, size_t size)
{
    FILE *f = fopen(tu_path(name), "rb");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, size, f);
    fclose(f);
    return (long)n;
}

/* Removes the entries of folder `dir`; `depth` levels of subfolders. */
static void remove_entries(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && depth > 0) {
            remove_entries(p, depth - 1);
            rmdir(p);
        } else {
            unlink(p);
        }
    }
    closedir(d);
}

void tu_tmpdir_remove(void)
{
    if (!tu_dir[0])
        return;
    remove_entries(tu_dir, 1);
    rmdir(tu_dir);
    tu_dir[0] = '\0';
}
