/*
 * retry_mayfail: reclaim as hard as the caller's locks allow, wait for
 * writeback to free memory, for at most timeout_ms; then fail.
 *
 * What the allocator does: on each failed attempt the policy first asks the
 *	host to reclaim reclaim_kb (in the no-fs way when the caller holds
 *	filesystem locks: drop clean pages, wake writeback). A caller that can
 *	drop its locks is then told to retry (it reclaims again with blocking
 *	allowed, which writes dirty pages back, and waits wait_ms for a free);
 *	one that cannot is kept in the allocator for the same wait. Once the
 *	call has stalled timeout_ms the next failure is final. This is the
 *	kernel's __GFP_RETRY_MAYFAIL: try hard, may fail, never loop forever
 *	(and here, as there, nothing is killed to make room).
 * Can it fail: yes, after about timeout_ms of trying; never before its
 *	first reclaim.
 * What the caller owes: a clean ENOMEM path, and a restart point when it
 *	can retry (as for `retry`). It must tolerate a stall of up to
 *	timeout_ms (plus one wait) on every allocation.
 * When NOT to use it: on paths that must not fail (writeback of
 *	acknowledged data: use mempool), and on latency-critical paths where a
 *	stall of timeout_ms costs more than an error (use enomem).
 */
#include <errno.h>
#include <stdlib.h>

#include <pressurefs/policy.h>

#define NS_PER_MS 1000000ull

enum mayfail_param {
	MAYFAIL_TIMEOUT_MS,
	MAYFAIL_WAIT_MS,
	MAYFAIL_RECLAIM_KB,
};

static const struct pfs_policy_param mayfail_params[] = {
	[MAYFAIL_TIMEOUT_MS] = {"timeout_ms", 1000, 0, 3600000,
				"longest one allocation keeps trying before it fails, ms"},
	[MAYFAIL_WAIT_MS] = {"wait_ms", 10, 1, 60000,
			     "longest wait for a free between attempts, ms"},
	[MAYFAIL_RECLAIM_KB] = {"reclaim_kb", 1024, 0, 16777216,
				"how much each attempt asks the reclaimer to free, KiB "
				"(at least the request)"},
	{NULL, 0, 0, 0, NULL},
};

/* Read-only after init: decide() runs on many threads at once. */
struct mayfail_state {
	uint64_t timeout_ns;
	uint64_t wait_ns;
	size_t reclaim_bytes;
	struct pfs_policy_host host;
};

static int mayfail_init(void **state, const long long *values, const char *const *strings,
			const struct pfs_policy_host *host, char *err, size_t errlen)
{
	struct mayfail_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->timeout_ns = (uint64_t)values[MAYFAIL_TIMEOUT_MS] * NS_PER_MS;
	s->wait_ns = (uint64_t)values[MAYFAIL_WAIT_MS] * NS_PER_MS;
	s->reclaim_bytes = (size_t)values[MAYFAIL_RECLAIM_KB] * 1024u;
	if (host)
		s->host = *host;
	*state = s;
	return 0;
}

static void mayfail_fini(void *state)
{
	free(state);
}

static struct pfs_decision mayfail_decide(void *state, const struct pfs_failure *f)
{
	const struct mayfail_state *s = state;
	uint64_t wait = s->wait_ns;

	if (f->stalled_ns >= s->timeout_ns)
		return (struct pfs_decision){.verdict = PFS_VERDICT_FAIL};
	if (s->host.reclaim) {
		size_t want = s->reclaim_bytes > f->size ? s->reclaim_bytes : f->size;

		s->host.reclaim(s->host.host_data, want, f->flags & PFS_ALLOC_NOFS);
	}
	/* The wait never carries the call past its deadline by much. */
	if (wait > s->timeout_ns - f->stalled_ns)
		wait = s->timeout_ns - f->stalled_ns;
	return (struct pfs_decision){
		.verdict = f->caller_can_retry ? PFS_VERDICT_RETRY : PFS_VERDICT_LOOP,
		.wait_ns = wait,
	};
}

__attribute__((visibility("default"))) const struct pfs_policy pfs_policy_v1 = {
	.abi_version = PFS_POLICY_ABI_VERSION,
	.struct_size = sizeof(struct pfs_policy),
	.name = "retry_mayfail",
	.summary = "reclaim hard and wait for writeback, for at most timeout_ms; then ENOMEM "
		   "(__GFP_RETRY_MAYFAIL)",
	.params = mayfail_params,
	.init = mayfail_init,
	.fini = mayfail_fini,
	.decide = mayfail_decide,
};
