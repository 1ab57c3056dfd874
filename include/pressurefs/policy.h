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
 *
 * PFS_VERDICT_RESERVED
 *	Hand the caller an element of decision.reserve: memory the host
 *	allocated and charged to the budget when the policy made the reserve
 *	(host->reserve_create(), at install). Taking it needs no budget, no
 *	malloc() and meets no fault injection, so it works when malloc itself
 *	fails. The caller's free gives the element back to the reserve, not
 *	to the system, and wakes a caller sleeping for one (the kernel's
 *	mempool_alloc()/mempool_free()). When every element is out, the caller
 *	sleeps up to wait_ns for one to come back or for memory, then the
 *	allocator tries from the start and the policy is asked again. A
 *	request larger than the reserve's elements, or a reserve destroyed
 *	meanwhile, is taken as FAIL: answer RESERVED only for what fits.
 *	Can fail: not while the policy answers RESERVED for what fits; the
 *	caller may sleep. Caller owes: freeing the element soon and
 *	unconditionally (the next caller sleeps until it does), and never
 *	sleeping on a reserve while holding an element another taker needs.
 *
 * PFS_VERDICT_BYPASS
 *	Do without the memory: a caller that said it can write straight to
 *	the backing store (a write that needs a new cache page) does so, and
 *	answers its write only after that write reached the backing file; any
 *	other caller takes it as FAIL. Nothing is charged, nothing waits.
 *	Can fail: for a caller that cannot bypass, yes, as FAIL; for one that
 *	can, the memory is never handed out but the operation goes on without
 *	it (its own I/O error is then its only failure). Caller owes: the
 *	bypass path, or a clean error path as for FAIL.
 *
 * ABI 4 made reserves real memory: reserve_create()/reserve_destroy() and
 * pfs_decision.reserve replace ABI 2's reserve_charge()/reserve_uncharge(),
 * which charged the budget for memory nobody held.
 * ABI 3 added BYPASS.
 * ABI 2 added RESERVED, string arguments, install()/uninstall(), the
 * host's reserve, reclaim, wait, dirty-data and shutdown services, and an
 * error line from init(). A plugin built for an older ABI is refused by
 * version.
 */
#ifndef PRESSUREFS_POLICY_H
#define PRESSUREFS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bump on any incompatible change to the structures below. */
#define PFS_POLICY_ABI_VERSION 4u

/*
 * The symbol every plugin exports: `const struct pfs_policy pfs_policy_v1`.
 * Its name stays the same across ABI versions on purpose: a stale plugin
 * must still be found, so that the loader can refuse it by abi_version with
 * a message that says "rebuild", not "not a pressurefs policy".
 */
#define PFS_POLICY_SYMBOL "pfs_policy_v1"

enum pfs_verdict {
	PFS_VERDICT_FAIL = 0,
	PFS_VERDICT_LOOP = 1,
	PFS_VERDICT_RETRY = 2,
	PFS_VERDICT_ABORT = 3,
	PFS_VERDICT_RESERVED = 4,
	PFS_VERDICT_BYPASS = 5,
};

/* Why the attempt failed. */
enum pfs_cause {
	PFS_CAUSE_BUDGET = 1,	/* it would pass mem_limit - balloon */
	PFS_CAUSE_INJECTED = 2, /* fault injection said so */
	PFS_CAUSE_SYSTEM = 3,	/* malloc() itself returned NULL */
};

/* The cause's name in log lines and the stats JSON; inline, so that it is
 * no symbol of the ABI. */
static inline const char *pfs_cause_name(enum pfs_cause cause)
{
	switch (cause) {
	case PFS_CAUSE_BUDGET:
		return "budget";
	case PFS_CAUSE_INJECTED:
		return "injected";
	case PFS_CAUSE_SYSTEM:
		return "system";
	}
	return "unknown";
}

/* Allocation flags a policy can see (the allocator's own flags, public). */
#define PFS_ALLOC_NOFS 0x1u /* caller holds fs locks: reclaim must not block on them */

/* The allocator's site names (pfs_failure.site), in site_id order: for a
 * policy that takes a site as an argument. */
#define PFS_SITE_NAMES "cache_page", "inode", "handle", "writeback", "readdir", "request", "other"
#define PFS_SITE_LIST  "cache_page, inode, handle, writeback, readdir, request, other"

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

/* Memory a host holds for a policy (host->reserve_create); opaque. */
struct pfs_reserve;

struct pfs_decision {
	enum pfs_verdict verdict;
	/* LOOP: longest wait for a free before the next attempt.
	 * RETRY: back-off before the next attempt (a free ends it early).
	 * RESERVED: longest sleep for an element when all are out. */
	uint64_t wait_ns;
	/* RESERVED: the reserve to take an element from. */
	struct pfs_reserve *reserve;
};

enum pfs_param_type {
	PFS_PARAM_INT = 0,    /* a decimal integer in min..max */
	PFS_PARAM_STRING = 1, /* any non-empty text without commas; init() checks it */
};

/* An argument of the policy, given in the mount option string
 * (`policy=retry,retries=8,backoff_ms=2`). The loader parses and range-checks
 * integers; init() receives every value in table order. */
struct pfs_policy_param {
	const char *name; /* NULL ends the table */
	long long def;	  /* PFS_PARAM_INT */
	long long min;
	long long max;
	const char *help;
	enum pfs_param_type type;
	const char *def_str; /* PFS_PARAM_STRING: the default text (may be "") */
};

enum pfs_log_level {
	PFS_LOG_ERR = 3,
	PFS_LOG_WARNING = 4,
	PFS_LOG_INFO = 6,
	PFS_LOG_DEBUG = 7,
};

/*
 * Services the host gives a policy. Any member but log may be NULL: a host
 * that cannot offer the service (a unit test, a tool). A policy that needs
 * one fails its install() with -EOPNOTSUPP rather than guessing.
 *
 * reserve_create(elem_size, count): allocate count elements of elem_size
 *	bytes now and charge them to the budget, for RESERVED verdicts. NULL
 *	when the budget or the system has no room (nothing held then). Never
 *	blocks, never reclaims.
 * reserve_destroy(r): give a reserve back: its elements are freed and
 *	uncharged (those still handed out, when they come back). A decision
 *	that names r after this is taken as FAIL, so a decide() racing with
 *	uninstall() stays safe.
 * reclaim(want, flags): run the host's reclaimer for about `want` bytes:
 *	with PFS_ALLOC_NOFS only what cannot wait on filesystem locks (drop
 *	clean pages, wake writeback); without it, writing back and blocking
 *	are allowed. Returns the bytes freed. Pass the failure's flags on:
 *	a caller holding filesystem locks must never be made to wait for them.
 * wait_for_memory(timeout_ns): sleep until memory is freed or the budget
 *	grows, at most timeout_ns. 0 when woken, -ETIMEDOUT otherwise.
 * dirty_bytes(): bytes of acknowledged data not yet written back.
 * page_size(): what one cache page asks the allocator for (its data and
 *	its record): this filesystem's order-0 request (0 if unknown).
 * shutdown(why): shut the mount down: every later write, create and
 *	metadata change fails with EIO until unmount; writeback goes on.
 *	The host logs `why` once; later calls do nothing.
 */
struct pfs_policy_host {
	void (*log)(void *host_data, enum pfs_log_level level, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));
	void *host_data;
	struct pfs_reserve *(*reserve_create)(void *host_data, size_t elem_size, unsigned count);
	void (*reserve_destroy)(void *host_data, struct pfs_reserve *r);
	size_t (*reclaim)(void *host_data, size_t want, unsigned flags);
	int (*wait_for_memory)(void *host_data, uint64_t timeout_ns);
	uint64_t (*dirty_bytes)(void *host_data);
	uint64_t (*page_size)(void *host_data);
	void (*shutdown)(void *host_data, const char *why);
};

struct pfs_policy {
	uint32_t abi_version;		       /* PFS_POLICY_ABI_VERSION */
	uint32_t struct_size;		       /* sizeof(struct pfs_policy) */
	const char *name;		       /* short lowercase name, as in policy=NAME */
	const char *summary;		       /* one line for --help and error messages */
	const struct pfs_policy_param *params; /* may be NULL: no arguments */

	/*
	 * Make an instance. values[i] and strings[i] hold the value of
	 * params[i]: integers in values (range-checked), text in strings
	 * (NULL for integer parameters). The host pointer stays valid until
	 * fini(); the strings do not (copy what you keep). Store per-instance
	 * state in *state. Return 0 or a negative errno; on error, write one
	 * line saying what was wrong and what is accepted into err (errlen may
	 * be 0). May be NULL (no state).
	 */
	int (*init)(void **state, const long long *values, const char *const *strings,
		    const struct pfs_policy_host *host, char *err, size_t errlen);

	/* Free the instance. May be NULL. */
	void (*fini)(void *state);

	/*
	 * The host is about to make this instance the current policy (at mount,
	 * or at a run-time switch, before it stops using the old one). Take
	 * what the policy holds while current (reserves) now. 0, or a negative
	 * errno and the host keeps its old policy (-ENOMEM: the reserve did not
	 * fit). May be NULL.
	 */
	int (*install)(void *state);

	/*
	 * The host no longer uses this instance for new decisions (switched
	 * away, or unmounting). Release what install() took. A thread may still
	 * be inside decide(): that must stay safe, and may answer anything.
	 * May be NULL.
	 */
	void (*uninstall)(void *state);

	/*
	 * The verdict on one failed attempt. Called from any thread, possibly
	 * many at once, with allocator locks not held; it must not allocate
	 * through pressurefs. It may call the host's services; reclaim without
	 * PFS_ALLOC_NOFS and wait_for_memory block, so a policy that calls them
	 * must bound how long.
	 */
	struct pfs_decision (*decide)(void *state, const struct pfs_failure *failure);
};

#ifdef __cplusplus
}
#endif

#endif /* PRESSUREFS_POLICY_H */
