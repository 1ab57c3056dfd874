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

#define ALLOC_STOCK_BYTES_MAX (1ull << 30)
/*
 * All threads' stocks together may hold at most 1/2^ALLOC_STOCK_ALLOWANCE_SHIFT
 * of the budget (mem_limit - balloon): the stock allowance. One thread's
 * share of it is at most 1/ALLOC_STOCK_SHARES of the allowance, so that
 * that many threads can keep a stock at once.
 */
#define ALLOC_STOCK_ALLOWANCE_SHIFT 4
#define ALLOC_STOCK_SHARES	    16

static inline unsigned _alloc_tag_site(uint64_t tag)
{
	return (unsigned)tag;
}

/* A policy that was installed; kept until alloc_destroy(). */
struct alloc_policy_slot {
	const struct pfs_policy *ops;
	void *state;
	struct alloc_policy_slot *older;
};

struct alloc {
	/* ---- read-mostly line: what the fast path reads (id, stock_bytes,
	 * gate; alloc_fast.h), first so that a struct alloc * is one ---- */
	struct _alloc_hot hot;

	/* ---- the shared budget: written when a stock refills or overflows ---- */
	_Alignas(ALLOC_CACHELINE) _Atomic uint64_t charged;
	_Atomic uint64_t peak; /* high-water mark of charged */
	_Atomic uint64_t mem_limit;
	_Atomic uint64_t balloon;
	/* Sum of every cache's stock_max: the part of the stock allowance
	 * handed out (it bounds the budget sitting idle in stocks). */
	_Atomic uint64_t stock_granted;
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
	struct pfs_reserve *reserves;	      /* every reserve ever made (reserve.c) */
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
	uint64_t nth_left;	    /* attempts until the countdown fires, 0 = off */
	uint64_t nth_more;	    /* further failures after it fired */
	_Atomic bool nth_fired;

	/*
	 * Used (with atomic adds) by a thread whose own cache could not be
	 * allocated; first on the tcache list, never freed on its own.
	 */
	struct alloc_tcache orphan;

	const struct pfs_policy_host *log_host;
	struct alloc *registry_next; /* under the registry lock (budget.c) */
};

/*
 * The gate's bits (see struct _alloc_hot): 0-23 drain epoch (wraps); 24-39
 * the instance's id, so that one compare of the gate with a thread's
 * gate_seen also says whose cache it is; 40-61 waiters; 62 over; 63 armed.
 * With the gate open (no waiter, not over, not armed) it equals the
 * gate_seen of every thread that has returned its stock since the last
 * epoch bump.
 */
#define ALLOC_GATE_EPOCH_MASK	0xffffffull
#define ALLOC_GATE_ID_SHIFT	24
#define ALLOC_GATE_ID_MAX	0xffffu
#define ALLOC_GATE_OPEN_MASK	0xffffffffffull /* epoch and id */
#define ALLOC_GATE_WAITER	(1ull << 40)
#define ALLOC_GATE_WAITERS_MASK (0x3fffffull << 40)
#define ALLOC_GATE_OVER		(1ull << 62)
#define ALLOC_GATE_ARMED	(1ull << 63)

static inline uint64_t _alloc_gate(struct alloc *a)
{
	return atomic_load_explicit(&a->hot.gate, memory_order_relaxed);
}

/* ---- thread-local cache lookup (budget.c) ---- */
struct alloc_tcache *_alloc_tcache_slow(struct alloc *a);

/* Set this thread's gate_seen in its cache tc of a, and in the
 * thread-local copy that the inline fast path compares. */
static inline void _alloc_gate_seen_set(struct alloc_tcache *tc, uint64_t seen)
{
	tc->gate_seen = seen;
	if (atomic_load_explicit(&_alloc_tls.tc, memory_order_relaxed) == tc)
		atomic_store_explicit(&_alloc_tls.key, seen, memory_order_relaxed);
}

static inline struct alloc_tcache *_alloc_tcache(struct alloc *a)
{
	uint64_t key = atomic_load_explicit(&_alloc_tls.key, memory_order_relaxed);

	if (ALLOC_LIKELY((key >> ALLOC_GATE_ID_SHIFT & ALLOC_GATE_ID_MAX) == a->hot.id)) {
		struct alloc_tcache *tc =
			atomic_load_explicit(&_alloc_tls.tc, memory_order_relaxed);

		if (!tc)
			__builtin_unreachable(); /* only a found cache is remembered */
		return tc;
	}
	return _alloc_tcache_slow(a);
}

/* Single-writer counter update: no lock prefix. */
static inline void _alloc_counter_add(_Atomic uint64_t *c, uint64_t v)
{
	ALLOC_COUNTER_ADD(c, v);
}

/* Raise a high-water mark (peaks, stall_ns_max) to value if it is higher. */
static inline void _alloc_max_raise(_Atomic uint64_t *max, uint64_t value)
{
	uint64_t old = atomic_load_explicit(max, memory_order_relaxed);

	while (value > old && !atomic_compare_exchange_weak_explicit(
				      max, &old, value, memory_order_relaxed, memory_order_relaxed))
		;
}

/* A block handed out of a policy's reserve (reserve.c) carries this tag:
 * not a live site's, so alloc_free()'s check sends it to the slow path. */
#define ALLOC_MAGIC_RESERVED	      0x70667372u /* "pfsr" */
#define ALLOC_TAG_RESERVED(site)      ((uint64_t)ALLOC_MAGIC_RESERVED << 32 | (uint64_t)(site))
#define ALLOC_TAG_RESERVED_CHECK(tag) ((uint64_t)(tag)-ALLOC_TAG_RESERVED(0))

/* ---- reserve.c ---- */
enum alloc_reserve_miss {
	ALLOC_RESERVE_EMPTY, /* every element is out: one comes back on a free */
	ALLOC_RESERVE_NEVER, /* destroyed, another allocator's, or too small */
};
/* An element of r for size bytes at site, or NULL and *miss. */
void *_alloc_reserve_take(struct alloc *a, struct alloc_tcache *tc, struct pfs_reserve *r,
			  unsigned site, size_t size, unsigned flags,
			  enum alloc_reserve_miss *miss);
bool _alloc_reserve_has_free(struct pfs_reserve *r);
/* Is this live block an element of a reserve? */
bool _alloc_reserve_owns(const void *ptr);
/* Give an element back (alloc_free of a reserved block). */
void _alloc_reserve_put(struct alloc *a, void *ptr);
/* alloc_destroy(): free every reserve and the elements on its list. */
void _alloc_reserves_free(struct alloc *a);

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
/* A reserve's bytes: charged to the shared counter when it is made (0 or
 * -ENOMEM, never waits), given back when it is destroyed (wakes waiters). */
int _alloc_reserve_charge(struct alloc *a, uint64_t bytes);
void _alloc_reserve_uncharge(struct alloc *a, uint64_t bytes);
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
	return (unsigned)((atomic_load(&a->hot.gate) & ALLOC_GATE_WAITERS_MASK) >> 40);
}

#endif /* PFS_ALLOC_I_H */
