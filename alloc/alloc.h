/*
 * pressurefs allocator: the one entry point for every buffer the daemon
 * allocates for its own work.
 *
 * Each call names its site, so that fault injection, statistics and policies
 * can tell page-cache pages from inode records. Memory is charged against a
 * budget (mem_limit minus a balloon held by a simulated competitor); when an
 * attempt fails, the policy plugin (see pressurefs/policy.h) gives the
 * verdict and the allocator carries it out.
 *
 * This folder knows nothing of FUSE or of the filesystem.
 *
 * Fast path (budget on, injection off): thread-local statistics and a small
 * per-thread stock of pre-charged budget, as memcg does per CPU, so that an
 * allocation costs one malloc() and a few plain stores. The shared budget
 * counter is touched only when a thread's stock runs dry or overflows.
 * alloc_malloc() and alloc_free() are inline (alloc_fast.h) for that reason;
 * their symbols exist too.
 */
#ifndef PFS_ALLOC_H
#define PFS_ALLOC_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pressurefs/policy.h>

/*
 * Allocation sites. The names are stable: they appear in mount options
 * (fail_sites=), in statistics and in logs. Append new sites before
 * ALLOC_SITE_COUNT; never reorder.
 */
#define ALLOC_SITES(X)                                                                             \
	X(CACHE_PAGE, cache_page, "page-cache pages holding file data")                            \
	X(INODE, inode, "inode records")                                                           \
	X(HANDLE, handle, "open-file handle records")                                              \
	X(WRITEBACK, writeback, "buffers used while writing dirty pages back")                     \
	X(READDIR, readdir, "directory listing buffers")                                           \
	X(REQUEST, request, "per-request buffers (read replies, names, xattrs)")                   \
	X(OTHER, other, "everything else (control files, bookkeeping)")

enum alloc_site {
#define ALLOC_SITE_ENUM(upper, lower, help) ALLOC_SITE_##upper,
	ALLOC_SITES(ALLOC_SITE_ENUM)
#undef ALLOC_SITE_ENUM
		ALLOC_SITE_COUNT
};

/* "cache_page", ...; "?" for an out-of-range value. */
const char *alloc_site_name(enum alloc_site site);
const char *alloc_site_help(enum alloc_site site);
/* Parse one site name. Returns 0 or -EINVAL. */
int alloc_site_parse(const char *name, enum alloc_site *site);
/*
 * Parse a comma list of site names ("cache_page,writeback"; "all" or "" means
 * every site) into a bit mask (1u << site). Returns 0 or -EINVAL, with the
 * offending name copied to bad (if bad_len > 0).
 */
int alloc_site_mask_parse(const char *list, unsigned *mask, char *bad, size_t bad_len);
/* Format a mask back as a comma list ("all" for every site). */
void alloc_site_mask_format(unsigned mask, char *buf, size_t len);

/*
 * Allocation flags.
 *
 * ALLOC_NOFS: the caller holds filesystem locks. The allocator may still
 *	reclaim, but only in a way that cannot wait on those locks (GFP_NOFS).
 *	Every allocation made under an inode or cache lock passes it.
 * ALLOC_ZERO: zero the memory.
 * ALLOC_NORETRY: fail fast; do not reclaim, do not ask the policy, do not
 *	loop. For opportunistic allocations (read-ahead) whose failure costs
 *	nothing, and for allocations under locks that even reclaim's frees
 *	must not meet (an inode-table shard lock). Still counted as a
 *	failure in the statistics.
 *
 * ALLOC_BYPASS_OK: the caller can do without the memory: it can write its
 *	data straight to the backing store instead of into the block it asks
 *	for. Only alloc_try() reports a BYPASS verdict (NULL, *err =
 *	ALLOC_EBYPASS); every other call, and every caller without this
 *	flag, takes BYPASS as FAIL.
 *
 * Without ALLOC_NORETRY, an attempt refused by the budget first runs direct
 * reclaim (the reclaimer's no-fs mode, whatever the caller's flags: drop
 * clean pages, at most wake writeback, never block) and tries once more;
 * the policy is asked only if that fails too, as the kernel reclaims
 * before its failure path. Injected failures skip it (see alloc/reclaim.c).
 */
#define ALLOC_NOFS	PFS_ALLOC_NOFS
#define ALLOC_ZERO	0x2u
#define ALLOC_NORETRY	0x4u
#define ALLOC_BYPASS_OK 0x8u

/* alloc_try()'s *err for a BYPASS verdict to an ALLOC_BYPASS_OK caller:
 * "write elsewhere". No other path of the allocator returns it. */
#define ALLOC_EBYPASS (-EXDEV)

struct alloc;

struct alloc_config {
	uint64_t mem_limit; /* bytes, 0 = no limit */
	uint64_t balloon;   /* bytes held by the simulated competitor */
	/*
	 * Per-thread budget stock in bytes: how much budget a thread may
	 * pre-charge so that most allocations touch no shared cache line (a
	 * thread holds up to twice this; with a limit, all threads together
	 * hold at most 1/16 of mem_limit - balloon, see budget.c).
	 * 0 = charge the shared counter on every call (exact peaks, slower).
	 * Never lets usage pass the limit: stock is charged before it is used.
	 */
	size_t stock_bytes;
	/* Where the allocator logs (stall, abort). NULL = stderr. */
	const struct pfs_policy_host *log_host;
};

#define ALLOC_DEFAULT_STOCK_BYTES (64u * 1024u)

/* Returns NULL (errno set) if the allocator itself cannot be set up.
 * config NULL: no limit, no balloon, ALLOC_DEFAULT_STOCK_BYTES, stderr.
 * stock_bytes is capped at 1 GiB. */
struct alloc *alloc_create(const struct alloc_config *config);
/* All memory must have been freed; leaked bytes are reported on stderr. */
void alloc_destroy(struct alloc *a);

/*
 * Allocate size bytes at site.
 *
 * Returns the memory, or NULL when the policy's verdict was to fail (errno is
 * ENOMEM). Under a RETRY verdict the allocator itself backs off and tries
 * again, with no-fs reclaim if ALLOC_NOFS is set. Under LOOP it does not
 * return until it succeeds. Under ABORT it does not return.
 */
inline void *alloc_malloc(struct alloc *a, enum alloc_site site, size_t size, unsigned flags);

/* Grow or shrink a block from alloc_malloc (same site). NULL on failure,
 * the old block untouched. ptr may be NULL. Only the growth is charged; a
 * block moved to another site is charged there whole and uncharged from its
 * old site once the move succeeds. Counts as one call. */
void *alloc_realloc(struct alloc *a, enum alloc_site site, void *ptr, size_t size, unsigned flags);

/* Free a block from alloc_malloc/alloc_realloc/alloc_try. NULL is a no-op.
 * Any thread may free any block. A pointer that is not a live block of the
 * allocator (double free, foreign pointer) is reported and abort()s. */
inline void alloc_free(struct alloc *a, void *ptr);

/* Bytes the caller asked for when ptr was allocated. */
size_t alloc_size(const void *ptr);

/* String helpers, charged like any allocation. */
char *alloc_strdup(struct alloc *a, enum alloc_site site, const char *s, unsigned flags);

/*
 * The caller-retry protocol (the `retry` policy's home):
 *
 *	struct alloc_retry retry = ALLOC_RETRY_INIT;
 *	int err;
 *  again:
 *	lock(inode);
 *	page = alloc_try(a, ALLOC_SITE_CACHE_PAGE, size, ALLOC_NOFS, &retry, &err);
 *	if (!page) {
 *		unlock(inode);
 *		if (err == -EAGAIN && alloc_retry_wait(a, &retry) == 0)
 *			goto again;		// resume where we stopped
 *		return -ENOMEM;
 *	}
 *
 * alloc_try() returns the memory, or NULL with *err = -EAGAIN (policy said
 * RETRY: drop locks, call alloc_retry_wait(), then try again), -ENOMEM
 * (policy said FAIL) or ALLOC_EBYPASS (policy said BYPASS and flags hold
 * ALLOC_BYPASS_OK: do without the memory; the call is finished). LOOP
 * and ABORT verdicts behave as in alloc_malloc(). alloc_retry_wait() runs
 * the reclaimer with blocking allowed, sleeps the policy's back-off (a
 * free ends it early), counts a caller retry and returns 0; it returns
 * -ENOMEM if the last verdict was not RETRY.
 * The struct carries the attempt count and stall clock across attempts.
 */
struct alloc_retry {
	unsigned attempt;
	uint64_t first_fail_ns; /* 0 until the first failure */
	uint64_t last_asked_ns; /* stalled_ns at the last decision */
	uint64_t wait_ns;	/* back-off the policy asked for */
	enum alloc_site site;
	int verdict; /* last pfs_verdict, -1 = none */
	size_t size; /* bytes asked for: what alloc_retry_wait() reclaims */
};
#define ALLOC_RETRY_INIT                                                                           \
	{                                                                                          \
		.verdict = -1                                                                      \
	}

void *alloc_try(struct alloc *a, enum alloc_site site, size_t size, unsigned flags,
		struct alloc_retry *retry, int *err);
int alloc_retry_wait(struct alloc *a, struct alloc_retry *retry);
/*
 * Tell the allocator that a call which used alloc_try() is finished (it
 * succeeded, or the caller gave up): records its stall time in the
 * statistics. alloc_try() calls it itself on success; a caller that gives
 * up after -EAGAIN without calling alloc_retry_wait() calls it.
 */
void alloc_retry_done(struct alloc *a, struct alloc_retry *retry, bool succeeded);

/* ---- budget ---- */

/* Change the limit / balloon at run time. Waiters are woken when room grows.
 * Lowering below current use is allowed: new allocations fail until frees
 * and reclaim bring use back under. */
void alloc_set_mem_limit(struct alloc *a, uint64_t bytes);
uint64_t alloc_mem_limit(const struct alloc *a);
void alloc_set_balloon(struct alloc *a, uint64_t bytes);
uint64_t alloc_balloon(const struct alloc *a);
/* Bytes charged to the budget now: live bytes plus per-thread stock, which
 * is at most 2 * stock_bytes per thread and, with a limit, at most 1/16 of
 * mem_limit - balloon for all threads together (budget.c). A thread's stock
 * goes back at its exit. */
uint64_t alloc_charged(const struct alloc *a);
/* Bytes live now, exact when no allocation is in flight. */
uint64_t alloc_live(const struct alloc *a);

/* ---- reclaim ---- */

/*
 * The reclaimer a cache registers. Asked to free about `want` bytes.
 * flags & ALLOC_NOFS: called from inside an allocation whose caller may hold
 * filesystem locks: use trylock only, never wait. Without it: blocking on
 * filesystem locks and doing I/O (writeback) is allowed.
 * The allocator's direct reclaim (before the policy is asked) calls it
 * with ALLOC_NOFS.
 * Returns how many bytes it freed (an estimate is fine; 0 when it freed
 * nothing, so that the allocator does not try again in vain).
 */
typedef size_t (*alloc_reclaim_fn)(void *data, size_t want, unsigned flags);
/* One reclaimer per allocator; NULL removes it. */
void alloc_set_reclaimer(struct alloc *a, alloc_reclaim_fn fn, void *data);
/* Run the reclaimer now (what drop_caches-like callers and retry use). */
size_t alloc_reclaim(struct alloc *a, size_t want, unsigned flags);

/*
 * Wait until memory is freed, the budget grows, or timeout_ns passes.
 * Returns 0 when woken by such an event, -ETIMEDOUT otherwise.
 */
int alloc_wait_for_memory(struct alloc *a, uint64_t timeout_ns);

/* ---- policy ---- */

/*
 * A policy's reserve (the RESERVED verdict, see pressurefs/policy.h):
 * count elements of elem_size bytes, malloc'ed and charged to the budget
 * now, all or nothing (NULL and errno ENOMEM when the budget or malloc has
 * no room; EINVAL for a zero or absurd size). Never reclaims or waits.
 * An element handed out by a RESERVED verdict returns to the reserve when
 * freed. alloc_reserve_destroy() frees the elements on the list and
 * uncharges them; those still out are freed and uncharged as they come
 * back. The struct itself lives until alloc_destroy(), so that a verdict
 * naming a destroyed reserve is safe (it is served no element). Reserve
 * bytes count in alloc_charged(); handed-out elements in alloc_live().
 */
struct pfs_reserve *alloc_reserve_create(struct alloc *a, size_t elem_size, unsigned count);
void alloc_reserve_destroy(struct alloc *a, struct pfs_reserve *r);
size_t alloc_reserve_elem_size(const struct pfs_reserve *r);

/*
 * Install a policy (ops and the state its init() made). Takes effect for the
 * next failed attempt; the previous one is kept until alloc_destroy() (a
 * thread may still be asking it), and its fini() is the caller's job then
 * (the loader owns plugin lifetimes). ops NULL = the built-in fail-at-once.
 * It does not call ops->install()/uninstall(): the host does, around this
 * call, since only it knows whether a failed install keeps the old policy.
 */
void alloc_set_policy(struct alloc *a, const struct pfs_policy *ops, void *state);
const struct pfs_policy *alloc_policy(const struct alloc *a);

/* ---- fault injection (the Linux fault-injection knobs) ---- */

/*
 * probability: percent of eligible calls that fail (0-100).
 * interval: only every interval-th eligible call may fail (1 = each).
 * times: how many failures at most; -1 = no limit.
 * space: bytes that pass untouched before failures start (decremented by
 *	each call's size, as the kernel's "space" knob).
 * sites: bit mask of sites that may fail (0 = none; see alloc_site_mask_parse).
 * seed: one seed and one call sequence give one sequence of failures.
 * verbose: log each injected failure.
 */
struct alloc_inject {
	unsigned probability;
	unsigned long interval;
	long long times;
	unsigned long long space;
	unsigned sites;
	uint64_t seed;
	bool verbose;
};
#define ALLOC_SITES_ALL ((1u << ALLOC_SITE_COUNT) - 1u)
#define ALLOC_INJECT_OFF                                                                           \
	{                                                                                          \
		.probability = 0, .interval = 1, .times = -1, .space = 0,                          \
		.sites = ALLOC_SITES_ALL, .seed = 1                                                \
	}

/* Replace the injection settings (and restart the seeded sequence). */
void alloc_set_inject(struct alloc *a, const struct alloc_inject *inject);
void alloc_get_inject(const struct alloc *a, struct alloc_inject *inject);

/*
 * Countdown for tests: the nth attempt from now fails (n >= 1; cause
 * "injected"), then `more` further attempts fail too (0 = a single, transient failure;
 * UINT64_MAX = every later attempt: persistent). Counts attempts at every
 * site. n = 0 disarms. Independent of the probability knobs.
 */
void alloc_fail_nth(struct alloc *a, uint64_t n, uint64_t more);
/* True if the armed countdown has fired at least once since it was set. */
bool alloc_fail_nth_fired(const struct alloc *a);

/* ---- statistics ---- */

/*
 * The counters, one table: name, kind, meaning. kind is SUM (summed across
 * threads and sites), MAX (the largest seen) or GAUGE (a current value).
 *
 * calls counts each call once (alloc_try() calls resumed through
 * alloc_retry_wait() are one call); budget/injected/system failures count
 * attempts.
 *
 * peak, honestly: the total peak is the high-water mark of alloc_charged().
 * With stock_bytes = 0 that is exact. With a stock it may exceed the true
 * peak of live bytes by the unused stock of the threads (see
 * alloc_charged()). Per-site peaks are exact with stock_bytes = 0
 * (shared per-site counters, updated on every call); with a stock they are
 * samples of the site's live bytes taken whenever a thread's stock refills
 * from the shared counter and at every alloc_stats_read(), so they are never
 * below the live bytes seen at a read but may miss a short spike between
 * two samples.
 */
#define ALLOC_STATS(X)                                                                             \
	X(calls, SUM, "allocation calls")                                                          \
	X(bytes, SUM, "bytes handed out by successful calls")                                      \
	X(frees, SUM, "blocks freed")                                                              \
	X(live, GAUGE, "bytes allocated and not yet freed")                                        \
	X(peak, MAX, "highest live bytes seen")                                                    \
	X(budget_failures, SUM, "attempts refused by mem_limit - balloon")                         \
	X(reclaimed, SUM, "calls saved by direct reclaim, the policy not asked")                   \
	X(reclaimed_bytes, SUM, "bytes freed by direct reclaim (clean pages)")                     \
	X(injected_failures, SUM, "attempts failed by fault injection")                            \
	X(system_failures, SUM, "attempts where malloc itself returned NULL")                      \
	X(loops, SUM, "in-allocator retries (LOOP verdicts)")                                      \
	X(caller_retries, SUM, "retries by callers after a RETRY verdict")                         \
	X(enomem, SUM, "calls that returned failure to the caller")                                \
	X(aborts, SUM, "ABORT verdicts")                                                           \
	X(stalls, SUM, "calls that failed at least once before they finished")                     \
	X(stall_ns_total, SUM, "time spent in such calls, nanoseconds")                            \
	X(stall_ns_max, MAX, "longest such call, nanoseconds")                                     \
	X(reserved, SUM, "attempts served from a policy's reserve (RESERVED verdicts)")            \
	X(bypassed, SUM, "calls told to do without the memory (BYPASS verdicts)")

enum alloc_stat {
#define ALLOC_STAT_ENUM(name, kind, help) ALLOC_STAT_##name,
	ALLOC_STATS(ALLOC_STAT_ENUM)
#undef ALLOC_STAT_ENUM
		ALLOC_STAT_COUNT
};

/* Stall histogram buckets: [0] < 1 ms, [i] < 2^i ms, last: everything longer. */
#define ALLOC_STALL_BUCKETS 16

struct alloc_stats {
	uint64_t site[ALLOC_SITE_COUNT][ALLOC_STAT_COUNT];
	uint64_t total[ALLOC_STAT_COUNT];
	uint64_t stall_hist[ALLOC_STALL_BUCKETS];
	uint64_t mem_limit, balloon, charged;
};

const char *alloc_stat_name(enum alloc_stat stat);
const char *alloc_stat_help(enum alloc_stat stat);
/* A snapshot; exact when no allocation is in flight. */
void alloc_stats_read(struct alloc *a, struct alloc_stats *out);
/*
 * The snapshot as one JSON object (policy "none" when none is installed):
 * {"mem_limit":..,"balloon":..,"charged":..,"policy":"retry",
 *  "total":{"calls":..,...},"sites":{"cache_page":{...},...},
 *  "stall_histogram_ms":{"<1":..,"<2":..,...}}
 * Writes at most len bytes (NUL included) like snprintf and returns the
 * length it needed, NUL not included (as snprintf: buf NULL, len 0 asks).
 */
size_t alloc_stats_json(struct alloc *a, char *buf, size_t len);
/*
 * The part of that object a caller can embed in its own JSON object:
 * "total":{...},"sites":{...},"stall_histogram_ms":{...} (no braces around
 * it), from a snapshot the caller read. snprintf-like, as above.
 */
size_t alloc_stats_json_members(const struct alloc_stats *st, char *buf, size_t len);
/* Zero the SUM and MAX counters (not live). */
void alloc_stats_reset(struct alloc *a);

/* The inline bodies of alloc_malloc() and alloc_free(). */
#include "alloc_fast.h"

#endif /* PFS_ALLOC_H */
