/*
 * mempool: a reserve per site, filled when the policy is installed; on
 * failure use the reserve, then sleep until memory comes back.
 *
 * What the allocator does: at install (mount, or a switch through
 *	.pressurefs/policy) the policy makes each reserve: elements the size
 *	of one cache page's allocation (host->page_size(): this filesystem's
 *	order-0 request, and the largest block an emergency path asks for; at
 *	most the reserve itself), enough
 *	of them to hold the reserve's bytes, malloc'ed and charged to the
 *	budget now. A switch whose reserves do not fit fails with ENOMEM and
 *	the old policy stays. An allocation at a site with a reserve that
 *	fails (the budget, injection, or malloc itself) is handed an element
 *	(the RESERVED verdict), as mempool_alloc() falls back to its pool, so
 *	it needs no memory at that moment. When every element is out, the
 *	caller sleeps until a free gives one back (wait_ms per round: it also
 *	wakes when the budget has room, and then tries the ordinary way
 *	first), as mempool_alloc() sleeps until mempool_free() refills the
 *	pool. Sites without a reserve fail at once (the general allocator does
 *	not loop: that is the point). Switching away frees the reserves.
 * Can it fail: at a site with a reserve, no: the call sleeps until an
 *	element or the budget has room (a request larger than an element can
 *	never be served from it and fails at once, logged). Elsewhere, yes, at
 *	once, like enomem.
 * What the caller owes: at sites without a reserve, a clean ENOMEM path.
 *	At a site with one: release what it takes soon and unconditionally
 *	(writeback frees its buffer when the pass ends), because the next
 *	caller sleeps until it does; and never wait on a reserve while holding
 *	something the previous taker needs to finish.
 * When NOT to use it: for callers that hold a reserved object
 *	indefinitely, or that take from it in a loop (the pool drains and
 *	everyone sleeps). With a single total reserve (reserve=SIZE) any site
 *	draws from it: writers can exhaust it, and writeback then sleeps like
 *	everyone else until something is freed; per-site reserves
 *	(reserve=writeback:256K) keep writeback's for writeback.
 *
 * reserve=: "SIZE" (one pool shared by every site) or "SITE:SIZE" pieces
 * joined by '+' ("writeback:256K+inode:64K"); SIZE takes K, M or G.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pressurefs/policy.h>

#define NS_PER_MS    1000000ull
#define MEMPOOL_MAX  8 /* pools: at most one per site, plus the total */
#define MEMPOOL_NAME 32
/* The cache's default page size: elements when the host does not say. */
#define MEMPOOL_ELEM_DEFAULT (64u * 1024u)

enum mempool_param {
	MEMPOOL_RESERVE,
	MEMPOOL_WAIT_MS,
};

static const struct pfs_policy_param mempool_params[] = {
	[MEMPOOL_RESERVE] = {.name = "reserve",
			     .type = PFS_PARAM_STRING,
			     .def_str = "writeback:256K",
			     .help = "SIZE (one pool for every site) or SITE:SIZE[+SITE:SIZE...]"},
	[MEMPOOL_WAIT_MS] = {"wait_ms", 10, 1, 60000,
			     "longest sleep for a free before the reserve is tried again, ms"},
	{NULL, 0, 0, 0, NULL},
};

struct mempool_pool {
	char site[MEMPOOL_NAME];	     /* "" = every site (reserve=SIZE); immutable */
	uint64_t target;		     /* bytes, immutable */
	size_t elem;			     /* element size, set at install */
	struct pfs_reserve *_Atomic reserve; /* while installed */
	_Atomic bool warned;		     /* a too-large request was logged */
};

struct mempool_state {
	struct mempool_pool pools[MEMPOOL_MAX];
	unsigned npools;	     /* immutable after init */
	uint64_t wait_ns;	     /* immutable after init */
	struct pfs_policy_host host; /* immutable after init */
	_Atomic bool installed;	     /* between install() and uninstall() */
};

static const char *const mempool_sites[] = {PFS_SITE_NAMES, NULL};

static bool mempool_site_known(const char *name)
{
	for (unsigned i = 0; mempool_sites[i]; i++) {
		if (strcmp(mempool_sites[i], name) == 0)
			return true;
	}
	return false;
}

/* "256K" -> bytes; 0 on a bad or zero size. */
static uint64_t mempool_size_parse(const char *s)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return 0;
	switch (*end) {
	case 'G':
	case 'g':
		v <<= 10;
		/* fall through */
	case 'M':
	case 'm':
		v <<= 10;
		/* fall through */
	case 'K':
	case 'k':
		v <<= 10;
		end++;
		break;
	default:
		break;
	}
	return *end == '\0' && v <= (1ull << 40) ? v : 0;
}

static int mempool_reserve_parse(struct mempool_state *s, const char *text, char *err,
				 size_t errlen)
{
	char copy[256], *save = NULL;

	if (strlen(text) >= sizeof(copy)) {
		snprintf(err, errlen, "reserve=%.40s...: too long", text);
		return -EINVAL;
	}
	snprintf(copy, sizeof(copy), "%s", text);
	for (char *piece = strtok_r(copy, "+", &save); piece; piece = strtok_r(NULL, "+", &save)) {
		char *colon = strchr(piece, ':');
		struct mempool_pool *p;
		const char *size = colon ? colon + 1 : piece;

		if (s->npools == MEMPOOL_MAX) {
			snprintf(err, errlen, "reserve=%s: more than %d pools", text, MEMPOOL_MAX);
			return -EINVAL;
		}
		p = &s->pools[s->npools];
		if (colon) {
			*colon = '\0';
			if (!mempool_site_known(piece)) {
				snprintf(err, errlen,
					 "reserve=%s: unknown site '%.32s' (sites: " PFS_SITE_LIST
					 ")",
					 text, piece);
				return -EINVAL;
			}
			snprintf(p->site, sizeof(p->site), "%s", piece);
		} else if (s->npools > 0 || strchr(text, '+')) {
			snprintf(err, errlen,
				 "reserve=%s: a total (SIZE) stands alone; per site, write "
				 "SITE:SIZE+SITE:SIZE",
				 text);
			return -EINVAL;
		}
		for (unsigned i = 0; i < s->npools; i++) {
			if (strcmp(s->pools[i].site, p->site) == 0) {
				snprintf(err, errlen, "reserve=%s: site %s given twice", text,
					 p->site);
				return -EINVAL;
			}
		}
		p->target = mempool_size_parse(size);
		if (p->target == 0) {
			snprintf(err, errlen,
				 "reserve=%s: '%.32s' is not a size > 0 (bytes, or with K, M, G)",
				 text, size);
			return -EINVAL;
		}
		s->npools++;
	}
	if (s->npools == 0) {
		snprintf(err, errlen, "reserve=%s: no pool given (SIZE or SITE:SIZE[+...])", text);
		return -EINVAL;
	}
	return 0;
}

static int mempool_init(void **state, const long long *values, const char *const *strings,
			const struct pfs_policy_host *host, char *err, size_t errlen)
{
	struct mempool_state *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	rc = mempool_reserve_parse(s, strings[MEMPOOL_RESERVE], err, errlen);
	if (rc) {
		free(s);
		return rc;
	}
	s->wait_ns = (uint64_t)values[MEMPOOL_WAIT_MS] * NS_PER_MS;
	if (host)
		s->host = *host;
	*state = s;
	return 0;
}

static void mempool_fini(void *state)
{
	free(state);
}

static void mempool_release(struct mempool_state *s, unsigned upto)
{
	for (unsigned i = 0; i < upto; i++) {
		struct pfs_reserve *r = atomic_exchange(&s->pools[i].reserve, NULL);

		if (r)
			s->host.reserve_destroy(s->host.host_data, r);
	}
}

/* Elements of one cache page's allocation, at most the reserve itself. */
static size_t mempool_elem_size(const struct mempool_state *s, uint64_t target)
{
	uint64_t page = s->host.page_size ? s->host.page_size(s->host.host_data) : 0;

	if (page == 0)
		page = MEMPOOL_ELEM_DEFAULT;
	return (size_t)(target < page ? target : page);
}

static int mempool_install(void *state)
{
	struct mempool_state *s = state;

	if (!s->host.reserve_create || !s->host.reserve_destroy)
		return -EOPNOTSUPP;
	for (unsigned i = 0; i < s->npools; i++) {
		struct mempool_pool *p = &s->pools[i];
		uint64_t count;
		struct pfs_reserve *r;

		p->elem = mempool_elem_size(s, p->target);
		count = (p->target + p->elem - 1) / p->elem;
		r = count <= UINT32_MAX
			    ? s->host.reserve_create(s->host.host_data, p->elem, (unsigned)count)
			    : NULL;
		if (!r) {
			mempool_release(s, i);
			return -ENOMEM;
		}
		atomic_store(&p->reserve, r);
	}
	atomic_store(&s->installed, true);
	return 0;
}

static void mempool_uninstall(void *state)
{
	struct mempool_state *s = state;

	atomic_store(&s->installed, false);
	mempool_release(s, s->npools);
}

static struct mempool_pool *mempool_pool_of(struct mempool_state *s, const char *site)
{
	for (unsigned i = 0; i < s->npools; i++) {
		if (!s->pools[i].site[0] || strcmp(s->pools[i].site, site) == 0)
			return &s->pools[i];
	}
	return NULL;
}

static struct pfs_decision mempool_decide(void *state, const struct pfs_failure *f)
{
	static const struct pfs_decision fail = {.verdict = PFS_VERDICT_FAIL};
	struct mempool_state *s = state;
	struct mempool_pool *p = mempool_pool_of(s, f->site);
	struct pfs_reserve *r;

	if (!p || !atomic_load(&s->installed))
		return fail;
	r = atomic_load(&p->reserve);
	if (!r)
		return fail;
	if (f->size > p->elem) {
		if (!atomic_exchange(&p->warned, true) && s->host.log)
			s->host.log(s->host.host_data, PFS_LOG_WARNING,
				    "mempool: %zu bytes at site %s is more than its reserve's "
				    "elements of %zu: failing such requests",
				    f->size, f->site, p->elem);
		return fail;
	}
	return (struct pfs_decision){
		.verdict = PFS_VERDICT_RESERVED, .wait_ns = s->wait_ns, .reserve = r};
}

/* write_through.c compiles this file in for its writeback reserve, and
 * exports its own policy. */
#ifndef MEMPOOL_EMBEDDED
__attribute__((visibility("default"))) const struct pfs_policy pfs_policy_v1 = {
	.abi_version = PFS_POLICY_ABI_VERSION,
	.struct_size = sizeof(struct pfs_policy),
	.name = "mempool",
	.summary = "reserves per site, allocated at install: on failure take an element, "
		   "else sleep until one is freed; other sites fail at once",
	.params = mempool_params,
	.init = mempool_init,
	.fini = mempool_fini,
	.install = mempool_install,
	.uninstall = mempool_uninstall,
	.decide = mempool_decide,
};
#endif
