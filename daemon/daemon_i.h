/*
 * pressurefs daemon internals: struct pfs, the one object every part of the
 * daemon works on, made of one sub-struct per part (each with its own lock),
 * and the policy host. Each part's functions are declared in its own
 * header: options.h, inode/inode.h, ctl/ctl.h, ops/ops.h,
 * transport/transport.h, unmount.h. Not a public header.
 *
 * LOCK ORDER for the whole daemon (take left before right, never the
 * reverse; every lock is described where it is declared):
 *
 *   pfs_inode.append_lock -> pcache_file.lock -> pcache_file.pages_lock ->
 *       pcache.dirty.lock -> pcache.lru.lock -> allocator-internal locks
 *   pcache_file.lock -> pcache_file.stamp_lock -> pcache_file.pages_lock
 *       (stamp_lock is taken with no other cache lock but lock, also by
 *       the cache's put path, under wb.sync_lock too, and inside reclaim;
 *       nothing allocates under it)
 *   pcache.wb.sync_lock, pcache.dirty.list_lock (whole-cache passes) ->
 *       pcache_file.pages_lock (they never take pcache_file.lock)
 *   pcache_file.pages_lock -> pfs.inodes.hint_lock -> an inode-table shard
 *       lock (the cache's get callback and the `dirty` listing run under
 *       pages_lock)
 *   pfs_inode.open_lock -> pcache locks (first-open setup, and switching
 *       the cache's fd to or from write_fd)
 *   pfs.ctl.lock -> allocator-internal locks (and a trylock of dirty.lock;
 *       a policy's install()/uninstall() run under it and only charge or
 *       uncharge the budget)
 *   pfs.shrink.lock: a leaf (others only trylock it); the shrinker thread
 *       drops it before it takes hint_lock, shard locks, writes back
 *       (pcache_flush_file, with no lock held) or notifies the kernel
 *   pfs_transport.lock: a leaf (the transport's state; taken with no other
 *       lock held, by a worker writing the INIT reply and by the main thread)
 *   A writer throttled at dirty_limit (pcache_balance_dirty) waits on
 *       pcache.dirty.lock holding no other lock (pcache_write throttles
 *       before pcache_file.lock; an O_APPEND writer throttles before
 *       append_lock, and only rarely again inside it)
 *
 * Allocation rule: under pages_lock, dirty.lock, lru.lock, hint_lock, a
 * shard lock or dirty.list_lock only fail-fast allocations are made
 * (ALLOC_NORETRY: the policy is not asked, nothing reclaims or waits), so
 * no thread holding them waits for memory. Under pcache_file.lock
 * allocations pass ALLOC_NOFS: the policy may make the thread wait, but
 * reclaim takes none of the locks it holds. Under wb.sync_lock alone they
 * need not: reclaim never takes it.
 *
 * The last unref of an inode frees it (pcache_file_destroy takes the cache
 * locks), so it runs with no lock held: the cache calls put without its
 * locks, and shard locks are dropped before the free.
 */
#ifndef PFS_DAEMON_I_H
#define PFS_DAEMON_I_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "fuse_ll.h"
#include "inode/inode.h"
#include "loader.h"
#include "log.h"
#include "options.h"
#include "pcache.h"

#define PFS_MAX_POLICIES 1024

/* The FUSE connection: set before the loop starts or once in the INIT
 * reply, read without a lock after that. */
struct pfs_conn {
	struct fuse_session *se;
	double timeout;	     /* entry timeout for backing objects */
	double attr_timeout; /* attribute timeout for backing objects (attr_timeout) */
	bool foreground;
	bool kernel_wbcache; /* set in init: the kernel's write-back cache is on */
	/* atomic, set once in the INIT reply (transport/fuse_io.c):
	 * FUSE_HANDLE_KILLPRIV_V2 is on, so the kernel leaves clearing
	 * suid/sgid/caps to us. */
	bool killpriv_v2;
	uint64_t getxattr_requests; /* atomic: GETXATTR requests the kernel sent */
	uint64_t flush_requests;    /* atomic: FLUSH requests (close() of a file) */
	/* The worker pool and how requests arrive (transport/); set up
	 * before the mount, gone after the session. */
	struct pfs_transport *transport;
};

/* Who owns the mount; immutable after start. */
struct pfs_owner {
	uid_t uid;
	gid_t gid;
	bool as_root; /* effective uid 0: create as the caller */
};

/* What the control directory changes at run time. */
struct pfs_control {
	pthread_mutex_t lock; /* opt (after start), policy, policies[] */
	struct pfs_options opt;
	struct policy_handle *policy; /* current policy */
	/* Every handle loaded, kept until unmount (a thread may still be asking
	 * an old one). Fixed-size: a switch must work when memory is short. */
	struct policy_handle *policies[PFS_MAX_POLICIES];
	unsigned npolicies;
	/* The fail_nth control file: the countdown last armed (0: off) and,
	 * once disarmed, whether it had fired. lock. */
	uint64_t fail_nth, fail_nth_more;
	bool fail_nth_fired;

	/* Not under lock: set once by a policy (host->shutdown), then every
	 * request that would change the filesystem answers EIO. */
	_Atomic int shutdown;
};

struct pfs {
	struct alloc *alloc;		 /* immutable after start */
	struct pcache *cache;		 /* immutable after start */
	struct pcache_usage final_usage; /* the cache's last numbers, once it is gone */
	struct pfs_conn conn;
	struct pfs_owner owner;
	struct pfs_inodes inodes;
	struct pfs_shrinker shrink;
	struct pfs_control ctl;
};

/* policy_host.c: what the daemon offers policy plugins */
extern const struct pfs_policy_host pfs_policy_host;
/* Point the host's services at this mount (once the allocator exists). */
void pfs_policy_host_bind(struct pfs *fs);
/* After a policy shut the mount down: reply EIO to req and return true. */
bool pfs_shutdown_refused(fuse_req_t req);

static inline struct pfs *pfs_from_req(fuse_req_t req)
{
	return (struct pfs *)fuse_req_userdata(req);
}

/* Block the signals that end the daemon (SIGHUP, SIGINT, SIGTERM) in the
 * calling thread, the old mask in *old: every thread but the main one is
 * started so. See pfs_exit_signals in main.c. */
void pfs_exit_signals_block(sigset_t *old);

#endif /* PFS_DAEMON_I_H */
