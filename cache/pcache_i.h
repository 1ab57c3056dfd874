/*
 * pressurefs page cache internals: the types every file of the cache
 * shares. Not a public header. Each file owns one data structure and
 * declares what it offers the others in its own NAME_i.h; calls run one
 * way, from the callers' entry points down to the page (scripts/check-tree
 * holds the order):
 *   cache.c      create, configure, destroy; a file's state and attributes
 *   rw.c         write, read, truncate, invalidate: the callers' entry points
 *   reclaim.c    the allocator's reclaimer, on lru + dirty + writeback
 *   writeback.c  writing a file's dirty pages, the thread, throttle, fsync
 *   dirty.c      unwritten pages and files, dirty accounting and limit
 *   lru.c        the clean pages and their trim
 *   index.c      the page index of one file
 *   page.c       a page's memory and its fill from the backing file
 *   backing.c    I/O on the backing file (direct or buffered)
 *
 * Page states (flags under the file's pages_lock):
 *   UPTODATE   every byte of the page holds the file's data (every block
 *              valid).
 *   DIRTY      some bytes are not yet in the backing file.
 *   WRITEBACK  the dirty bytes are being written; the page is stable
 *              (writers, truncate and discard wait on writeback_done).
 * Blocks: a page is cut into blocks of page_size / PCACHE_PAGE_BLOCKS,
 * 4 KiB at least (pcache.nr_blocks of them), so that a write of whole
 * blocks into a page that is not uptodate needs no read from the backing
 * file. Under pages_lock:
 *   valid      bit b: block b holds the file's data.
 *   dirty      bit b: block b holds dirty bytes. The dirty bytes of the
 *              page are its dirty blocks cut to [from, to) (the hull of
 *              what was written since it was last clean): a dirty block
 *              that is not valid lies at an edge of the hull, and every
 *              byte of it inside [from, to) was written. A block written
 *              whole becomes valid. The bytes the page holds are its valid
 *              blocks and its dirty bytes. Under WRITEBACK, dirty, from
 *              and to say what is being written; a clean page has none.
 * Bytes of a valid block past the file's size are zeros.
 * A page that is neither DIRTY nor WRITEBACK is clean and sits on the LRU,
 * where reclaim may drop it. f->dirty_pages counts DIRTY or WRITEBACK pages
 * (the "unwritten" ones); a file with any is on the dirty-file list and
 * holds one reference (ops->get) for it.
 */
#ifndef PFS_PCACHE_I_H
#define PFS_PCACHE_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "pcache.h"

#define PCACHE_PAGE_UPTODATE  0x1u
#define PCACHE_PAGE_DIRTY     0x2u
#define PCACHE_PAGE_WRITEBACK 0x4u

/* Blocks of a page (bits of struct pcache_page's valid and dirty): a block
 * is page_size / PCACHE_PAGE_BLOCKS, 4 KiB at least, so that the default
 * 64 KiB page has the kernel's page size as block. */
#define PCACHE_PAGE_BLOCKS    16u
#define PCACHE_MIN_BLOCK_SIZE (4u * 1024u)

#define PCACHE_MIN_PAGE_SIZE	    (4u * 1024u)
#define PCACHE_MAX_PAGE_SIZE	    (1024u * 1024u)
#define PCACHE_DEFAULT_PAGE_SIZE    (64u * 1024u)
#define PCACHE_DEFAULT_WRITEBACK_MS 5000u
#define PCACHE_DEFAULT_DIRTY_LIMIT  (64ull * 1024 * 1024)
#define PCACHE_DEFAULT_CLEAN_LIMIT  (64ull * 1024 * 1024)

/* Pages written by one pwritev() batch, at most (<= IOV_MAX). */
#define PCACHE_WB_MAX_BATCH 256u
/* Batch of the no-allocation writeback used by reclaim (on the stack). */
#define PCACHE_WB_STACK_BATCH 16u
/* A writer throttled at dirty_limit looks again at least this often, and
 * stops waiting after this many looks in a row without a page written. */
#define PCACHE_THROTTLE_PAUSE_MS    100u
#define PCACHE_THROTTLE_IDLE_PAUSES 20u

struct pcache_page {
	struct pcache_file *file;		 /* set once at insertion */
	struct pcache_page *hash_next;		 /* pages_lock: index bucket chain */
	struct pcache_page *uw_prev, *uw_next;	 /* pages_lock: the file's unwritten list */
	struct pcache_page *lru_prev, *lru_next; /* lru.lock */
	uint64_t index;				 /* page number in the file */
	uint64_t dirtied_ns;			 /* pages_lock: when it went clean -> dirty */
	uint32_t from, to;   /* pages_lock: hull of the dirty bytes (see above) */
	uint16_t valid;	     /* pages_lock: blocks holding the file's data */
	uint16_t dirty;	     /* pages_lock: blocks holding dirty bytes */
	uint16_t pins;	     /* pages_lock: users outside the lock; reclaim skips */
	uint8_t flags;	     /* pages_lock: PCACHE_PAGE_* */
	bool on_lru;	     /* written under pages_lock and lru.lock, read under either */
	unsigned char *data; /* page_size bytes in the same block, PCACHE_DATA_ALIGN-aligned */
};

/* Page data alignment: what direct I/O asks of memory on common block
 * devices (512-byte logical blocks), so that writeback can hand whole runs
 * of pages to the disk without a copy through the backing fs's own cache. */
#define PCACHE_DATA_ALIGN 512u
/* Runs of at least this many bytes are written back with O_DIRECT (when
 * direct_writeback is on and the backing fs allows it); smaller ones go
 * through the backing fs's page cache, where they cost a copy but no wait
 * for the device. */
#define PCACHE_WB_DIRECT_MIN (128u * 1024u)

/* Whole-cache passes over the dirty-file list; each marks the files it has
 * visited with its own pass number. */
enum pcache_pass { PCACHE_PASS_SYNC, PCACHE_PASS_LIST, PCACHE_NR_PASSES };

/* The private cache state of one file (f->index): its page index (index.c),
 * its unwritten pages (dirty.c: kept sorted lazily so writeback and the
 * `dirty` listing walk them in file order) and its writeback state. All
 * under pages_lock except where noted. */
#define PCACHE_INDEX_INLINE_BUCKETS 16u
struct pcache_index {
	struct pcache_page **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
	/* uw: the unwritten (DIRTY or WRITEBACK) pages */
	struct pcache_page *uw_head, *uw_tail;
	bool uw_sorted;	       /* uw list in ascending index order */
	uint64_t nr_writeback; /* pages under WRITEBACK */
	/* dirty.lock: */
	uint64_t retry_after_ns;	     /* failed writeback: not before this */
	uint64_t pass_seq[PCACHE_NR_PASSES]; /* the last pass of each kind to visit */
	struct pcache_page *inline_buckets[PCACHE_INDEX_INLINE_BUCKETS];
};

/* lru.c: the clean pages, oldest at head. */
struct pcache_lru {
	/* lock protects the list: head, tail and every page's lru_prev and
	 * lru_next. A page's on_lru is written under it and the page's
	 * pages_lock both. Shrinking holds it and only trylocks pages_lock. */
	pthread_mutex_t lock;
	struct pcache_page *head, *tail;
	uint64_t count; /* written under lock, read without it (atomic builtins) */
};

/* dirty.c: the files with unwritten pages, oldest first. */
struct pcache_dirty {
	/* lock protects the list (head, tail, each file's dirty_next,
	 * dirty_prev, on_dirty_list and dirtied_ns, the index's retry_after_ns
	 * and pass_seq), and is the mutex the writeback thread waits with:
	 * struct pcache_wb's fields marked so are under it too. */
	pthread_mutex_t lock;
	struct pcache_file *head, *tail;
	pthread_cond_t wake; /* with lock: the writeback thread waits here for work */
	/* list_lock serialises pcache_for_each_dirty passes, so that their
	 * pass markers cannot fight; list_seq is under it. */
	pthread_mutex_t list_lock;
	uint64_t list_seq;
};

/* writeback.c: the writeback thread and the writers it throttles. */
struct pcache_wb {
	pthread_t thread;   /* dirty.lock */
	bool running, stop; /* dirty.lock */
	atomic_bool urgent; /* reclaim asked: write everything now */
	/* with dirty.lock: writers throttled at dirty_limit wait here, and
	 * every writeback that ends while one waits wakes them */
	pthread_cond_t drained;
	atomic_uint throttle_waiters;
	/* The latest writeback that ended failed with a backing error: a
	 * throttled writer would wait for nothing. */
	atomic_bool failing;
	/* sync_lock serialises pcache_sync_all passes (their pass markers);
	 * sync_seq is under it. */
	pthread_mutex_t sync_lock;
	uint64_t sync_seq;
};

struct pcache {
	struct alloc *alloc;
	size_t page_size;
	unsigned page_shift;
	unsigned block_shift; /* log2 of a page's block size */
	unsigned nr_blocks;   /* blocks per page (<= PCACHE_PAGE_BLOCKS) */
	/* Tunable at run time (pcache_set_config): atomic loads and stores. */
	uint64_t dirty_limit; /* 0: derived from the allocator's budget */
	uint64_t clean_limit; /* 0: the default without a budget, else none */
	unsigned writeback_ms;
	bool writers_unthrottled;
	unsigned writeback_delay_us;
	struct pcache_file_ops ops;

	struct pcache_lru lru;
	struct pcache_dirty dirty;
	struct pcache_wb wb;

	/* Counters, atomic: cached_bytes by index.c; dirty_bytes by the page
	 * transitions of dirty.c and writeback.c; the rest by writeback.c and
	 * backing.c. */
	atomic_uint_fast64_t cached_bytes, dirty_bytes, writeback_bytes;
	atomic_uint_fast64_t pages_written, writeback_errors, direct_bytes;
	atomic_uint_fast64_t fills,
		fill_bytes; /* page.c: reads from the backing file into a page */
	atomic_uint_fast64_t throttled_writes, throttled_ns;
	/* No O_DIRECT writeback: not asked for (buffered_only), or the
	 * backing fs refused it once. */
	atomic_bool direct_off;
	atomic_long nfiles;
};

/* ---- a page's blocks (pages_lock held, or the page stable) ---- */

/* The blocks of a page that bytes [start, end) touch at all. */
static inline uint16_t _pcache_blocks_touched(const struct pcache *pc, uint32_t start, uint32_t end)
{
	unsigned first = start >> pc->block_shift, last;

	if (start >= end)
		return 0;
	last = (end - 1) >> pc->block_shift;
	return (uint16_t)(((2u << last) - 1) & ~((1u << first) - 1));
}

/* The blocks of a page that bytes [start, end) cover whole. */
static inline uint16_t _pcache_blocks_covered(const struct pcache *pc, uint32_t start, uint32_t end)
{
	unsigned first = (start + (1u << pc->block_shift) - 1) >> pc->block_shift;
	unsigned stop = end >> pc->block_shift;

	if (first >= stop)
		return 0;
	return (uint16_t)(((1u << stop) - 1) & ~((1u << first) - 1));
}

static inline uint16_t _pcache_blocks_all(const struct pcache *pc)
{
	return (uint16_t)((1u << pc->nr_blocks) - 1);
}

/* The next run of dirty bytes of p at or after byte at: [*start, *end),
 * or false when there is none. */
static inline bool _pcache_page_dirty_run(const struct pcache *pc, const struct pcache_page *p,
					  uint32_t at, uint32_t *start, uint32_t *end)
{
	unsigned first, stop;
	uint32_t rest, s, e;

	if (at < p->from)
		at = p->from;
	if (at >= p->to)
		return false;
	first = at >> pc->block_shift;
	rest = (uint32_t)p->dirty & ~((1u << first) - 1);
	if (!rest)
		return false;
	first = (unsigned)__builtin_ctz(rest);
	stop = first + (unsigned)__builtin_ctz(~(rest >> first));
	s = first << pc->block_shift;
	e = stop << pc->block_shift;
	if (s < at)
		s = at;
	if (e > p->to)
		e = p->to;
	if (s >= e)
		return false;
	*start = s;
	*end = e;
	return true;
}

#endif /* PFS_PCACHE_I_H */
