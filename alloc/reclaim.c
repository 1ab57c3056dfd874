/*
 * The reclaim hook: the one reclaimer a cache registers, run on request
 * (alloc_reclaim) and by the allocator itself.
 *
 * Direct reclaim follows the kernel's order: try, reclaim, try again, and
 * only then the failure path. call_slow() runs it once per call, on the
 * first failed attempt, before the policy is asked, so that a budget full
 * of clean cached pages (cheap to drop) neither fails a write under
 * `enomem` nor makes a `retry` caller back off. It is deliberately the
 * weakest reclaim there is (the no-fs mode: drop clean pages, at most wake
 * the writeback thread); anything that waits (writing back, sleeping for a
 * free) stays the policy's decision.
 */
#include "alloc_i.h"

void alloc_set_reclaimer(struct alloc *a, alloc_reclaim_fn fn, void *data)
{
	pthread_mutex_lock(&a->lock);
	a->reclaim_fn = fn;
	a->reclaim_data = data;
	pthread_mutex_unlock(&a->lock);
}

size_t alloc_reclaim(struct alloc *a, size_t want, unsigned flags)
{
	alloc_reclaim_fn fn;
	void *data;

	pthread_mutex_lock(&a->lock);
	fn = a->reclaim_fn;
	data = a->reclaim_data;
	pthread_mutex_unlock(&a->lock);
	return fn ? fn(data, want, flags) : 0;
}

/*
 * Which failures reclaim, and how:
 * - Only budget refusals. An injected failure stands for one that happened
 *   after reclaim had already done what it could (the fault-injection
 *   knobs must keep their meaning: one failure goes to the policy), and a
 *   system failure (malloc itself) is not ours to reclaim.
 * - Always no-fs, whatever the caller's flags: it runs on the allocating
 *   thread before anyone has decided that this thread may wait, so it
 *   drops clean pages and may wake the writeback thread (as the kernel's
 *   direct reclaim wakes the flushers), but never blocks on filesystem
 *   locks nor writes back itself. A caller without ALLOC_NOFS loses
 *   nothing: the policy's LOOP and RETRY paths still reclaim with
 *   blocking allowed.
 * - Never under ALLOC_NORETRY. Those callers asked to fail fast, and some
 *   hold an inode-table shard lock, under which the daemon's lock order
 *   (daemon/daemon_i.h) allows nothing but that one allocation: not the cache's
 *   LRU lock, nor what freeing a file's pages may lead to (an inode unref
 *   takes a shard lock).
 */
bool _alloc_reclaim_direct(struct alloc *a, unsigned site, size_t size, unsigned flags,
			   enum pfs_cause cause)
{
	size_t freed;

	if (cause != PFS_CAUSE_BUDGET || (flags & ALLOC_NORETRY))
		return false;
	freed = alloc_reclaim(a, size, ALLOC_NOFS);
	if (!freed)
		return false;
	atomic_fetch_add_explicit(&a->slow[site][ALLOC_STAT_reclaimed_bytes], freed,
				  memory_order_relaxed);
	return true;
}
