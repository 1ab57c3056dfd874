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

/* Reclaimed beyond the request after a system failure (see below). */
#define ALLOC_SYSTEM_MARGIN (1u << 20)

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
 * - Budget refusals, and system failures (malloc itself returned NULL: an
 *   address-space limit, a real shortage). An injected failure stands for
 *   one that happened after reclaim had already done what it could (the
 *   fault-injection knobs must keep their meaning: one failure goes to the
 *   policy).
 * - A system failure reclaims a margin beyond the request, as the kernel's
 *   kswapd reclaims up to the high watermark and not just the page asked
 *   for: the process is out of memory, and code in it that allocates
 *   outside this allocator (libc; libfuse's per-request struct, whose
 *   failure answers the application's write with ENOMEM) needs room too.
 *   Without the margin the cache kept every byte of the address space in
 *   clean pages while libfuse failed its requests.
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
	size_t want = size, freed;

	if (cause == PFS_CAUSE_INJECTED || (flags & ALLOC_NORETRY))
		return false;
	if (cause == PFS_CAUSE_SYSTEM)
		want = size > SIZE_MAX - ALLOC_SYSTEM_MARGIN ? SIZE_MAX
							     : size + ALLOC_SYSTEM_MARGIN;
	freed = alloc_reclaim(a, want, ALLOC_NOFS);
	if (!freed)
		return false;
	atomic_fetch_add_explicit(&a->slow[site][ALLOC_STAT_reclaimed_bytes], freed,
				  memory_order_relaxed);
	return true;
}
