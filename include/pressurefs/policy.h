/*
 * pressurefs policy plugin interface.
 *
 * A policy decides what happens after an allocation attempt inside pressurefs
 * fails (the memory budget is exhausted, a fault was injected, or malloc itself
 * returned NULL). It is a shared object that exports one symbol,
 * PFS_POLICY_SYMBOL, of type `const struct pfs_policy`. The daemon loads it by
 * name (`-o policy=retry`, looked up in the plugin directory) or by path
 * (`-o policy=/path/to/mine.so`), checks abi_version and refuses a mismatch
 * with a clear message.
 *
 * A policy knows nothing of the filesystem or of the allocator beyond this
 * header: it is asked for a verdict on one failed attempt and returns it.
 * The allocator carries the verdict out:
 *
 * PFS_VERDICT_FAIL
 *	The allocation returns failure now; the caller turns it into ENOMEM (a
 *	short write if part of a write() was already cached).
 *	Can fail: yes, always. Caller owes: a clean error path.
 *
 * PFS_VERDICT_LOOP
 *	The allocator keeps the caller inside: it runs the reclaimer (in "no-fs"
 *	mode when the caller holds filesystem locks), waits up to wait_ns for a
 *	free or a budget change, and tries again. The policy is asked again after
 *	each further failed attempt.
 *	Can fail: no, as long as the policy keeps answering LOOP. Caller owes
 *	nothing, but must not hold a lock that the memory it waits for needs:
 *	otherwise this is a hang.
 *
 * PFS_VERDICT_RETRY
 *	The allocator returns "try again" to a caller that said it can retry:
 *	the caller drops its locks, reclaims (blocking allowed now), sleeps
 *	wait_ns (woken early by a free) and calls again. A caller that cannot
 *	drop locks gets the same treatment inside the allocator, with no-fs
 *	reclaim. The policy bounds this by answering FAIL after enough attempts.
 *	Can fail: yes, after the policy gives up. Caller owes: dropping locks
 *	and state it must revalidate, then resuming where it stopped.
 *
 * PFS_VERDICT_ABORT
 *	The allocator logs the failure and calls abort(): the daemon dies, the
 *	mount answers ENOTCONN, and everything not yet written back is lost.
 *	Can fail: it never returns. Use it only to find out what a crash costs.
 */
#ifndef PRESSUREFS_POLICY_H
#define PRESSUREFS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bump on any incompatible change to the structures below. */
#define PFS_POLICY_ABI_VERSION 1u

/* The symbol every plugin exports: `const struct pfs_policy pfs_policy_v1`. */
#define PFS_POLICY_SYMBOL "pfs_policy_v1"

enum pfs_verdict {
	PFS_VERDICT_FAIL = 0,
	PFS_VERDICT_LOOP = 1,
	PFS_VERDICT_RETRY = 2,
	PFS_VERDICT_ABORT = 3,
};

/* Why the attempt failed. */
enum pfs_cause {
	PFS_CAUSE_BUDGET = 1,	/* it would pass mem_limit - balloon */
	PFS_CAUSE_INJECTED = 2, /* fault injection said so */
	PFS_CAUSE_SYSTEM = 3,	/* malloc() itself returned NULL */
};

/* Allocation flags a policy can see (the allocator's own flags, public). */
#define PFS_ALLOC_NOFS 0x1u /* caller holds fs locks: reclaim must not block on them */

/* One failed attempt, as the policy sees it. */
struct pfs_failure {
	const char *site;	  /* stable lowercase site name: "cache_page", ... */
	unsigned site_id;	  /* index of the site, for tables */
	size_t size;		  /* bytes asked for */
	unsigned flags;		  /* PFS_ALLOC_* */
	enum pfs_cause cause;	  /* why this attempt failed */
	unsigned attempt;	  /* failed attempts of this call before this one (0 = first) */
	int caller_can_retry;	  /* the caller can drop its locks and call again */
	uint64_t stalled_ns;	  /* time since this call's first failed attempt */
	uint64_t prev_stalled_ns; /* stalled_ns when the policy was last asked for this call */
	uint64_t mem_limit;	  /* budget in bytes, 0 = none */
	uint64_t balloon;	  /* bytes held by the simulated competitor */
	uint64_t live;		  /* bytes allocated through the allocator now */
};

struct pfs_decision {
	enum pfs_verdict verdict;
	/* LOOP: longest wait for a free before the next attempt.
	 * RETRY: back-off before the next attempt (a free ends it early). */
	uint64_t wait_ns;
};

/* A numeric argument of the policy, given in the mount option string
 * (`policy=retry,retries=8,backoff_ms=2`). The loader parses and range-checks
 * the values; init() receives them in table order. */
struct pfs_policy_param {
	const char *name; /* NULL ends the table */
	long long def;
	long long min;
	long long max;
	const char *help;
};

enum pfs_log_level {
	PFS_LOG_ERR = 3,
	PFS_LOG_WARNING = 4,
	PFS_LOG_INFO = 6,
	PFS_LOG_DEBUG = 7,
};

/* Services the host gives a policy. */
struct pfs_policy_host {
	void (*log)(void *host_data, enum pfs_log_level level, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));
	void *host_data;
};

struct pfs_policy {
	uint32_t abi_version;		       /* PFS_POLICY_ABI_VERSION */
	uint32_t struct_size;		       /* sizeof(struct pfs_policy) */
	const char *name;		       /* short lowercase name, as in policy=NAME */
	const char *summary;		       /* one line for --help and error messages */
	const struct pfs_policy_param *params; /* may be NULL: no arguments */

	/*
	 * Make an instance. `values` holds one value per entry of params, in
	 * order, already range-checked. Store per-instance state in *state.
	 * Return 0 or a negative errno. May be NULL (no state).
	 */
	int (*init)(void **state, const long long *values, const struct pfs_policy_host *host);

	/* Free the instance. May be NULL. */
	void (*fini)(void *state);

	/*
	 * The verdict on one failed attempt. Called from any thread, possibly
	 * many at once, with allocator locks not held; it must not allocate
	 * through pressurefs and should return quickly.
	 */
	struct pfs_decision (*decide)(void *state, const struct pfs_failure *failure);
};

#ifdef __cplusplus
}
#endif

#endif /* PRESSUREFS_POLICY_H */
