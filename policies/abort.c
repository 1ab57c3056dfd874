/*
 * abort: log what failed and abort() the daemon.
 *
 * What the allocator does: logs the failed allocation (site, size, cause,
 *	budget) at ERR, then calls abort(). The daemon dies with SIGABRT (and
 *	leaves a core where the system keeps them), the mount answers ENOTCONN.
 * Can it fail: it never returns.
 * What the caller owes: nothing; it never sees the failure. The user owes a
 *	backup: every dirty page not yet written back is lost.
 * When NOT to use it: on anything that holds data someone cares about. It
 *	exists to measure what a crash on memory exhaustion costs (data lost,
 *	what fsync promised and did not keep), the "panic" end of the debate.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <pressurefs/policy.h>

struct abort_state {
	struct pfs_policy_host host;
};

static int abort_init(void **state, const long long *values, const char *const *strings,
		      const struct pfs_policy_host *host, char *err, size_t errlen)
{
	struct abort_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	if (host)
		s->host = *host;
	*state = s;
	return 0;
}

static void abort_fini(void *state)
{
	free(state);
}

static struct pfs_decision abort_decide(void *state, const struct pfs_failure *f)
{
	static const char fmt[] = "pressurefs: allocation failed: site %s, %zu bytes, cause %s "
				  "(live %llu, limit %llu, balloon %llu); policy abort: aborting";
	const struct abort_state *s = state;
	const char *cause = pfs_cause_name(f->cause);

	if (s && s->host.log) {
		s->host.log(s->host.host_data, PFS_LOG_ERR, fmt, f->site, f->size, cause,
			    (unsigned long long)f->live, (unsigned long long)f->mem_limit,
			    (unsigned long long)f->balloon);
	} else {
		fprintf(stderr, fmt, f->site, f->size, cause, (unsigned long long)f->live,
			(unsigned long long)f->mem_limit, (unsigned long long)f->balloon);
		fputc('\n', stderr);
		fflush(stderr);
	}
	return (struct pfs_decision){.verdict = PFS_VERDICT_ABORT};
}

__attribute__((visibility("default"))) const struct pfs_policy pfs_policy_v1 = {
	.abi_version = PFS_POLICY_ABI_VERSION,
	.struct_size = sizeof(struct pfs_policy),
	.name = "abort",
	.summary = "log the failed allocation (site, size, budget) and abort() the daemon",
	.params = NULL,
	.init = abort_init,
	.fini = abort_fini,
	.decide = abort_decide,
};
