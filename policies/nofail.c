/*
 * nofail: the allocation never fails; the allocator loops until it succeeds.
 *
 * What the allocator does: after every failed attempt it runs the reclaimer
 *	(no-fs when the caller passed ALLOC_NOFS), waits up to wait_ms for a
 *	free or a budget change, and tries again, for as long as it takes.
 *	This is __GFP_NOFAIL: the loop lives in one place, the allocator, where
 *	it can be seen and measured, instead of in every caller.
 * Can it fail: no. The call returns only with memory.
 * What the caller owes: nothing on the error path (there is none), but it
 *	must not hold anything that the memory it waits for depends on.
 *	A caller holding an inode lock while the only reclaimable pages need
 *	that lock to be written back waits forever.
 * When NOT to use it: when the caller can handle ENOMEM (use retry or
 *	enomem), and whenever progress of the rest of the system needs locks
 *	the caller holds. It turns memory pressure into stalls, and a stall
 *	into a hang when nothing else frees memory.
 *
 * Each time the stall of one allocation crosses another multiple of
 * stall_warn_ms it logs a warning, as the kernel's warn_alloc() does for
 * "page allocation stalls".
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>

#include <pressurefs/policy.h>

#define NS_PER_MS 1000000ull

enum nofail_param {
	NOFAIL_STALL_WARN_MS,
	NOFAIL_WAIT_MS,
};

static const struct pfs_policy_param nofail_params[] = {
	[NOFAIL_STALL_WARN_MS] = {"stall_warn_ms", 10000, 1, 86400000,
				  "warn each time one allocation has stalled another this many ms"},
	[NOFAIL_WAIT_MS] = {"wait_ms", 10, 1, 60000,
			    "longest wait for a free before the next attempt, ms"},
	{NULL, 0, 0, 0, NULL},
};

/* Read-only after init: decide() runs on many threads at once. */
struct nofail_state {
	uint64_t stall_warn_ns;
	uint64_t wait_ns;
	struct pfs_policy_host host;
};

static int nofail_init(void **state, const long long *values, const char *const *strings,
		       const struct pfs_policy_host *host, char *err, size_t errlen)
{
	struct nofail_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->stall_warn_ns = (uint64_t)values[NOFAIL_STALL_WARN_MS] * NS_PER_MS;
	s->wait_ns = (uint64_t)values[NOFAIL_WAIT_MS] * NS_PER_MS;
	if (host)
		s->host = *host;
	*state = s;
	return 0;
}

static void nofail_fini(void *state)
{
	free(state);
}

static void nofail_warn(const struct nofail_state *s, const struct pfs_failure *f)
{
	static const char fmt[] = "pressurefs: page allocation stall: site %s, %zu bytes, "
				  "stalled %llu ms, attempt %u (live %llu of limit %llu, "
				  "balloon %llu)";
	unsigned long long ms = (unsigned long long)(f->stalled_ns / NS_PER_MS);

	if (s->host.log) {
		s->host.log(s->host.host_data, PFS_LOG_WARNING, fmt, f->site, f->size, ms,
			    f->attempt, (unsigned long long)f->live,
			    (unsigned long long)f->mem_limit, (unsigned long long)f->balloon);
		return;
	}
	fprintf(stderr, fmt, f->site, f->size, ms, f->attempt, (unsigned long long)f->live,
		(unsigned long long)f->mem_limit, (unsigned long long)f->balloon);
	fputc('\n', stderr);
}

static struct pfs_decision nofail_decide(void *state, const struct pfs_failure *f)
{
	const struct nofail_state *s = state;

	/* One warning per crossed multiple, however often we are asked. */
	if (f->stalled_ns / s->stall_warn_ns > f->prev_stalled_ns / s->stall_warn_ns)
		nofail_warn(s, f);
	return (struct pfs_decision){.verdict = PFS_VERDICT_LOOP, .wait_ns = s->wait_ns};
}

__attribute__((visibility("default"))) const struct pfs_policy pfs_policy_v1 = {
	.abi_version = PFS_POLICY_ABI_VERSION,
	.struct_size = sizeof(struct pfs_policy),
	.name = "nofail",
	.summary = "never fail: reclaim, wait for a free and try again, for as long as it takes",
	.params = nofail_params,
	.init = nofail_init,
	.fini = nofail_fini,
	.decide = nofail_decide,
};
