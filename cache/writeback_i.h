/*
 * writeback.c: writing dirty pages to the backing file (one pass over one
 * file), the writeback thread, the throttle of writers at dirty_limit,
 * fsync, flush and sync, and the file's error sequence.
 */
#ifndef PFS_CACHE_WRITEBACK_I_H
#define PFS_CACHE_WRITEBACK_I_H

#include "pcache_i.h"

/* Set up / tear down pcache.wb (no thread: pcache_writeback_start). */
void _pcache_wb_init(struct pcache_wb *wb);
void _pcache_wb_destroy(struct pcache_wb *wb);

/* How a writeback pass over one file behaves. */
struct pcache_wb_req {
	bool all; /* every dirty page, else those dirtied at or before cutoff_ns */
	uint64_t cutoff_ns;
	bool use_stack;	      /* reclaim: no allocation, small on-stack batches */
	unsigned alloc_flags; /* for the writeback buffer (ALLOC_NOFS under f->lock) */
	bool stack_fallback;  /* no buffer: count the failure, write from the stack */
};

/* One pass over f. 0, -ENOMEM (no buffer; nothing written, nothing lost)
 * or the backing store's -errno (recorded in f's errseq too). */
int _pcache_wb_file(struct pcache_file *f, const struct pcache_wb_req *req);
/* Under pages_lock: wait until none of f's pages is under writeback. */
void _pcache_wait_writeback(struct pcache_file *f);
/* pages_lock held: record a backing error in f->wb_err. */
void _pcache_errseq_set(struct pcache_file *f, int err);
/* Wake the writeback thread from inside an allocation (reclaim): never
 * waits for dirty.lock, a missed wake-up costs one period. urgent: write
 * everything now. */
void _pcache_wb_kick(struct pcache *pc, bool urgent);

#endif /* PFS_CACHE_WRITEBACK_I_H */
