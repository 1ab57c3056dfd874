/*
 * The allocation calls and the verdict loop.
 *
 * Fast path (injection off, stock covers the size): the thread cache, a few
 * plain stores, malloc. Anything else goes to call_slow(), which makes the
 * attempt again from the start (injection, budget, malloc); when the budget
 * or malloc refuses it, drops clean pages and tries once more (direct
 * reclaim); when that fails too, asks the installed policy and carries out
 * its verdict.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_i.h"
#include "log.h"

/* Largest request: the header must still fit in a size_t. */
#define ALLOC_SIZE_MAX (SIZE_MAX / 2)

static struct alloc_header *header_of(const void *ptr)
{
	return (struct alloc_header *)ptr - 1;
}

void _alloc_log(const struct alloc *a, enum pfs_log_level level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (a->log_host && a->log_host->log)
		a->log_host->log(a->log_host->host_data, level, "%s", line);
	else
		pfs_log((int)level, "%s", line);
}

/* ---- instance ---- */

struct alloc *alloc_create(const struct alloc_config *config)
{
	struct alloc_config defaults = {.stock_bytes = ALLOC_DEFAULT_STOCK_BYTES};
	struct alloc *a;
	int err;

	if (!config)
		config = &defaults;
	_Static_assert(sizeof(*a) % ALLOC_CACHELINE == 0, "aligned_alloc wants a multiple");
	a = aligned_alloc(ALLOC_CACHELINE, sizeof(*a));
	if (!a)
		return NULL;
	memset(a, 0, sizeof(*a));
	a->log_host = config->log_host;
	_alloc_inject_init(a);
	err = _alloc_budget_init(a, config);
	if (err) {
		pthread_mutex_destroy(&a->inject_lock);
		free(a);
		errno = -err;
		return NULL;
	}
	return a;
}

void alloc_destroy(struct alloc *a)
{
	struct alloc_policy_slot *slot, *older;
	uint64_t live;

	if (!a)
		return;
	live = alloc_live(a);
	if (live)
		pfs_log(LOG_ERR, "alloc_destroy: %" PRIu64 " bytes still allocated", live);
	for (slot = a->policy_all; slot; slot = older) {
		older = slot->older;
		free(slot);
	}
	_alloc_reserves_free(a);
	_alloc_budget_fini(a);
	pthread_mutex_destroy(&a->inject_lock);
	free(a);
}

/* ---- policy ---- */

void alloc_set_policy(struct alloc *a, const struct pfs_policy *ops, void *state)
{
	struct alloc_policy_slot *slot = NULL;

	if (ops) {
		slot = malloc(sizeof(*slot));
		if (!slot) {
			_alloc_log(a, PFS_LOG_ERR, "alloc: out of memory installing policy %s",
				   ops->name ? ops->name : "?");
			return;
		}
		slot->ops = ops;
		slot->state = state;
		pthread_mutex_lock(&a->lock);
		slot->older = a->policy_all;
		a->policy_all = slot;
		pthread_mutex_unlock(&a->lock);
	}
	atomic_store_explicit(&a->policy, slot, memory_order_release);
}

const struct pfs_policy *alloc_policy(const struct alloc *a)
{
	struct alloc_policy_slot *slot =
		atomic_load_explicit(&((struct alloc *)a)->policy, memory_order_acquire);

	return slot ? slot->ops : NULL;
}

static struct pfs_decision policy_decide(struct alloc *a, const struct pfs_failure *f)
{
	struct alloc_policy_slot *slot = atomic_load_explicit(&a->policy, memory_order_acquire);
	struct pfs_decision fail = {.verdict = PFS_VERDICT_FAIL};

	if (!slot || !slot->ops->decide)
		return fail;
	return slot->ops->decide(slot->state, f);
}

/* ---- one attempt ---- */

static void counters_add(struct alloc_tcache *tc, bool orphan, unsigned site,
			 enum alloc_tc_counter which, uint64_t v)
{
	if (orphan)
		atomic_fetch_add_explicit(&tc->count[site][which], v, memory_order_relaxed);
	else
		_alloc_counter_add(&tc->count[site][which], v);
}

/*
 * Try once: injection, budget, malloc (or realloc of old). Returns the block
 * or NULL with *cause set. Nothing is charged after a failure.
 */
static void *attempt(struct alloc *a, struct alloc_tcache *tc, unsigned site, size_t size,
		     unsigned flags, void *old, enum pfs_cause *cause)
{
	struct alloc_header *oh = old ? header_of(old) : NULL;
	uint64_t old_size = oh ? oh->size : 0;
	unsigned old_site = oh ? _alloc_tag_site(oh->tag) : site;
	/* Same site: charge only the growth. Another site: charge it all
	 * there, and uncharge the old block at its site on success. */
	uint64_t charge = old_site == site ? (size > old_size ? size - old_size : 0) : size;
	uint64_t uncharge = old_site == site ? (size < old_size ? old_size - size : 0) : old_size;
	struct alloc_header *h;

	if (!tc) {
		*cause = PFS_CAUSE_SYSTEM;
		return NULL;
	}
	if ((_alloc_gate(a) & ALLOC_GATE_ARMED) && _alloc_inject_should_fail(a, site, size)) {
		*cause = PFS_CAUSE_INJECTED;
		return NULL;
	}
	if (size > ALLOC_SIZE_MAX) {
		*cause = PFS_CAUSE_SYSTEM;
		return NULL;
	}
	if (charge && _alloc_budget_charge(a, tc, site, charge)) {
		*cause = PFS_CAUSE_BUDGET;
		return NULL;
	}
	if (oh)
		h = realloc(oh, sizeof(*h) + size);
	else if (flags & ALLOC_ZERO)
		h = calloc(1, sizeof(*h) + size);
	else
		h = malloc(sizeof(*h) + size);
	if (!h) {
		if (charge)
			_alloc_budget_uncharge(a, tc, site, charge);
		*cause = PFS_CAUSE_SYSTEM;
		return NULL;
	}
	if (uncharge)
		_alloc_budget_uncharge(a, tc, old_site, uncharge);
	if (oh && (flags & ALLOC_ZERO) && size > old_size)
		memset((char *)(h + 1) + old_size, 0, size - old_size);
	h->size = size;
	h->tag = ALLOC_TAG(site);
	_alloc_counter_add(&tc->count[site][ALLOC_TC_BYTES_IN], size);
	if (oh)
		_alloc_counter_add(&tc->count[old_site][ALLOC_TC_BYTES_OUT], old_size);
	return h + 1;
}

static void count_failure(struct alloc *a, unsigned site, enum pfs_cause cause)
{
	static const enum alloc_stat by_cause[] = {
		[PFS_CAUSE_BUDGET] = ALLOC_STAT_budget_failures,
		[PFS_CAUSE_INJECTED] = ALLOC_STAT_injected_failures,
		[PFS_CAUSE_SYSTEM] = ALLOC_STAT_system_failures,
	};

	_alloc_stat_inc(a, site, by_cause[cause]);
}

static void record_stall(struct alloc *a, struct alloc_retry *r)
{
	if (r->first_fail_ns == 0)
		return;
	_alloc_stats_stall(a, r->site, _alloc_now_ns() - r->first_fail_ns);
	r->first_fail_ns = 0;
}

static _Noreturn void carry_out_abort(struct alloc *a, const struct pfs_failure *f)
{
	const struct pfs_policy *policy = alloc_policy(a);

	_alloc_stat_inc(a, f->site_id, ALLOC_STAT_aborts);
	_alloc_log(a, PFS_LOG_ERR,
		   "alloc: ABORT: site %s size %zu cause %s live %" PRIu64 " mem_limit %" PRIu64
		   " balloon %" PRIu64 " policy %s",
		   f->site, f->size, pfs_cause_name(f->cause), f->live, f->mem_limit, f->balloon,
		   policy && policy->name ? policy->name : "none");
	abort();
}

/* The call ends without memory (FAIL, or BYPASS for a caller that can do
 * without): count it, note its stall, and start the next call afresh. */
static void call_give_up(struct alloc *a, unsigned site, struct alloc_retry *r,
			 enum pfs_verdict verdict, enum alloc_stat stat)
{
	_alloc_stat_inc(a, site, stat);
	record_stall(a, r);
	r->verdict = verdict;
	r->attempt = 0;
	r->last_asked_ns = 0;
	errno = ENOMEM;
}

/*
 * The verdict loop. retry non-NULL: the caller can drop its locks and call
 * again (alloc_try); a RETRY verdict then returns with *err = -EAGAIN.
 */
static void *call_slow(struct alloc *a, unsigned site, size_t size, unsigned flags, void *old,
		       struct alloc_retry *retry, int *err)
{
	struct alloc_retry local = ALLOC_RETRY_INIT;
	struct alloc_retry *r = retry ? retry : &local;
	bool waiting = false;		    /* registered as a waiter since the first wait */
	bool direct_tried = false;	    /* direct reclaim had its turn in this call */
	bool rescue = false;		    /* this attempt is the one after direct reclaim */
	struct pfs_reserve *reserve = NULL; /* waiting for an element of it */
	struct alloc_tcache *tc;
	void *p = NULL;

	if (site >= ALLOC_SITE_COUNT)
		site = ALLOC_SITE_OTHER;
	tc = _alloc_tcache(a);
	/* A caller's retry continues the same call: count it once. */
	if (r->first_fail_ns == 0)
		counters_add(tc ? tc : &a->orphan, !tc, site, ALLOC_TC_CALLS, 1);
	r->site = (enum alloc_site)site;
	r->size = size;

	for (;;) {
		enum pfs_cause cause = PFS_CAUSE_SYSTEM;
		struct pfs_decision d;
		struct pfs_failure f;
		uint64_t now;

		if (!tc)
			tc = _alloc_tcache(a);
		p = attempt(a, tc, site, size, flags, old, &cause);
		reserve = NULL;
		if (p) {
			if (rescue)
				_alloc_stat_inc(a, site, ALLOC_STAT_reclaimed);
			record_stall(a, r);
			r->verdict = -1;
			r->attempt = 0;
			r->last_asked_ns = 0;
			*err = 0;
			goto out;
		}
		count_failure(a, site, cause);
		now = _alloc_now_ns();
		if (r->first_fail_ns == 0)
			r->first_fail_ns = now;
		rescue = false;
		if (!direct_tried) {
			direct_tried = true;
			if (_alloc_reclaim_direct(a, site, size, flags, cause)) {
				rescue = true;
				continue;
			}
			now = _alloc_now_ns();
		}
		f = (struct pfs_failure){
			.site = alloc_site_name((enum alloc_site)site),
			.site_id = site,
			.size = size,
			.flags = flags,
			.cause = cause,
			.attempt = r->attempt,
			.caller_can_retry = retry != NULL,
			.stalled_ns = now - r->first_fail_ns,
			.prev_stalled_ns = r->last_asked_ns,
			.mem_limit = alloc_mem_limit(a),
			.balloon = alloc_balloon(a),
			.live = alloc_live(a),
		};
		if (flags & ALLOC_NORETRY)
			d = (struct pfs_decision){.verdict = PFS_VERDICT_FAIL};
		else
			d = policy_decide(a, &f);
		r->last_asked_ns = f.stalled_ns;

		switch (d.verdict) {
		case PFS_VERDICT_LOOP:
			_alloc_stat_inc(a, site, ALLOC_STAT_loops);
			break;
		case PFS_VERDICT_RETRY:
			r->verdict = PFS_VERDICT_RETRY;
			r->wait_ns = d.wait_ns;
			if (retry) {
				*err = -EAGAIN;
				goto out;
			}
			/* The caller cannot drop its locks: back off here. */
			_alloc_stat_inc(a, site, ALLOC_STAT_caller_retries);
			break;
		case PFS_VERDICT_RESERVED: {
			enum alloc_reserve_miss miss;

			p = _alloc_reserve_take(a, tc, d.reserve, site, size, flags, &miss);
			if (p) {
				_alloc_stat_inc(a, site, ALLOC_STAT_reserved);
				if (old) {
					memcpy(p, old,
					       size < header_of(old)->size ? size
									   : header_of(old)->size);
					alloc_free(a, old);
				}
				record_stall(a, r);
				r->verdict = -1;
				r->attempt = 0;
				r->last_asked_ns = 0;
				*err = 0;
				goto out;
			}
			if (miss == ALLOC_RESERVE_NEVER)
				goto fail;
			/* Every element is out: sleep until one comes back
			 * (mempool_alloc's wait), then start over. */
			_alloc_stat_inc(a, site, ALLOC_STAT_loops);
			reserve = d.reserve;
			break;
		}
		case PFS_VERDICT_BYPASS:
			/* A caller with nowhere else to put the data: FAIL. */
			if (!retry || !(flags & ALLOC_BYPASS_OK))
				goto fail;
			call_give_up(a, site, r, PFS_VERDICT_BYPASS, ALLOC_STAT_bypassed);
			*err = ALLOC_EBYPASS;
			goto out;
		case PFS_VERDICT_ABORT:
			carry_out_abort(a, &f);
		case PFS_VERDICT_FAIL:
		default:
		fail:
			call_give_up(a, site, r, PFS_VERDICT_FAIL, ALLOC_STAT_enomem);
			*err = -ENOMEM;
			goto out;
		}
		/* LOOP, or RETRY inside: reclaim, then wait for a free. */
		r->attempt++;
		alloc_reclaim(a, size, flags & ALLOC_NOFS);
		if (!waiting) {
			/* Registered until the call ends: frees and budget
			 * changes now move the wake generation. */
			_alloc_waiter_add(a);
			waiting = true;
		}
		{
			uint64_t gen = _alloc_wake_gen(a);

			/* Room made, or an element given back, before gen
			 * was read would be a lost wake-up: check for it
			 * after reading gen. */
			if (reserve ? !_alloc_reserve_has_free(reserve)
				    : cause != PFS_CAUSE_BUDGET || !_alloc_budget_fits(a, size))
				_alloc_wait_since(a, gen, d.wait_ns);
		}
	}
out:
	if (waiting)
		_alloc_waiter_del(a);
	return p;
}

/* ---- the calls ---- */

/* The inline fast paths (alloc_fast.h) have their external definitions here. */
extern inline void *alloc_malloc(struct alloc *a, enum alloc_site site, size_t size,
				 unsigned flags);
extern inline void alloc_free(struct alloc *a, void *ptr);

/* The fast path could not serve this call: take the long way. */
void *_alloc_malloc_slow(struct alloc *a, enum alloc_site site, size_t size, unsigned flags)
{
	int err;

	return call_slow(a, site, size, flags, NULL, NULL, &err);
}

/* The stock was short: the fast path took size anyway (one instruction
 * that also tests); put it back, go slow. */
void *_alloc_malloc_refill(struct alloc *a, enum alloc_site site, size_t size, unsigned flags)
{
	struct alloc_tcache *tc = atomic_load_explicit(&_alloc_tls.tc, memory_order_relaxed);

	tc->stock += size;
	return _alloc_malloc_slow(a, site, size, flags);
}

/* malloc() failed after the fast path charged and counted: undo, go slow.
 * (The undo goes to `count`: readers add both, modulo 2^64, and the packed
 * word may have been folded meanwhile.) */
void *_alloc_malloc_failed(struct alloc *a, enum alloc_site site, size_t size, unsigned flags)
{
	struct alloc_tcache *tc = atomic_load_explicit(&_alloc_tls.tc, memory_order_relaxed);

	_alloc_counter_add(&tc->count[site][ALLOC_TC_CALLS], (uint64_t)-1);
	_alloc_counter_add(&tc->count[site][ALLOC_TC_BYTES_IN], -(uint64_t)size);
	_alloc_budget_uncharge(a, tc, site, size);
	return _alloc_malloc_slow(a, site, size, flags);
}

static _Noreturn void bad_block(const char *who, const void *ptr)
{
	pfs_log(LOG_CRIT, "%s(%p): not a live allocator block (double free?)", who, ptr);
	abort();
}

void _alloc_free_other(struct alloc *a, void *ptr)
{
	if (!_alloc_reserve_owns(ptr))
		bad_block("alloc_free", ptr);
	_alloc_reserve_put(a, ptr);
}

void *alloc_realloc(struct alloc *a, enum alloc_site site, void *ptr, size_t size, unsigned flags)
{
	int err;

	if (!ptr)
		return alloc_malloc(a, site, size, flags);
	if (ALLOC_TAG_CHECK(header_of(ptr)->tag) >= ALLOC_SITE_COUNT) {
		void *p;

		if (!_alloc_reserve_owns(ptr))
			bad_block("alloc_realloc", ptr);
		/* A reserve's element cannot grow in place: move it out, and
		 * give the element back. */
		p = call_slow(a, site, size, flags, NULL, NULL, &err);
		if (p) {
			memcpy(p, ptr, size < header_of(ptr)->size ? size : header_of(ptr)->size);
			_alloc_reserve_put(a, ptr);
		}
		return p;
	}
	return call_slow(a, site, size, flags, ptr, NULL, &err);
}

/* alloc_free() when the stock overflows, the gate is closed or this
 * thread has no cache yet; the block is already marked freed. */
void _alloc_free_slow(struct alloc *a, struct alloc_header *h, unsigned site, uint64_t size)
{
	struct alloc_tcache *tc = _alloc_tcache(a);

	if (ALLOC_LIKELY(tc != NULL)) {
		_alloc_budget_uncharge_slow(a, tc, site, size);
		_alloc_counter_add(&tc->count[site][ALLOC_TC_FREES], 1);
		_alloc_counter_add(&tc->count[site][ALLOC_TC_BYTES_OUT], size);
	} else {
		_alloc_budget_uncharge_orphan(a, site, size);
		counters_add(&a->orphan, true, site, ALLOC_TC_FREES, 1);
		counters_add(&a->orphan, true, site, ALLOC_TC_BYTES_OUT, size);
	}
	free(h);
}

size_t alloc_size(const void *ptr)
{
	return ptr ? (size_t)header_of(ptr)->size : 0;
}

char *alloc_strdup(struct alloc *a, enum alloc_site site, const char *s, unsigned flags)
{
	size_t len = strlen(s) + 1;
	char *copy = alloc_malloc(a, site, len, flags);

	if (copy)
		memcpy(copy, s, len);
	return copy;
}

/* ---- the caller-retry protocol ---- */

void *alloc_try(struct alloc *a, enum alloc_site site, size_t size, unsigned flags,
		struct alloc_retry *retry, int *err)
{
	int dummy;

	if (!err)
		err = &dummy;
	return call_slow(a, site, size, flags, NULL, retry, err);
}

int alloc_retry_wait(struct alloc *a, struct alloc_retry *retry)
{
	if (retry->verdict != PFS_VERDICT_RETRY)
		return -ENOMEM;
	/* The caller dropped its locks: reclaim may block now. */
	alloc_reclaim(a, retry->size, 0);
	alloc_wait_for_memory(a, retry->wait_ns);
	_alloc_stat_inc(a, retry->site, ALLOC_STAT_caller_retries);
	retry->attempt++;
	return 0;
}

void alloc_retry_done(struct alloc *a, struct alloc_retry *retry, bool succeeded)
{
	if (!succeeded && retry->verdict == PFS_VERDICT_RETRY) {
		_alloc_stat_inc(a, retry->site, ALLOC_STAT_enomem);
		retry->verdict = PFS_VERDICT_FAIL;
	}
	record_stall(a, retry);
}
