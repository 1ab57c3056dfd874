/*
 * page.c: a page's memory and its bytes from the backing file.
 */
#ifndef PFS_CACHE_PAGE_I_H
#define PFS_CACHE_PAGE_I_H

#include "pcache_i.h"

/* CLOCK_MONOTONIC in nanoseconds: the clock of dirtied_ns and retries. */
uint64_t _pcache_now_ns(void);
/* A fresh page record for page number index of a file of pc, not in any
 * index yet (site cache_page). retry NULL: one attempt, -ENOMEM on
 * failure; else alloc_try's verdict in *err (-EAGAIN: retry). */
struct pcache_page *_pcache_page_alloc(struct pcache *pc, uint64_t index, unsigned flags,
				       struct alloc_retry *retry, int *err);
/* Free pages chained through hash_next (unlinked from everything). */
void _pcache_page_list_free(struct pcache *pc, struct pcache_page *list);
/* Make the given blocks of p valid: read from the backing file those that
 * are not, around the dirty bytes they hold (zeros past the file's size).
 * pages_lock held on entry and exit, dropped during the I/O (if any); the
 * caller holds f->lock, so no writer or truncate moves meanwhile. */
int _pcache_page_fill(struct pcache_file *f, struct pcache_page *p, uint16_t blocks);

#endif /* PFS_CACHE_PAGE_I_H */
