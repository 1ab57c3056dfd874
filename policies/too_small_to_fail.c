/*
 * too_small_to_fail: nofail for requests up to `threshold` bytes, enomem
 * above it.
 *
 * What the allocator does: a failed request of at most threshold bytes is
 *	kept in the allocator as under nofail (reclaim, wait up to wait_ms for
 *	a free, try again, for as long as it takes, with a warning each time
 *	the stall passes another stall_warn_ms); a larger one fails at once.
 *	This is the kernel's unwritten rule (LWN, 2014): order-0 allocations
 *	in process context loop implicitly, whatever the caller asked for.
 *	threshold=0, the default, means what one cache page asks for (its
 *	data and record, host->page_size()), this filesystem's order-0
 *	request: cache pages and small records never fail, larger buffers do.
 * Can it fail: only for requests above threshold.
 * What the caller owes: a clean ENOMEM path for its large requests; for
 *	small ones, the same care as under nofail (hold nothing the memory it
 *	waits for needs), though it may never have written that path, since
 *	it "cannot happen". That is the rule's danger: callers that check
 *	for a failure that never comes, until the threshold changes.
 * When NOT to use it: where small allocations are made under locks that
 *	reclaim needs (they hang as under nofail), or where memory may never
 *	come back (a small request then waits forever).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <pressurefs/policy.h>

#define NS_PER_MS	  1000000ull
#define TSTF_DEFAULT_UNIT 4096u /* when the host does not know its page size */

enum tstf_param {
	TSTF_THRESHOLD,
	TSTF_WAIT_MS,
	TSTF_STALL_WARN_MS,
};

static const struct pfs_policy_param tstf_params[] = {
	[TSTF_THRESHOLD] = {"threshold", 0, 0, 1ll << 40,
			    "largest request that never fails, bytes; 0 = the cache's page size"},
	[TSTF_WAIT_MS] = {"wait_ms", 10, 1, 60000,
			  "longest wait for a free before the next attempt, ms"},
	[TSTF_STALL_WARN_MS] = {"stall_warn_ms", 10000, 1, 86400000,
				"warn each time one allocation has stalled another this many ms"},
	{NULL, 0, 0, 0, NULL},
};

/* Read-only after init: decide() runs on many threads at once. */
struct tstf_state {
	uint64_t threshold; /* 0: ask the host each time (the page size may be set later) */
	uint64_t wait_ns;
	uint64_t stall_warn_ns;
	struct pfs_policy_host host;
};

static int tstf_init(void **state, const long long *values, const char *const *strings,
		     const struct pfs_policy_host *host, char *err, size_t errlen)
{
	struct tstf_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->threshold = (uint64_t)values[TSTF_THRESHOLD];
	s->wait_ns = (uint64_t)values[TSTF_WAIT_MS] * NS_PER_MS;
	s->stall_warn_ns = (uint64_t)values[TSTF_STALL_WARN_MS] * NS_PER_MS;
	if (host)
		s->host = *host;
	*state = s;
	return 0;
}

static void tstf_fini(void *state)
{
	free(state);
}

static uint64_t tstf_threshold(const struct tstf_state *s)
{
	uint64_t unit;

	if (s->threshold)
		return s->threshold;
	unit = s->host.page_size ? s->host.page_size(s->host.host_data) : 0;
	return unit ? unit : TSTF_DEFAULT_UNIT;
}

static void tstf_warn(const struct tstf_state *s, const struct pfs_failure *f)
{
	static const char fmt[] = "pressurefs: page allocation stall: site %s, %zu bytes, "
				  "stalled %llu ms, attempt %u (too small to fail)";
	unsigned long long ms = (unsigned long long)(f->stalled_ns / NS_PER_MS);

	if (s->host.log) {
		s->host.log(s->host.host_data, PFS_LOG_WARNING, fmt, f->site, f->size, ms,
			    f->attempt);
		return;
	}
	fprintf(stderr, fmt, f->site, f->size, ms, f->attempt);
	fputc('\n', stderr);
}

static struct pfs_decision tstf_decide(void *state, const struct pfs_failure *f)
{
	const struct tstf_state *s = state;

	if (f->size > tstf_threshold(s))
		return (struct pfs_decision){.verdict = PFS_VERDICT_FAIL};
	if (f->stalled_ns / s->stall_warn_ns > f->prev_stalled_ns / s->stall_warn_ns)
		tstf_warn(s, f);
	return (struct pfs_decision){.verdict = PFS_VERDICT_LOOP, .wait_ns = s->wait_ns};
}

__attribute__((visibility("default"))) const struct pfs_policy pfs_policy_v1 = {
	.abi_version = PFS_POLICY_ABI_VERSION,
	.struct_size = sizeof(struct pfs_policy),
	.name = "too_small_to_fail",
	.summary = "requests up to `threshold` bytes (default: a cache page) never fail, larger "
		   "ones get ENOMEM at once",
	.params = tstf_params,
	.init = tstf_init,
	.fini = tstf_fini,
	.decide = tstf_decide,
};
