/*
 * The budget: mem_limit, the balloon, the shared `charged` counter and the
 * per-thread stock in front of it (memcg's per-CPU stock, per thread here),
 * the thread-local cache lookup, and waiting for memory (mempool style: a
 * free touches the wait lock only when somebody waits).
 *
 * Invariant: charged = live bytes + every thread's stock, and a charge that
 * would take charged past mem_limit - balloon is refused (compare-and-swap,
 * never add-then-check), so use never passes the limit. Before refusing, a
 * thread returns its own stock, bumps the drain epoch (every other thread returns
 * its stock on its next call) and checks again: in a single-threaded program
 * refusal is exact to the byte.
 *
 * Another thread's stock cannot be taken back (it is the owner's plain
 * word, which is what makes the fast path cheap), and an idle thread may
 * hold its stock for ever. So what idle stocks may hold is bounded instead:
 * all stocks together draw from an allowance of 1/16 of mem_limit - balloon.
 * A thread's stock_max is its share, granted when it first needs stock and
 * counted in stock_granted; its stock never passes it. A refusal therefore
 * leaves at most 1/16 of the budget idle in other threads' stocks, at any
 * thread count. Shares are at most 1/16 of the allowance (and 2 *
 * stock_bytes), whole or none: threads beyond that run without a stock,
 * every call on the shared counter, until a share comes back (the owner's
 * exit, or its next call after the drain epoch moved). When the budget
 * shrinks, shares granted from the old allowance come back at each owner's
 * next call.
 *
 * Near the limit stocks are switched off (the gate's OVER bit): from a
 * refusal, or a limit/balloon change that leaves less than one stock of
 * room, until frees or a bigger budget leave a stock's worth of room again.
 * Without it a thread could keep re-using memory it freed into its stock
 * after the balloon had squeezed the budget below what is in use.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc_i.h"

__thread struct alloc_tls _alloc_tls __attribute__((tls_model("initial-exec")));

/* registry_lock protects `registry`, the list of live instances that a
 * thread walks at exit to hand back its stock. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct alloc *registry;

static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t thread_key;
static bool thread_key_ok;
static _Atomic uint64_t next_thread_id;
/* Ids of live instances (bit i: id i in use; id 0 never), under
 * registry_lock. An id is reused only after alloc_destroy() has scrubbed
 * every thread's copy of it. */
static uint64_t ids_used[(ALLOC_GATE_ID_MAX + 1) / 64] = {1};
static __thread uint64_t tls_thread_id;

uint64_t _alloc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_id(void)
{
	if (ALLOC_UNLIKELY(tls_thread_id == 0))
		tls_thread_id = atomic_fetch_add(&next_thread_id, 1) + 1;
	return tls_thread_id;
}

/* Charge the shared counter; refuse what would pass mem_limit - balloon. */
static int shared_charge(struct alloc *a, uint64_t amount)
{
	uint64_t limit = atomic_load_explicit(&a->mem_limit, memory_order_relaxed);
	uint64_t balloon, room, old, new;

	if (limit == 0) {
		new = atomic_fetch_add(&a->charged, amount) + amount;
		goto out_peak;
	}
	balloon = atomic_load_explicit(&a->balloon, memory_order_relaxed);
	room = limit > balloon ? limit - balloon : 0;
	old = atomic_load_explicit(&a->charged, memory_order_relaxed);
	do {
		if (amount > room || old > room - amount)
			return -ENOMEM;
		new = old + amount;
	} while (!atomic_compare_exchange_weak(&a->charged, &old, new));
out_peak:
	_alloc_max_raise(&a->peak, new);
	return 0;
}

/* Set or clear OVER: set when less than one stock of room is left. */
static void budget_over_update(struct alloc *a)
{
	uint64_t limit = atomic_load(&a->mem_limit);
	uint64_t balloon = atomic_load(&a->balloon);
	uint64_t room = limit > balloon ? limit - balloon : 0;
	uint64_t charged = atomic_load(&a->charged);
	bool over = a->hot.stock_bytes && limit &&
		    (room < a->hot.stock_bytes || charged > room - a->hot.stock_bytes);

	if (over && !(atomic_load(&a->hot.gate) & ALLOC_GATE_OVER))
		atomic_fetch_or(&a->hot.gate, ALLOC_GATE_OVER);
	else if (!over && (atomic_load(&a->hot.gate) & ALLOC_GATE_OVER))
		atomic_fetch_and(&a->hot.gate, ~ALLOC_GATE_OVER);
}

static void shared_uncharge(struct alloc *a, uint64_t amount)
{
	uint64_t gate;

	if (amount == 0)
		return;
	atomic_fetch_sub(&a->charged, amount);
	/* The RMW above is a full barrier: a waiter that registered before it
	 * is seen here. */
	gate = atomic_load(&a->hot.gate);
	if (gate & ALLOC_GATE_OVER)
		budget_over_update(a);
	if (gate & ALLOC_GATE_WAITERS_MASK)
		_alloc_budget_wake(a);
}

/* Move the drain epoch on (wrapping inside its bits); returns the new
 * open gate (epoch and id). */
static uint64_t drain_epoch_bump(struct alloc *a)
{
	uint64_t old = atomic_load(&a->hot.gate), new;

	do {
		new = (old & ~ALLOC_GATE_EPOCH_MASK) | ((old + 1) & ALLOC_GATE_EPOCH_MASK);
	} while (!atomic_compare_exchange_weak(&a->hot.gate, &old, new));
	return new &ALLOC_GATE_OPEN_MASK;
}

bool _alloc_budget_fits(struct alloc *a, uint64_t size)
{
	uint64_t limit = atomic_load(&a->mem_limit);
	uint64_t balloon = atomic_load(&a->balloon);
	uint64_t room = limit > balloon ? limit - balloon : 0;

	return limit == 0 || (size <= room && atomic_load(&a->charged) <= room - size);
}

/* Hand the whole stock back (epoch moved, a waiter, thread exit). */
static void stock_return(struct alloc *a, struct alloc_tcache *tc)
{
	uint64_t stock = tc->stock;

	tc->stock = 0;
	shared_uncharge(a, stock);
}

/* What all stocks together may hold; UINT64_MAX without a limit. */
static uint64_t stock_allowance(struct alloc *a)
{
	uint64_t limit = atomic_load_explicit(&a->mem_limit, memory_order_relaxed);
	uint64_t balloon = atomic_load_explicit(&a->balloon, memory_order_relaxed);

	if (limit == 0)
		return UINT64_MAX;
	return (limit > balloon ? limit - balloon : 0) >> ALLOC_STOCK_ALLOWANCE_SHIFT;
}

/* Give tc (which has none) a whole share of the allowance if one is left. */
static void stock_share_grant(struct alloc *a, struct alloc_tcache *tc)
{
	uint64_t allowance = stock_allowance(a);
	uint64_t share = 2 * a->hot.stock_bytes;
	uint64_t old;

	if (allowance != UINT64_MAX && share > allowance / ALLOC_STOCK_SHARES)
		share = allowance / ALLOC_STOCK_SHARES;
	if (share == 0)
		return;
	old = atomic_load_explicit(&a->stock_granted, memory_order_relaxed);
	do {
		if (old > allowance || share > allowance - old)
			return;
	} while (!atomic_compare_exchange_weak(&a->stock_granted, &old, old + share));
	tc->stock_max = share;
}

/* Hand back the stock and then the share it was held under. */
static void stock_share_release(struct alloc *a, struct alloc_tcache *tc)
{
	stock_return(a, tc);
	if (tc->stock_max) {
		atomic_fetch_sub(&a->stock_granted, tc->stock_max);
		tc->stock_max = 0;
	}
}

int _alloc_budget_charge_slow(struct alloc *a, struct alloc_tcache *tc, unsigned site,
			      uint64_t size)
{
	uint64_t epoch = _alloc_gate(a) & ALLOC_GATE_OPEN_MASK;
	uint64_t need, refill;

	if (a->hot.stock_bytes == 0) {
		if (shared_charge(a, size))
			return -ENOMEM;
		_alloc_max_raise(&a->site_peak[site],
				 atomic_fetch_add(&a->site_charged[site], size) + size);
		return 0;
	}
	if (tc->gate_seen != epoch) {
		stock_share_release(a, tc);
		_alloc_gate_seen_set(tc, epoch);
	}
	if (_alloc_gate(a) & ALLOC_GATE_OVER) {
		/* Near the limit: no stock, every byte checked. */
		stock_return(a, tc);
		if (shared_charge(a, size) == 0)
			goto out_peak;
		return -ENOMEM;
	}
	if (size <= tc->stock) {
		tc->stock -= size;
		return 0;
	}
	if (tc->stock_max == 0)
		stock_share_grant(a, tc);
	refill = tc->stock_max / 2;
	need = size - tc->stock;
	if (refill && need + refill >= need && shared_charge(a, need + refill) == 0) {
		tc->stock = refill;
	} else if (shared_charge(a, need) == 0) {
		tc->stock = 0;
	} else {
		/* Refusing: first make every stock come home, then check again. */
		_alloc_gate_seen_set(tc, drain_epoch_bump(a));
		stock_share_release(a, tc);
		atomic_fetch_or(&a->hot.gate, ALLOC_GATE_OVER);
		if (shared_charge(a, size))
			return -ENOMEM;
	}
out_peak:
	/* The stock just moved: a good moment to sample this site's peak. */
	_alloc_max_raise(&a->site_peak[site], _alloc_site_live(a, site) + size);
	return 0;
}

void _alloc_budget_uncharge_slow(struct alloc *a, struct alloc_tcache *tc, unsigned site,
				 uint64_t size)
{
	uint64_t gate = _alloc_gate(a);
	uint64_t epoch = gate & ALLOC_GATE_OPEN_MASK;

	if (a->hot.stock_bytes == 0) {
		atomic_fetch_sub(&a->site_charged[site], size);
		shared_uncharge(a, size);
		return;
	}
	tc->stock += size;
	if (tc->gate_seen != epoch) {
		_alloc_gate_seen_set(tc, epoch);
		stock_share_release(a, tc);
	} else if (gate & (ALLOC_GATE_WAITERS_MASK | ALLOC_GATE_OVER)) {
		stock_return(a, tc);
	} else if (tc->stock > tc->stock_max) {
		uint64_t excess = tc->stock - tc->stock_max / 2;

		tc->stock = tc->stock_max / 2;
		shared_uncharge(a, excess);
	}
}

void _alloc_budget_uncharge_orphan(struct alloc *a, unsigned site, uint64_t size)
{
	if (a->hot.stock_bytes == 0)
		atomic_fetch_sub(&a->site_charged[site], size);
	shared_uncharge(a, size);
}

/* ---- a policy's reserve ---- */

int _alloc_reserve_charge(struct alloc *a, uint64_t bytes)
{
	if (bytes == 0)
		return 0;
	if (shared_charge(a, bytes))
		return -ENOMEM;
	budget_over_update(a);
	return 0;
}

void _alloc_reserve_uncharge(struct alloc *a, uint64_t bytes)
{
	shared_uncharge(a, bytes);
}

/* ---- thread caches ---- */

/* At thread exit: hand back this thread's stock in every live instance. */
static void thread_exit(void *unused)
{
	uint64_t me = tls_thread_id;

	pthread_mutex_lock(&registry_lock);
	for (struct alloc *a = registry; a; a = a->registry_next) {
		pthread_mutex_lock(&a->lock);
		for (struct alloc_tcache *tc = atomic_load(&a->tcaches); tc; tc = tc->next) {
			if (tc->owner != me)
				continue;
			stock_share_release(a, tc);
			tc->owner = 0;
			tc->owner_tls = NULL; /* gone with this thread */
		}
		pthread_mutex_unlock(&a->lock);
	}
	atomic_store_explicit(&_alloc_tls.key, 0, memory_order_relaxed);
	atomic_store_explicit(&_alloc_tls.tc, NULL, memory_order_relaxed);
	pthread_mutex_unlock(&registry_lock);
}

static void thread_key_make(void)
{
	thread_key_ok = pthread_key_create(&thread_key, thread_exit) == 0;
}

struct alloc_tcache *_alloc_tcache_slow(struct alloc *a)
{
	uint64_t me = thread_id();
	struct alloc_tcache *tc;

	pthread_once(&thread_key_once, thread_key_make);
	pthread_mutex_lock(&a->lock);
	for (tc = atomic_load(&a->tcaches); tc; tc = tc->next)
		if (tc->owner == me)
			goto out_unlock;
	_Static_assert(sizeof(*tc) % ALLOC_CACHELINE == 0, "aligned_alloc wants a multiple");
	tc = aligned_alloc(ALLOC_CACHELINE, sizeof(*tc));
	if (!tc)
		goto out_unlock;
	memset(tc, 0, sizeof(*tc));
	tc->owner = me; /* stock_max 0: a share is granted at the first charge */
	tc->gate_seen = atomic_load(&a->hot.gate) & ALLOC_GATE_OPEN_MASK;
	/* Without the exit hook this thread's copy could outlive it unseen:
	 * then its cache is found under the lock each time, never cached. */
	tc->owner_tls = thread_key_ok ? &_alloc_tls : NULL;
	tc->next = atomic_load_explicit(&a->tcaches, memory_order_relaxed);
	atomic_store_explicit(&a->tcaches, tc, memory_order_release);
out_unlock:
	pthread_mutex_unlock(&a->lock);
	if (!tc)
		return NULL;
	if (!thread_key_ok)
		return tc;
	pthread_setspecific(thread_key, (void *)1);
	/* tc first: a scrub (alloc_destroy) reads tc before clearing key. */
	atomic_store_explicit(&_alloc_tls.tc, tc, memory_order_relaxed);
	atomic_store_explicit(&_alloc_tls.key, tc->gate_seen, memory_order_relaxed);
	return tc;
}

/* ---- instance set-up ---- */

/* A free instance id, 0 if none; under registry_lock. */
static uint64_t id_take(void)
{
	for (unsigned w = 0; w < sizeof(ids_used) / sizeof(ids_used[0]); w++) {
		unsigned bit;

		if (ids_used[w] == UINT64_MAX)
			continue;
		bit = (unsigned)__builtin_ctzll(~ids_used[w]);
		ids_used[w] |= 1ull << bit;
		return (uint64_t)w * 64 + bit;
	}
	return 0;
}

/*
 * Before its id can be reused: no thread's copy may still name this
 * instance, or that thread would take a new instance for it. Under
 * registry_lock, so no owner exits meanwhile; an owner that is switching
 * to another instance at the same moment at worst loses its copy of that
 * one (a slow path later).
 */
static void id_release(struct alloc *a)
{
	for (struct alloc_tcache *tc = atomic_load(&a->tcaches); tc; tc = tc->next) {
		struct alloc_tls *tls = tc->owner_tls;

		if (tls && atomic_load_explicit(&tls->tc, memory_order_relaxed) == tc)
			atomic_store_explicit(&tls->key, 0, memory_order_relaxed);
	}
	ids_used[a->hot.id / 64] &= ~(1ull << (a->hot.id % 64));
}

int _alloc_budget_init(struct alloc *a, const struct alloc_config *config)
{
	pthread_condattr_t attr;
	int err;

	/* Bounded so that stock arithmetic can never overflow (the fast path
	 * relies on size <= stock to bound size). */
	a->hot.stock_bytes = config->stock_bytes < ALLOC_STOCK_BYTES_MAX ? config->stock_bytes
									 : ALLOC_STOCK_BYTES_MAX;
	atomic_init(&a->mem_limit, config->mem_limit);
	atomic_init(&a->balloon, config->balloon);
	err = pthread_condattr_init(&attr);
	if (err)
		return -err;
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	err = pthread_cond_init(&a->wait_cond, &attr);
	pthread_condattr_destroy(&attr);
	if (err)
		return -err;
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->wait_lock, NULL);

	atomic_init(&a->tcaches, &a->orphan);

	pthread_mutex_lock(&registry_lock);
	a->hot.id = id_take();
	if (a->hot.id == 0) {
		pthread_mutex_unlock(&registry_lock);
		pthread_cond_destroy(&a->wait_cond);
		pthread_mutex_destroy(&a->wait_lock);
		pthread_mutex_destroy(&a->lock);
		return -EMFILE; /* ALLOC_GATE_ID_MAX instances alive */
	}
	atomic_init(&a->hot.gate, (uint64_t)a->hot.id << ALLOC_GATE_ID_SHIFT);
	a->registry_next = registry;
	registry = a;
	pthread_mutex_unlock(&registry_lock);
	return 0;
}

void _alloc_budget_fini(struct alloc *a)
{
	struct alloc_tcache *tc, *next;

	pthread_mutex_lock(&registry_lock);
	for (struct alloc **p = &registry; *p; p = &(*p)->registry_next) {
		if (*p == a) {
			*p = a->registry_next;
			break;
		}
	}
	id_release(a);
	pthread_mutex_unlock(&registry_lock);

	for (tc = atomic_load(&a->tcaches); tc; tc = next) {
		next = tc->next;
		if (tc != &a->orphan)
			free(tc);
	}

	pthread_cond_destroy(&a->wait_cond);
	pthread_mutex_destroy(&a->wait_lock);
	pthread_mutex_destroy(&a->lock);
}

/* ---- limit, balloon, waiting ---- */

void _alloc_budget_wake(struct alloc *a)
{
	pthread_mutex_lock(&a->wait_lock);
	a->wake_gen++;
	pthread_cond_broadcast(&a->wait_cond);
	pthread_mutex_unlock(&a->wait_lock);
}

/* After a budget change: every thread hands its stock back on its next
 * call, OVER follows the new room, and waiters look again. */
static void budget_changed(struct alloc *a)
{
	drain_epoch_bump(a);
	budget_over_update(a);
	_alloc_budget_wake(a);
}

void alloc_set_mem_limit(struct alloc *a, uint64_t bytes)
{
	atomic_store(&a->mem_limit, bytes);
	budget_changed(a);
}

uint64_t alloc_mem_limit(const struct alloc *a)
{
	return atomic_load(&((struct alloc *)a)->mem_limit);
}

void alloc_set_balloon(struct alloc *a, uint64_t bytes)
{
	atomic_store(&a->balloon, bytes);
	budget_changed(a);
}

uint64_t alloc_balloon(const struct alloc *a)
{
	return atomic_load(&((struct alloc *)a)->balloon);
}

uint64_t alloc_charged(const struct alloc *a)
{
	return atomic_load(&((struct alloc *)a)->charged);
}

/*
 * A waiter registers (so that frees and budget changes move wake_gen), reads
 * wake_gen, checks for memory, and only then sleeps until wake_gen moves: a
 * free between its check and its sleep is not lost (prepare_to_wait style).
 */
void _alloc_waiter_add(struct alloc *a)
{
	atomic_fetch_add(&a->hot.gate, ALLOC_GATE_WAITER);
}

void _alloc_waiter_del(struct alloc *a)
{
	atomic_fetch_sub(&a->hot.gate, ALLOC_GATE_WAITER);
}

uint64_t _alloc_wake_gen(struct alloc *a)
{
	uint64_t gen;

	pthread_mutex_lock(&a->wait_lock);
	gen = a->wake_gen;
	pthread_mutex_unlock(&a->wait_lock);
	return gen;
}

int _alloc_wait_since(struct alloc *a, uint64_t gen, uint64_t timeout_ns)
{
	uint64_t deadline = _alloc_now_ns() + timeout_ns;
	struct timespec ts = {
		.tv_sec = (time_t)(deadline / 1000000000u),
		.tv_nsec = (long)(deadline % 1000000000u),
	};
	bool woken;

	pthread_mutex_lock(&a->wait_lock);
	while (gen == a->wake_gen) {
		if (pthread_cond_timedwait(&a->wait_cond, &a->wait_lock, &ts) == ETIMEDOUT)
			break;
	}
	woken = gen != a->wake_gen;
	pthread_mutex_unlock(&a->wait_lock);
	return woken ? 0 : -ETIMEDOUT;
}

int alloc_wait_for_memory(struct alloc *a, uint64_t timeout_ns)
{
	uint64_t gen;
	int rc;

	/* Registered and the generation read in one step under wait_lock:
	 * a waker that saw this thread registered takes wait_lock after it and
	 * moves the generation past the one read here.  Registering first and
	 * reading later would lose a wake that came in between. */
	pthread_mutex_lock(&a->wait_lock);
	_alloc_waiter_add(a);
	gen = a->wake_gen;
	pthread_mutex_unlock(&a->wait_lock);
	rc = _alloc_wait_since(a, gen, timeout_ns);
	_alloc_waiter_del(a);
	return rc;
}
