/*
 * pressurefs: bound what glibc's malloc holds beyond what alloc/ counts.
 *
 * alloc/ charges every page and record to mem_limit, but RSS is what glibc
 * keeps mapped, and by default that grows well past the budget:
 *
 * - One arena per thread (up to 8 per core). A page allocated by a FUSE
 *   worker and freed by the writeback thread or another worker goes back
 *   to the arena it came from, and only threads attached to that arena can
 *   reuse it. Each arena keeps its own high-water mark, so RSS heads for
 *   the sum of per-arena peaks: a 1 GiB write at mem_limit=64M peaked at
 *   about 100 MiB over four arenas, each trimming and faulting its pages in
 *   again (33,000 minor faults for 1 GiB of 16 writers at 16M, against
 *   5,000 with one arena).
 * - The mmap threshold is dynamic: freeing an mmapped chunk (libfuse's
 *   1 MiB receive buffer, when a worker ends) raises it and the trim
 *   threshold with it, after which such buffers live in the heap and the
 *   heap keeps up to twice that much free memory at its top.
 *
 * So: one arena (any thread reuses any freed page), and both thresholds
 * fixed. The page-cache page (page_size plus alloc's header) stays below
 * the mmap threshold: an mmap per page faults every 4 KiB of it in again
 * on every allocation, many times the faults of a reused heap page. Larger blocks,
 * above all libfuse's per-worker receive buffers, are mmapped, so each
 * costs only the bytes a request touched (max_write, daemon/main.c).
 *
 * The resulting bound, stated in README.md and checked by
 * tests/load/rss.sh: VmHWM <= mem_limit + 4 MiB + 196 KiB per FUSE worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "memtune.h"

/* glibc's own starting value of the dynamic threshold. */
#define PFS_MMAP_THRESHOLD_MIN (128u * 1024u)
/* glibc refuses larger fixed thresholds on 64-bit (HEAP_MAX_SIZE / 2). */
#define PFS_MMAP_THRESHOLD_MAX (32u * 1024u * 1024u)

/* The user's own GLIBC_TUNABLES malloc settings win over ours. */
static int pfs_memtune_user_tuned(void)
{
	const char *t = getenv("GLIBC_TUNABLES");

	return t && strstr(t, "glibc.malloc.") != NULL;
}

int pfs_memtune_apply(size_t page_size)
{
#ifdef __GLIBC__
	size_t mmap_threshold;

	if (pfs_memtune_user_tuned())
		return -ENOTSUP;
	/* A page and its header fit below the threshold with room to spare. */
	mmap_threshold = 2 * page_size;
	if (mmap_threshold < PFS_MMAP_THRESHOLD_MIN)
		mmap_threshold = PFS_MMAP_THRESHOLD_MIN;
	if (mmap_threshold > PFS_MMAP_THRESHOLD_MAX)
		mmap_threshold = PFS_MMAP_THRESHOLD_MAX;
	/* Failure of any of these leaves glibc's default: RSS is higher, not wrong. */
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold);
	mallopt(M_TRIM_THRESHOLD, (int)mmap_threshold);
	return 0;
#else
	(void)page_size;
	return -ENOTSUP;
#endif
}
