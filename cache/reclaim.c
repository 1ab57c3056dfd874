/*
 * Reclaim: giving memory back to the allocator.
 *
 * The reclaimer registered with the allocator drops clean pages, oldest
 * first (lru.c); called with ALLOC_NOFS (from inside an
 * allocation whose caller may hold f->lock or worse) it never waits: it
 * only trylocks pages_lock, and asks the writeback thread to clean more.
 * Called without it (the caller holds no cache lock) it also writes dirty
 * files back itself, oldest first, with on-stack buffers: reclaim never
 * allocates, so it cannot recurse into the allocator it serves.
 */
#include <errno.h>
#include <stdint.h>

#include "dirty_i.h"
#include "lru_i.h"
#include "reclaim_i.h"
#include "writeback_i.h"

/* Blocking reclaim: write back the oldest dirty files, at most as many as
 * were dirty when we started, and drop what that cleaned. */
static size_t reclaim_writeback(struct pcache *pc, size_t want)
{
	struct pcache_wb_req req = {.all = true, .use_stack = true};
	size_t bytes = 0;
	unsigned budget = _pcache_dirty_nr_files(pc);

	while (budget-- && bytes < want) {
		struct pcache_file *f = _pcache_dirty_first(pc);

		if (!f)
			break;
		_pcache_wb_file(f, &req);
		/* Still dirty (failed, or written meanwhile): to the back. */
		_pcache_dirty_requeue(f);
		_pcache_file_put(f);
		bytes += _pcache_lru_shrink(pc, want - bytes);
	}
	return bytes;
}

size_t _pcache_reclaim(void *data, size_t want, unsigned flags)
{
	struct pcache *pc = data;
	size_t bytes = _pcache_lru_shrink(pc, want);

	if (bytes >= want || !atomic_load(&pc->dirty_bytes))
		return bytes;
	if (flags & ALLOC_NOFS) {
		_pcache_wb_kick(pc, true);
		return bytes;
	}
	return bytes + reclaim_writeback(pc, want - bytes);
}
