/*
 * tmpdir.h - a scratch folder for tests (linked into every test).
 *
 *   tu_tmpdir_make("idx")      creates /tmp/test_idx.XXXXXX (or $TMPDIR)
 *   tu_path("a.gz")            "<that folder>/a.gz"
 *   tu_write("a", data, n)     writes n bytes there; false on failure
 *   tu_tmpdir_remove()         deletes the folder and what is in it
 */
#ifndef TESTS_UTIL_TMPDIR_H
#define TESTS_UTIL_TMPDIR_H

#include <stdbool.h>
#include <stddef.h>

/* Creates the folder; returns its path (static storage) or NULL. */
const char *tu_tmpdir_make(const char *tag);

/* Path of `name` inside the folder. Points into one of 8 rotating static
 * buffers, so up to 8 results may be used at once. */
const char *tu_path(const char *name);

bool tu_write(const char *name, const void *data, size_t n);

/* Reads up to `size` bytes of `name` into buf; returns the count or -1. */
long tu_read(const char *name, void *buf, size_t size);

/* Removes the folder and its entries (one level of subfolders). */
void tu_tmpdir_remove(void);

#endif
