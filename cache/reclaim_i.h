/*
 * reclaim.c: the reclaimer the cache registers with its allocator.
 */
#ifndef PFS_CACHE_RECLAIM_I_H
#define PFS_CACHE_RECLAIM_I_H

#include "pcache_i.h"

/* alloc_reclaim_fn: give back want bytes; data is the cache. */
size_t _pcache_reclaim(void *data, size_t want, unsigned flags);

#endif /* PFS_CACHE_RECLAIM_I_H */
