/*
 * What the daemon offers policy plugins (pressurefs/policy.h's host
 * interface): its log, reserves held and charged to the mount's budget, the cache's
 * reclaimer, waiting for memory, how much acknowledged data is still dirty,
 * the page size, and a mount-wide shutdown.
 *
 * One daemon serves one mount, so the services reach it through one
 * pointer bound once the allocator exists (pfs_policy_host_bind); before
 * that (a policy's init() at option parsing) they report "no such
 * service" the only way each can: nothing charged, nothing freed.
 *
 * Shutdown (XFS's answer to an allocation that fails inside a dirty
 * transaction): from then on every request that would change the
 * filesystem gets EIO, with one log line saying why; writeback, fsync,
 * reads and the control directory go on, so that what was acknowledged
 * before is still written back where memory allows it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>

#include "daemon_i.h"

static void pfs_host_log(void *host_data, enum pfs_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void pfs_host_log(void *host_data, enum pfs_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pfs_vlog((int)level, fmt, ap);
	va_end(ap);
}

/* Set once, before any FUSE thread runs; read by any thread after. */
static struct pfs *_Atomic pfs_host_fs;

void pfs_policy_host_bind(struct pfs *fs)
{
	atomic_store(&pfs_host_fs, fs);
}

static struct pfs *pfs_host(void)
{
	return atomic_load(&pfs_host_fs);
}

static struct pfs_reserve *pfs_host_reserve_create(void *host_data, size_t elem_size,
						   unsigned count)
{
	struct pfs *fs = pfs_host();

	(void)host_data;
	return fs && fs->alloc ? alloc_reserve_create(fs->alloc, elem_size, count) : NULL;
}

static void pfs_host_reserve_destroy(void *host_data, struct pfs_reserve *r)
{
	struct pfs *fs = pfs_host();

	(void)host_data;
	if (fs && fs->alloc)
		alloc_reserve_destroy(fs->alloc, r);
}

static size_t pfs_host_reclaim(void *host_data, size_t want, unsigned flags)
{
	struct pfs *fs = pfs_host();

	(void)host_data;
	return fs && fs->alloc ? alloc_reclaim(fs->alloc, want, flags & ALLOC_NOFS) : 0;
}

static int pfs_host_wait_for_memory(void *host_data, uint64_t timeout_ns)
{
	struct pfs *fs = pfs_host();

	(void)host_data;
	return fs && fs->alloc ? alloc_wait_for_memory(fs->alloc, timeout_ns) : -ETIMEDOUT;
}

static uint64_t pfs_host_dirty_bytes(void *host_data)
{
	struct pfs *fs = pfs_host();
	struct pcache_usage u;

	(void)host_data;
	if (!fs || !fs->cache)
		return 0;
	pcache_usage_read(fs->cache, &u);
	return u.dirty_bytes + u.writeback_bytes;
}

static uint64_t pfs_host_page_size(void *host_data)
{
	struct pfs *fs = pfs_host();

	(void)host_data;
	/* The allocation, not just its data: a policy compares it with
	 * what a cache page asks for. */
	return fs ? (uint64_t)pcache_page_alloc_size((size_t)fs->ctl.opt.num[PFS_OPT_page_size])
		  : 0;
}

static void pfs_host_shutdown(void *host_data, const char *why)
{
	struct pfs *fs = pfs_host();
	int expected = 0;

	(void)host_data;
	if (!fs || !atomic_compare_exchange_strong(&fs->ctl.shutdown, &expected, 1))
		return;
	pfs_log(PFS_LOG_ERR,
		"filesystem shut down: %s; every later write, create and metadata change "
		"fails with EIO until unmount (dirty data is still written back)",
		why && *why ? why : "asked by the policy");
}

bool pfs_shutdown_refused(fuse_req_t req)
{
	struct pfs *fs = pfs_from_req(req);

	if (!atomic_load_explicit(&fs->ctl.shutdown, memory_order_acquire))
		return false;
	fuse_reply_err(req, EIO);
	return true;
}

const struct pfs_policy_host pfs_policy_host = {
	.log = pfs_host_log,
	.reserve_create = pfs_host_reserve_create,
	.reserve_destroy = pfs_host_reserve_destroy,
	.reclaim = pfs_host_reclaim,
	.wait_for_memory = pfs_host_wait_for_memory,
	.dirty_bytes = pfs_host_dirty_bytes,
	.page_size = pfs_host_page_size,
	.shutdown = pfs_host_shutdown,
};
