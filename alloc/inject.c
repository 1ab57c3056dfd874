/*
 * Fault injection with the meaning of the Linux knobs (lib/fault-inject.c):
 * probability in percent, interval, times, space, plus a site filter and a
 * seed, and the fail-the-Nth countdown the tests use.
 *
 * Everything runs under inject_lock so that one seed and one sequence of
 * calls give one sequence of failures. The fast path never comes here: it
 * reads the gate, whose ARMED bit is set only while some knob can fire.
 */
#include <inttypes.h>
#include <string.h>

#include "alloc_i.h"

/* splitmix64: small, fast, and good enough to decide percentages. */
static uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A number in 0..99 (multiply-shift: no modulo bias worth the name). */
static unsigned rng_below_100(uint64_t *state)
{
	return (unsigned)(((rng_next(state) >> 32) * 100u) >> 32);
}

/* Under inject_lock. */
static void inject_rearm(struct alloc *a)
{
	bool armed = a->nth_left != 0 ||
		     (a->inject.probability > 0 && a->inject.times != 0 && a->inject.sites != 0);

	if (armed)
		atomic_fetch_or(&a->hot.gate, ALLOC_GATE_ARMED);
	else
		atomic_fetch_and(&a->hot.gate, ~ALLOC_GATE_ARMED);
}

void _alloc_inject_init(struct alloc *a)
{
	struct alloc_inject off = ALLOC_INJECT_OFF;

	pthread_mutex_init(&a->inject_lock, NULL);
	a->inject = off;
	a->rng = off.seed;
}

void alloc_set_inject(struct alloc *a, const struct alloc_inject *inject)
{
	pthread_mutex_lock(&a->inject_lock);
	a->inject = *inject;
	if (a->inject.probability > 100)
		a->inject.probability = 100;
	if (a->inject.interval == 0)
		a->inject.interval = 1;
	a->rng = inject->seed;
	a->inject_count = 0;
	inject_rearm(a);
	pthread_mutex_unlock(&a->inject_lock);
}

void alloc_get_inject(const struct alloc *a, struct alloc_inject *inject)
{
	struct alloc *mut = (struct alloc *)a;

	pthread_mutex_lock(&mut->inject_lock);
	*inject = mut->inject;
	pthread_mutex_unlock(&mut->inject_lock);
}

void alloc_fail_nth(struct alloc *a, uint64_t n, uint64_t more)
{
	pthread_mutex_lock(&a->inject_lock);
	a->nth_left = n;
	a->nth_more = more;
	atomic_store(&a->nth_fired, false);
	inject_rearm(a);
	pthread_mutex_unlock(&a->inject_lock);
}

bool alloc_fail_nth_fired(const struct alloc *a)
{
	return atomic_load(&((struct alloc *)a)->nth_fired);
}

/* The countdown, under inject_lock. */
static bool nth_should_fail(struct alloc *a)
{
	if (a->nth_left == 0)
		return false;
	if (a->nth_left > 1) {
		a->nth_left--;
		return false;
	}
	/* Fired: this attempt fails, and `more` after it. */
	atomic_store(&a->nth_fired, true);
	if (a->nth_more == 0)
		a->nth_left = 0;
	else if (a->nth_more != UINT64_MAX)
		a->nth_more--;
	return true;
}

/* The kernel's should_fail(), under inject_lock. */
static bool knobs_should_fail(struct alloc *a, unsigned site, uint64_t size)
{
	struct alloc_inject *in = &a->inject;

	if (in->probability == 0)
		return false;
	if (!(in->sites & (1u << site)))
		return false;
	if (in->times == 0)
		return false;
	if (in->space > size) {
		in->space -= size;
		return false;
	}
	if (in->interval > 1) {
		a->inject_count++;
		if (a->inject_count % in->interval)
			return false;
	}
	if (in->probability <= rng_below_100(&a->rng))
		return false;
	if (in->times != -1)
		in->times--;
	return true;
}

bool _alloc_inject_should_fail(struct alloc *a, unsigned site, uint64_t size)
{
	bool fail, verbose;

	pthread_mutex_lock(&a->inject_lock);
	fail = nth_should_fail(a);
	if (!fail)
		fail = knobs_should_fail(a, site, size);
	verbose = fail && a->inject.verbose;
	inject_rearm(a);
	pthread_mutex_unlock(&a->inject_lock);
	if (verbose)
		_alloc_log(a, PFS_LOG_INFO, "alloc: injected failure at site %s, size %" PRIu64,
			   alloc_site_name((enum alloc_site)site), size);
	return fail;
}
