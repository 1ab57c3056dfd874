/*
 * The allocator's fast path, inline in every caller (included by alloc.h).
 *
 * Nothing here is API: it is the part of the allocator's internals that
 * alloc_malloc() and alloc_free() read when they are inlined. A call costs
 * one malloc() plus the glibc tcache's own ~18 cycles, so an out-of-line
 * wrapper's call, frame and spills alone were a third of the budget; inline,
 * the caller's frame serves both. alloc.c holds the external definitions
 * (C99 `inline`: every caller may inline, one object file has the symbol).
 *
 * An inline definition with external linkage may not refer to anything
 * with internal linkage, so the bodies below use only what this header
 * declares: the `_alloc_*` slow paths are exported for them.
 */
#ifndef PFS_ALLOC_FAST_H
#define PFS_ALLOC_FAST_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define ALLOC_LIKELY(x)	  __builtin_expect(!!(x), 1)
#define ALLOC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define ALLOC_CACHELINE	  64

/*
 * Every block starts with this header, so alloc_free() needs no size and
 * accounting is exact. 16 bytes keep malloc's 16-byte alignment.
 *
 * The site and the magic share one 64-bit word written and read whole:
 * glibc's free() reads those 8 bytes (its tcache key) right after we mark
 * the block freed, and two 4-byte stores there would defeat store-to-load
 * forwarding, which costs the fast path a stall on every free.
 */
struct alloc_header {
	uint64_t size; /* bytes the caller asked for */
	uint64_t tag;  /* site | ALLOC_MAGIC << 32 while live, 0 once freed */
};
#define ALLOC_MAGIC	0x70667361u /* "pfsa" */
#define ALLOC_TAG(site) ((uint64_t)ALLOC_MAGIC << 32 | (uint64_t)(site))
/* The site of a live block's tag, or >= ALLOC_SITE_COUNT if it is not one. */
#define ALLOC_TAG_CHECK(tag) ((uint64_t)(tag)-ALLOC_TAG(0))

/* The per-thread, per-site counters the fast path updates. */
enum alloc_tc_counter {
	ALLOC_TC_CALLS,
	ALLOC_TC_BYTES_IN, /* bytes allocated (never reset: live = in - out) */
	ALLOC_TC_FREES,
	ALLOC_TC_BYTES_OUT, /* bytes freed */
	ALLOC_TC_COUNT
};

/*
 * Per-thread cache of one allocator instance. Single writer: its owner
 * thread updates the counters with a relaxed load and a release store (plain
 * moves, no lock prefix); readers sum them with atomic loads. It stays on
 * the instance's list (with its counters) after its thread exits, until
 * alloc_destroy().
 */
struct alloc_tls;

struct alloc_tcache {
	/* Pre-charged budget this thread may hand out; owner thread only.
	 * (Aligned: a cache never shares a line with another thread's, and
	 * sizeof is a multiple of the line as aligned_alloc() wants.) */
	_Alignas(ALLOC_CACHELINE) uint64_t stock;
	/* The open gate (epoch and id) seen at the last stock return;
	 * owner thread only (the fast path compares a copy in _alloc_tls). */
	uint64_t gate_seen;
	/* This thread's share of the stock allowance (budget.c), counted in
	 * the instance's stock_granted: stock never exceeds it (a free that
	 * would pass it goes slow), a refill fills half of it. 0: no stock,
	 * every charge goes to the shared counter. Owner thread only. */
	uint64_t stock_max;
	/* Owning thread (alloc_thread_id()), 0 once the thread has exited.
	 * Written under the instance's `lock`. */
	uint64_t owner;
	/* The owner's _alloc_tls, so that alloc_destroy() can clear its copy
	 * of the gate; NULL once the thread has exited. Set before the cache
	 * is published, then cleared and read under the registry lock
	 * (budget.c). */
	struct alloc_tls *owner_tls;
	struct alloc_tcache *next; /* immutable once published */
	/* Counters the slow paths update, and folds of `packed`. */
	_Atomic uint64_t count[ALLOC_SITE_COUNT][ALLOC_TC_COUNT];
	/*
	 * The fast path's counters, two per add: [site][0] is calls << 48 |
	 * bytes in, [site][1] frees << 48 | bytes out. When the count reaches
	 * 2^15 (the sign bit) the owner folds the word into `count`; by then at
	 * most 2^15 blocks of at most 2^31 bytes (the stock bounds a fast
	 * block) have filled 46 of the 48 byte bits.
	 */
	_Atomic uint64_t packed[ALLOC_SITE_COUNT][2];
	/* Odd while the owner folds: readers retry (a sequence count). */
	_Atomic uint64_t fold_seq;
};
#define ALLOC_PACKED_ONE	(1ull << 48)
#define ALLOC_PACKED_BYTES_MASK (ALLOC_PACKED_ONE - 1)

/*
 * The first cache line of struct alloc (alloc_i.h): all that the fast path
 * reads of the instance.
 */
struct _alloc_hot {
	/* 1..65535, unique among live instances (reused after destroy). */
	uint64_t id;
	uint64_t stock_bytes; /* immutable after create */
	/*
	 * The fast path's one check: a thread may use its stock only while
	 * gate == its gate_seen, i.e. this is the instance its cache belongs
	 * to (the id is part of the gate), no injection is armed, nobody waits
	 * for memory and no refusal bumped the drain epoch since the thread
	 * last returned its stock. Bits 0-23: drain epoch; 24-39: id;
	 * 40-61: waiters; 62: over (use is at or near mem_limit - balloon:
	 * stocks are off and every charge and free goes to the shared
	 * counter); 63: injection armed.
	 */
	_Atomic uint64_t gate;
};

/*
 * This thread's cache of the instance it used last, and a copy of that
 * cache's gate_seen: one compare with the instance's gate tells whose it
 * is and that the gate is open. alloc_destroy() zeroes the key of every
 * thread that names the instance (an id is reused afterwards; key 0
 * matches no instance). Written by the owner thread, and key by
 * alloc_destroy(): relaxed atomics, plain moves on x86.
 * initial-exec: a plain %fs-relative load, not a __tls_get_addr() call
 * (the library is static, linked into the program or a library it loads at
 * start).
 */
struct alloc_tls {
	_Atomic uint64_t key;
	struct alloc_tcache *_Atomic tc;
};
extern __thread struct alloc_tls _alloc_tls __attribute__((tls_model("initial-exec")));

/* The slow halves (alloc.c). */
void *_alloc_malloc_slow(struct alloc *a, enum alloc_site site, size_t size, unsigned flags);
void *_alloc_malloc_failed(struct alloc *a, enum alloc_site site, size_t size, unsigned flags);
void *_alloc_malloc_refill(struct alloc *a, enum alloc_site site, size_t size, unsigned flags);
void _alloc_free_slow(struct alloc *a, struct alloc_header *h, unsigned site, uint64_t size);
/* A tag that is not a live site's: a reserve's element, or a bad free. */
void _alloc_free_other(struct alloc *a, void *ptr);
/* Move packed[site][half] into count (stats.c); owner thread only. */
void _alloc_counters_fold(struct alloc_tcache *tc, unsigned site, unsigned half);

/*
 * Single-writer counter update: the owner thread is the only writer, so a
 * relaxed load and a store are an exact add, without a lock prefix; other
 * threads' loads never see a torn value. The store is a release so that a
 * reader that sees it also sees the fold before it (stats.c): on x86-64 a
 * plain move either way.
 */
#define ALLOC_OWNER_ADD(c, v)                                                                      \
	__extension__({                                                                            \
		uint64_t sum_ = atomic_load_explicit((c), memory_order_relaxed) + (v);             \
		atomic_store_explicit((c), sum_, memory_order_release);                            \
		sum_;                                                                              \
	})
#define ALLOC_COUNTER_ADD(c, v) ((void)ALLOC_OWNER_ADD((c), (v)))
/* The same add; true when the sum has its sign bit set (time to fold). */
#define ALLOC_PACKED_ADD(c, v) ((_Bool)(ALLOC_OWNER_ADD((c), (v)) >> 63))
/* stock -= size; true when it borrowed (size > stock: the caller puts size
 * back, see _alloc_malloc_refill()). The stock is the owner's plain word. */
#define ALLOC_STOCK_TAKE(stock, size) ((_Bool)__builtin_sub_overflow(*(stock), (size), (stock)))

/*
 * The fast path: no lock-prefixed instruction, no shared line written.
 * One compare of the gate covers a foreign or missing cache, a closed gate
 * (which also says that no injection is armed); one more a bad site and
 * ALLOC_ZERO (calloc is slow anyway); size <= stock bounds size, so
 * nothing below can overflow. The counters and the stock are updated
 * before malloc() so that fewer values live across the call.
 */
inline void *alloc_malloc(struct alloc *a, enum alloc_site site, size_t size, unsigned flags)
{
	const struct _alloc_hot *hot = (const struct _alloc_hot *)a;
	struct alloc_tcache *tc;
	struct alloc_header *h;

	if (ALLOC_UNLIKELY((atomic_load_explicit(&_alloc_tls.key, memory_order_relaxed) !=
			    atomic_load_explicit(&hot->gate, memory_order_relaxed)) |
			   (((unsigned)site | (flags & ALLOC_ZERO) << 16) >= ALLOC_SITE_COUNT)))
		return _alloc_malloc_slow(a, site, size, flags);
	tc = atomic_load_explicit(&_alloc_tls.tc, memory_order_relaxed);
	if (ALLOC_UNLIKELY(ALLOC_STOCK_TAKE(&tc->stock, size)))
		return _alloc_malloc_refill(a, site, size, flags);
	if (ALLOC_UNLIKELY(ALLOC_PACKED_ADD(&tc->packed[site][0], ALLOC_PACKED_ONE + size)))
		_alloc_counters_fold(tc, site, 0);
	h = (struct alloc_header *)malloc(sizeof(*h) + size);
	if (ALLOC_UNLIKELY(!h))
		return _alloc_malloc_failed(a, site, size, flags);
	h->size = size;
	h->tag = ALLOC_TAG(site);
	return h + 1;
}

/*
 * Checks the tag (a reserve's element goes back to its reserve), marks the block freed (0: a second
 * free of it is caught while it sits in malloc's cache), gives the size back to this thread's
 * stock, counts, frees.
 */
inline void alloc_free(struct alloc *a, void *ptr)
{
	const struct _alloc_hot *hot = (const struct _alloc_hot *)a;
	struct alloc_header *h;
	struct alloc_tcache *tc;
	uint64_t site, size, stock;

	if (!ptr)
		return;
	h = (struct alloc_header *)ptr - 1;
	site = ALLOC_TAG_CHECK(h->tag);
	size = h->size;
	if (ALLOC_UNLIKELY(site >= ALLOC_SITE_COUNT)) {
		_alloc_free_other(a, ptr);
		return;
	}
	h->tag = 0;
	if (ALLOC_UNLIKELY(atomic_load_explicit(&_alloc_tls.key, memory_order_relaxed) !=
			   atomic_load_explicit(&hot->gate, memory_order_relaxed))) {
		_alloc_free_slow(a, h, (unsigned)site, size);
		return;
	}
	tc = atomic_load_explicit(&_alloc_tls.tc, memory_order_relaxed);
	stock = tc->stock + size;
	if (ALLOC_UNLIKELY(stock > tc->stock_max)) {
		_alloc_free_slow(a, h, (unsigned)site, size);
		return;
	}
	tc->stock = stock;
	if (ALLOC_UNLIKELY(ALLOC_PACKED_ADD(&tc->packed[site][1], ALLOC_PACKED_ONE + size)))
		_alloc_counters_fold(tc, (unsigned)site, 1);
	free(h);
}

#endif /* PFS_ALLOC_FAST_H */
