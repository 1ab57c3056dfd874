/*
 * retry: tell the caller to try again, a bounded number of times.
 *
 * What the allocator does: after a failed attempt it returns "try again"
 *	(-EAGAIN from alloc_try()) to a caller that can drop its locks; the
 *	caller drops them, reclaims with blocking allowed, sleeps the back-off
 *	(backoff_ms, doubling each attempt up to backoff_max_ms; a free ends it
 *	early) and calls again. A caller that cannot drop its locks gets the
 *	same loop inside the allocator, with no-fs reclaim. After `retries`
 *	retries the next failure is final.
 * Can it fail: yes, after exactly `retries` retries (retries + 1 attempts).
 * What the caller owes: a clean ENOMEM path, and a restart point: after it
 *	drops its locks it must revalidate what it looked up under them.
 * When NOT to use it: on paths that cannot be restarted and cannot fail
 *	(there is no good policy for those; nofail hides them as stalls). With
 *	large `retries` and back-off it behaves like nofail with a timeout.
 *
 * This is David Rientjes' position in the 2010 __GFP_NOFAIL debate: the
 * retry belongs to the caller, which knows what it can let go of.
 */
#include <errno.h>
#include <stdlib.h>

#include <pressurefs/policy.h>

#define NS_PER_MS 1000000ull

enum retry_param {
	RETRY_RETRIES,
	RETRY_BACKOFF_MS,
	RETRY_BACKOFF_MAX_MS,
};

static const struct pfs_policy_param retry_params[] = {
	[RETRY_RETRIES] = {"retries", 8, 0, 1000000,
			   "how many times the caller retries before it gets ENOMEM"},
	[RETRY_BACKOFF_MS] = {"backoff_ms", 2, 0, 60000,
			      "back-off before the first retry, ms; doubles each retry"},
	[RETRY_BACKOFF_MAX_MS] = {"backoff_max_ms", 1000, 0, 3600000, "longest back-off, ms"},
	{NULL, 0, 0, 0, NULL},
};

/* Read-only after init: decide() runs on many threads at once. */
struct retry_state {
	unsigned retries;
	uint64_t backoff_ms;
	uint64_t backoff_max_ms;
};

static int retry_init(void **state, const long long *values, const char *const *strings,
		      const struct pfs_policy_host *host, char *err, size_t errlen)
{
	struct retry_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->retries = (unsigned)values[RETRY_RETRIES];
	s->backoff_ms = (uint64_t)values[RETRY_BACKOFF_MS];
	s->backoff_max_ms = (uint64_t)values[RETRY_BACKOFF_MAX_MS];
	*state = s;
	return 0;
}

static void retry_fini(void *state)
{
	free(state);
}

/* backoff_ms * 2^attempt, capped, without overflowing on large attempts. */
static uint64_t retry_backoff_ms(const struct retry_state *s, unsigned attempt)
{
	uint64_t ms = s->backoff_ms;

	while (attempt-- > 0 && ms < s->backoff_max_ms)
		ms *= 2;
	return ms < s->backoff_max_ms ? ms : s->backoff_max_ms;
}

static struct pfs_decision retry_decide(void *state, const struct pfs_failure *f)
{
	const struct retry_state *s = state;

	if (f->attempt >= s->retries)
		return (struct pfs_decision){.verdict = PFS_VERDICT_FAIL};
	return (struct pfs_decision){
		.verdict = PFS_VERDICT_RETRY,
		.wait_ns = retry_backoff_ms(s, f->attempt) * NS_PER_MS,
	};
}

__attribute__((visibility("default"))) const struct pfs_policy pfs_policy_v1 = {
	.abi_version = PFS_POLICY_ABI_VERSION,
	.struct_size = sizeof(struct pfs_policy),
	.name = "retry",
	.summary = "let the caller drop its locks, back off and retry, up to `retries` times; "
		   "then ENOMEM",
	.params = retry_params,
	.init = retry_init,
	.fini = retry_fini,
	.decide = retry_decide,
};
