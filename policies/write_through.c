/*
 * write_through: mempool's writeback reserve, and a write that cannot get
 * a cache page goes straight to the backing file. No kernel has it.
 *
 * Why: in the comparison, retry fails applications' writes under a
 * balloon that holds memory (its retries run out), nofail shows no
 * error but hangs when memory never returns, and mempool keeps writeback
 * going but fails writes at every site without a reserve. A write that
 * cannot be cached does not need the memory at all: the application's
 * buffer is already in the daemon, and the backing file can take it now.
 * Writing it through costs a synchronous write, not an error and not a
 * hang, and the reserve keeps writeback (which frees the cache's pages)
 * moving.
 *
 * What the allocator does: at site cache_page (a write that needs a new
 *	page), the BYPASS verdict: the cache writes that page's slice of the
 *	caller's data with pwrite on the backing file, while the file's lock
 *	keeps the page from being cached meanwhile, and answers the write
 *	only after the pwrite succeeded. A page already cached takes the
 *	bytes as before (no allocation). Other allocations at cache_page
 *	(the read path's optional pages) fail as under enomem: a read needs
 *	no cache either. At sites with a reserve (writeback, by default),
 *	exactly mempool: an element of the reserve allocated at install,
 *	else sleep until a free gives one back (a switch whose reserve does
 *	not fit fails with ENOMEM and the old policy stays). Every other site (inode, handle,
 *	readdir, request, other) fails at once, like enomem.
 * Can it fail: a write, only with the backing file's own error (EIO,
 *	ENOSPC, EDQUOT, EBADF for a read-only descriptor), at once. Writeback
 *	at a site with a reserve: no, it sleeps until memory returns. Other
 *	sites: yes, at once (ENOMEM to create, open, readdir...).
 * What the caller owes: a bypass path where it passes ALLOC_BYPASS_OK; a
 *	clean ENOMEM path everywhere else. Writeback, as under mempool,
 *	releases its buffer when the pass ends.
 * When NOT to use it: when the backing store is much slower than memory
 *	and writes come in small pieces: every write that meets a full cache
 *	then waits for the backing file, so throughput drops to its speed
 *	(no error, but no cache either). And when the metadata sites matter:
 *	they fail as under enomem.
 *
 * Arguments as mempool's: reserve= ("writeback:256K" by default; a
 * cache_page reserve is refused, that site never uses one) and wait_ms=.
 */
#define MEMPOOL_EMBEDDED 1
#include "mempool.c"

static int write_through_init(void **state, const long long *values, const char *const *strings,
			      const struct pfs_policy_host *host, char *err, size_t errlen)
{
	struct mempool_state *s;
	int rc = mempool_init(state, values, strings, host, err, errlen);

	if (rc)
		return rc;
	s = *state;
	for (unsigned i = 0; i < s->npools; i++) {
		if (strcmp(s->pools[i].site, "cache_page") == 0) {
			snprintf(err, errlen,
				 "reserve=%s: write_through takes no cache_page reserve (a write "
				 "without a page goes to the backing file); reserve other sites",
				 strings[MEMPOOL_RESERVE]);
			mempool_fini(s);
			*state = NULL;
			return -EINVAL;
		}
	}
	return 0;
}

static struct pfs_decision write_through_decide(void *state, const struct pfs_failure *f)
{
	if (strcmp(f->site, "cache_page") == 0)
		return (struct pfs_decision){.verdict = PFS_VERDICT_BYPASS};
	return mempool_decide(state, f);
}

__attribute__((visibility("default"))) const struct pfs_policy pfs_policy_v1 = {
	.abi_version = PFS_POLICY_ABI_VERSION,
	.struct_size = sizeof(struct pfs_policy),
	.name = "write_through",
	.summary = "a write that cannot get a cache page goes straight to the backing file; "
		   "writeback has mempool's reserve; other sites fail at once",
	.params = mempool_params,
	.init = write_through_init,
	.fini = mempool_fini,
	.install = mempool_install,
	.uninstall = mempool_uninstall,
	.decide = write_through_decide,
};
