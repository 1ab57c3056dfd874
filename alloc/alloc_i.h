/*
 * Allocator internals shared by the files of alloc/ (and by its unit tests,
 * which peek at the waiter count to know when a waiter is asleep).
 *
 * Lock order: the registry lock (budget.c, thread exit) before an
 * instance's `lock`, before its `wait_lock`, before its `inject_lock`.
 * None is held while the policy or the reclaimer runs.
 */
#ifndef PFS_ALLOC_I_H
#define PFS_ALLOC_I_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"

#define ALLOC_LIKELY(x)       __builtin_expect(!!(x), 1)
#define ALLOC_UNLIKELY(x)     __builtin_expect(!!(x), 0)
#define ALLOC_CACHELINE       64
#define ALLOC_STOCK_BYTES_MAX (1ull << 30)

/*
 * Every block starts with this header, so alloc_free() needs no size and
 * accounting is exact. 16 bytes keep malloc's 16-byte alignment.
 *
 * The site and the magic share one 64-bit word written and read whole:
 * glibc's free() reads those 8 bytes (its tcache key) right after we mark
 * the block freed, and two 4-byte stores there would defeat store-to-load
 * forwarding (it cost 3-4 ns per pair when measured).
 */
struct alloc_header {
	uint64_t size; /* bytes the caller asked for */
	uint64_t tag;  /* site | ALLOC_MAGIC << 32 while live */
};
#define ALLOC_MAGIC       0x70667361u /* "pfsa" */
#define ALLOC_MAGIC_FREED 0x64656164u /* "dead" */

static inline uint64_t _alloc_tag(unsigned site)
{
	return (uint64_t)ALLOC_MAGIC << 32 | site;
}

static inline unsigned _alloc_tag_site(uint64_t tag)
{
	return (unsigned)tag;
}

/* The site of a live block's tag, or >= ALLOC_SITE_COUNT if it is not one. */
static inline uint64_t _alloc_tag_check(uint64_t tag)
{
	return tag - _alloc_tag(0);
}

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
 * thread updates the counters with a relaxed load and a relaxed store (plain
 * moves, no lock prefix); readers sum them with relaxed loads. It stays on
 * the instance's list (with its counters) after its thread exits, until
 * alloc_destroy().
 */
struct alloc_tcache {
	/* Pre-charged budget this thread may hand out; owner thread only.
	 * (Aligned: a cache never shares a line with another thread's, and
	 * sizeof is a multiple of the line as aligned_alloc() wants.) */
	_Alignas(ALLOC_CACHELINE) uint64_t stock;
	/* The drain epoch (gate bits 0-31) seen at the last stock return;
	 * owner thread only. */
	uint64_t gate_seen;
	/* 2 * stock_bytes: more stock than this goes back to `charged`. */
	uint64_t stock_max;
	/* Owning thread (alloc_thread_id()), 0 once the thread has exited.
	 * Written under the instance's `lock`. */
	uint64_t owner;
	struct alloc_tcache *next; /* immutable once published */
	_Atomic uint64_t count[ALLOC_SITE_COUNT][ALLOC_TC_COUNT];
};

/* A policy that was installed; kept until alloc_destroy(). */
struct alloc_policy_slot {
	const struct pfs_policy *ops;
	void *state;
	struct alloc_policy_slot *older;
};

struct alloc {
	/* ---- read-mostly line: what the fast path reads ---- */
	uint64_t id;          /* unique per instance: validates thread-local caches */
	uint64_t stock_bytes; /* immutable after create */
	/*
	 * The fast path's one check: a thread may use its stock only while
	 * gate == its gate_seen, i.e. no injection is armed, nobody waits for
	 * memory and no refusal bumped the drain epoch since the thread last
	 * returned its stock. Bits 0-31: drain epoch; 32-61: waiters;
	 * 62: over (use is at or near mem_limit - balloon: stocks are off and
	 * every charge and free goes to the shared counter); 63: injection
	 * armed.
	 */
	_Atomic uint64_t gate;

	/* ---- the shared budget: written when a stock refills or overflows ---- */
	_Alignas(ALLOC_CACHELINE) _Atomic uint64_t charged;
	_Atomic uint64_t peak; /* high-water mark of charged */
	_Atomic uint64_t mem_limit;
	_Atomic uint64_t balloon;
	/* Exact per-site use, kept only with stock_bytes == 0. */
	_Atomic uint64_t site_charged[ALLOC_SITE_COUNT];
	_Atomic uint64_t site_peak[ALLOC_SITE_COUNT];

	/* ---- slow-path statistics (shared atomics) ---- */
	_Alignas(ALLOC_CACHELINE) _Atomic uint64_t slow[ALLOC_SITE_COUNT][ALLOC_STAT_COUNT];
	_Atomic uint64_t stall_hist[ALLOC_STALL_BUCKETS];
	_Atomic(struct alloc_policy_slot *) policy; /* current, NULL = fail */

	/*
	 * lock protects: the tcache list (insertions; readers walk it
	 * lock-free from `tcaches` since entries are never removed before
	 * destroy), tcache owner fields, the policy slot chain, the
	 * reclaimer, the stats baseline.
	 */
	pthread_mutex_t lock;
	_Atomic(struct alloc_tcache *) tcaches;
	struct alloc_policy_slot *policy_all; /* every slot ever installed */
	alloc_reclaim_fn reclaim_fn;
	void *reclaim_data;
	uint64_t base[ALLOC_SITE_COUNT][ALLOC_TC_COUNT]; /* stats_reset baseline */

	/* wait_lock protects wake_gen; wait_cond is signalled when it moves. */
	pthread_mutex_t wait_lock;
	pthread_cond_t wait_cond;
	uint64_t wake_gen;

	/* inject_lock protects inject, rng, fail_nth state: one sequence. */
	pthread_mutex_t inject_lock;
	struct alloc_inject inject;
	uint64_t rng;
	unsigned long inject_count; /* the kernel's attr->count, for interval */
	uint64_t nth_left;          /* attempts until the countdown fires, 0 = off */
	uint64_t nth_more;          /* further failures after it fired */
	_Atomic bool nth_fired;

	/*
	 * Used (with atomic adds) by a thread whose own cache could not be
	 * allocated; first on the tcache list, never freed on its own.
	 */
	struct alloc_tcache orphan;

	const struct pfs_policy_host *log_host;
	struct alloc *registry_next; /* under the registry lock (budget.c) */
};

#define ALLOC_GATE_EPOCH_MASK   0xffffffffull
#define ALLOC_GATE_WAITER       (1ull << 32)
#define ALLOC_GATE_WAITERS_MASK (0x3fffffffull << 32)
#define ALLOC_GATE_OVER         (1ull << 62)
#define ALLOC_GATE_ARMED        (1ull << 63)

static inline uint64_t _alloc_gate(struct alloc *a)
{
	return atomic_load_explicit(&a->gate, memory_order_relaxed);
}

/* ---- thread-local cache lookup (budget.c) ---- */
struct alloc_tls {
	struct alloc *a;
	uint64_t id;
	struct alloc_tcache *tc;
};
/* initial-exec: a plain %fs-relative load, not a __tls_get_addr() call
 * (the library is static, linked into the program or a library it loads at
 * start). */
extern __thread struct alloc_tls _alloc_tls __attribute__((tls_model("initial-exec")));

struct alloc_tcache *_alloc_tcache_slow(struct alloc *a);

static inline struct alloc_tcache *_alloc_tcache(struct alloc *a)
{
	if (ALLOC_LIKELY(_alloc_tls.a == a && _alloc_tls.id == a->id)) {
		struct alloc_tcache *tc = _alloc_tls.tc;

		if (!tc)
			__builtin_unreachable(); /* only a found cache is remembered */
		return tc;
	}
	return _alloc_tcache_slow(a);
}

/* Single-writer counter update: no lock prefix. */
static inline void _alloc_counter_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
	                      memory_order_relaxed);
}

/* Raise a high-water mark (peaks, stall_ns_max) to value if it is higher. */
static inline void _alloc_max_raise(_Atomic uint64_t *max, uint64_t value)
{
	uint64_t old = atomic_load_explicit(max, memory_order_relaxed);

	while (value > old && !atomic_compare_exchange_weak_explicit(
	                          max, &old, value, memory_order_relaxed, memory_order_relaxed))
		;
}

/* ---- budget.c ---- */
int _alloc_budget_init(struct alloc *a, const struct alloc_config *config);
void _alloc_budget_fini(struct alloc *a);
/* The slow halves of charge/uncharge (stock empty or overflowing). */
int _alloc_budget_charge_slow(struct alloc *a, struct alloc_tcache *tc, unsigned site,
                              uint64_t size);
void _alloc_budget_uncharge_slow(struct alloc *a, struct alloc_tcache *tc, unsigned site,
                                 uint64_t size);
/* Wake waiters of alloc_wait_for_memory() (takes wait_lock). */
void _alloc_budget_wake(struct alloc *a);
/* Waiting without losing a wake-up: register, read the generation, check
 * for memory, then wait for the generation to move. */
void _alloc_waiter_add(struct alloc *a);
void _alloc_waiter_del(struct alloc *a);
uint64_t _alloc_wake_gen(struct alloc *a);
int _alloc_wait_since(struct alloc *a, uint64_t gen, uint64_t timeout_ns);
/* Would size bytes fit in the budget now (ignoring this thread's stock)? */
bool _alloc_budget_fits(struct alloc *a, uint64_t size);
/* Uncharge for a thread without a cache (no stock). */
void _alloc_budget_uncharge_orphan(struct alloc *a, unsigned site, uint64_t size);
uint64_t _alloc_now_ns(void);

/* Fast inline halves: plain arithmetic on the thread's stock. */
static inline bool _alloc_budget_charge_fast(struct alloc *a, struct alloc_tcache *tc,
                                             uint64_t size)
{
	if (ALLOC_UNLIKELY(tc->gate_seen != _alloc_gate(a)))
		return false;
	if (ALLOC_UNLIKELY(size > tc->stock))
		return false;
	tc->stock -= size;
	return true;
}

static inline bool _alloc_budget_uncharge_fast(struct alloc *a, struct alloc_tcache *tc,
                                               uint64_t size)
{
	uint64_t stock = tc->stock + size;

	if (ALLOC_UNLIKELY((stock > tc->stock_max) | (tc->gate_seen != _alloc_gate(a))))
		return false;
	tc->stock = stock;
	return true;
}

/* Charge size bytes at site; 0 or -ENOMEM (over mem_limit - balloon). */
static inline int _alloc_budget_charge(struct alloc *a, struct alloc_tcache *tc, unsigned site,
                                       uint64_t size)
{
	if (ALLOC_LIKELY(_alloc_budget_charge_fast(a, tc, size)))
		return 0;
	return _alloc_budget_charge_slow(a, tc, site, size);
}

static inline void _alloc_budget_uncharge(struct alloc *a, struct alloc_tcache *tc, unsigned site,
                                          uint64_t size)
{
	if (ALLOC_LIKELY(_alloc_budget_uncharge_fast(a, tc, size)))
		return;
	_alloc_budget_uncharge_slow(a, tc, site, size);
}

/* ---- inject.c ---- */
void _alloc_inject_init(struct alloc *a);
/* Should this attempt fail? Called only when ALLOC_GATE_ARMED is set. */
bool _alloc_inject_should_fail(struct alloc *a, unsigned site, uint64_t size);

/* ---- reclaim.c ---- */
/*
 * Direct reclaim after a failed attempt, before the policy is asked: true
 * when it freed something and one more attempt is worth making.
 */
bool _alloc_reclaim_direct(struct alloc *a, unsigned site, size_t size, unsigned flags,
                           enum pfs_cause cause);

/* ---- stats.c ---- */
/* Record the end of a call that failed at least once. */
void _alloc_stats_stall(struct alloc *a, unsigned site, uint64_t stalled_ns);
static inline void _alloc_stat_inc(struct alloc *a, unsigned site, enum alloc_stat stat)
{
	atomic_fetch_add_explicit(&a->slow[site][stat], 1, memory_order_relaxed);
}
/* Live bytes at one site, summed over all thread caches. */
uint64_t _alloc_site_live(struct alloc *a, unsigned site);

/* ---- log (alloc.c) ---- */
void _alloc_log(const struct alloc *a, enum pfs_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* For tests: threads asleep in alloc_wait_for_memory(). */
static inline unsigned _alloc_waiters(struct alloc *a)
{
	return (unsigned)((atomic_load(&a->gate) & ALLOC_GATE_WAITERS_MASK) >> 32);
}

#endif /* PFS_ALLOC_I_H */
