/*
 * pressurefs: glibc malloc tuning that keeps the daemon's RSS within
 * mem_limit plus a fixed overhead (see memtune.c for the bound).
 */
#ifndef PFS_MEMTUNE_H
#define PFS_MEMTUNE_H

#include <stddef.h>

/*
 * Tune malloc for a page cache of page_size-byte pages. Call before any
 * thread starts. Does nothing when the user tuned malloc through
 * GLIBC_TUNABLES (glibc.malloc.*) or the C library is not glibc.
 * Returns 0, or -ENOTSUP when nothing was tuned.
 */
int pfs_memtune_apply(size_t page_size);

#endif
