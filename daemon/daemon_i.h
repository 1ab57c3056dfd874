/*
 * pressurefs daemon internals: shared by main.c, options.c, inode/, ops/,
 * transport/ and ctl/. Not a public header.
 *
 * LOCK ORDER for the whole daemon (take left before right, never the
 * reverse; every lock is described where it is declared):
 *
 *   pfs_inode.append_lock -> pcache_file.lock -> pcache_file.pages_lock ->
 *       pcache.dirty_lock -> pcache.lru_lock -> allocator-internal locks
 *   pcache_file.lock -> pcache_file.stamp_lock -> pcache_file.pages_lock
 *       (stamp_lock is taken with no other cache lock but lock, also by
 *       the cache's put path, under sync_lock too, and inside reclaim;
 *       nothing allocates under it)
 *   pcache.sync_lock, pcache.list_lock (whole-cache passes) ->
 *       pcache_file.pages_lock (they never take pcache_file.lock)
 *   pcache_file.pages_lock -> pfs.inodes.hint_lock -> an inode-table shard
 *       lock (the cache's get callback and the `dirty` listing run under
 *       pages_lock)
 *   pfs_inode.open_lock -> pcache locks (first-open setup, and switching
 *       the cache's fd to or from write_fd)
 *   pfs.ctl.lock -> allocator-internal locks (and a trylock of dirty_lock;
 *       a policy's install()/uninstall() run under it and only charge or
 *       uncharge the budget)
 *   pfs.shrink.lock: a leaf (others only trylock it); the shrinker thread
 *       drops it before it takes hint_lock, shard locks, writes back
 *       (pcache_flush_file, with no lock held) or notifies the kernel
 *   pfs_transport.lock: a leaf (the transport's state; taken with no other
 *       lock held, by a worker writing the INIT reply and by the main thread)
 *   A writer throttled at dirty_limit (pcache_balance_dirty) waits on
 *       pcache.dirty_lock holding no other lock (pcache_write throttles
 *       before pcache_file.lock; an O_APPEND writer throttles before
 *       append_lock, and only rarely again inside it)
 *
 * Allocation rule: under pages_lock, dirty_lock, lru_lock, hint_lock, a
 * shard lock or list_lock only fail-fast allocations are made
 * (ALLOC_NORETRY: the policy is not asked, nothing reclaims or waits), so
 * no thread holding them waits for memory. Under pcache_file.lock and
 * sync_lock allocations pass ALLOC_NOFS: the policy may make the thread
 * wait, but reclaim takes none of the locks it holds.
 *
 * The last unref of an inode frees it (pcache_file_destroy takes the cache
 * locks), so it runs with no lock held: the cache calls put without its
 * locks, and shard locks are dropped before the free.
 */
#ifndef PFS_FS_I_H
#define PFS_FS_I_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "alloc.h"
#include "loader.h"
#include "log.h"
#include "pcache.h"

/* ---- options (options.c): one table drives parsing, --help, ctl files ---- */

enum pfs_opt_type {
	PFS_OPT_SIZE,	   /* bytes, K/M/G suffixes */
	PFS_OPT_UINT,	   /* unsigned decimal in [min, max] */
	PFS_OPT_INT,	   /* signed decimal in [min, max] */
	PFS_OPT_BOOL,	   /* 0 or 1 */
	PFS_OPT_STRING,	   /* any non-empty text */
	PFS_OPT_CTLDIR,	   /* hidden, visible, none */
	PFS_OPT_SITES,	   /* site list, "all" or "none" */
	PFS_OPT_POLICY,	   /* NAME or PATH (arguments come as other options) */
	PFS_OPT_TRANSPORT, /* auto, io_uring, dev_fuse */
};

/* How requests reach the daemon (transport/). */
enum pfs_transport_kind { PFS_TRANSPORT_AUTO, PFS_TRANSPORT_IO_URING, PFS_TRANSPORT_DEV_FUSE };

/* Where a knob can be changed at run time through the control directory. */
enum pfs_opt_ctl {
	PFS_CTL_NONE, /* mount time only */
	PFS_CTL_RW,   /* a read-write control file of the same name */
};

#define PFS_OPTIONS(X)                                                                             \
	X(policy)                                                                                  \
	X(mem_limit)                                                                               \
	X(balloon)                                                                                 \
	X(fail_probability)                                                                        \
	X(fail_interval)                                                                           \
	X(fail_times)                                                                              \
	X(fail_space)                                                                              \
	X(fail_sites)                                                                              \
	X(fail_seed)                                                                               \
	X(fail_verbose)                                                                            \
	X(page_size)                                                                               \
	X(dirty_limit)                                                                             \
	X(clean_limit)                                                                             \
	X(writeback_ms)                                                                            \
	X(direct_writeback)                                                                        \
	X(ctldir)                                                                                  \
	X(stats_file)                                                                              \
	X(writeback_cache)                                                                         \
	X(killpriv)                                                                                \
	X(attr_timeout)                                                                            \
	X(transport)                                                                               \
	X(dirty_throttle)                                                                          \
	X(writeback_delay_us)

enum pfs_opt_id {
#define PFS_OPT_ENUM(name) PFS_OPT_##name,
	PFS_OPTIONS(PFS_OPT_ENUM)
#undef PFS_OPT_ENUM
		PFS_OPT_COUNT
};

struct pfs_opt_desc {
	const char *name;
	enum pfs_opt_type type;
	const char *def;    /* default, as the user would write it */
	long long min, max; /* numeric range (SIZE, UINT, INT) */
	const char *help;
	enum pfs_opt_ctl ctl;
};

enum pfs_ctldir { PFS_CTLDIR_HIDDEN, PFS_CTLDIR_VISIBLE, PFS_CTLDIR_NONE };

/* Every option's current value: numbers in num[], text in str[]. */
struct pfs_options {
	long long num[PFS_OPT_COUNT];
	char *str[PFS_OPT_COUNT]; /* malloc'd (parsed before the allocator exists) */
};

/* What the command line asked for, besides the -o table. */
struct pfs_cmdline {
	struct pfs_options opt;
	const char *backing;
	const char *mountpoint;
	bool foreground, debug, single_thread, help, version;
	bool no_default_permissions; /* allow_other without the kernel's mode checks */
	/* policy arguments, in the order given */
	char **policy_keys, **policy_values;
	unsigned npolicy_args;
	/* options handed to libfuse as "-o a,b" pieces */
	char *fuse_opts; /* malloc'd comma list, may be NULL */
};

const struct pfs_opt_desc *pfs_opt_desc(enum pfs_opt_id id);
/* Find an option by name; -1 if not in the table. */
int pfs_opt_find(const char *name);
/* Parse text for option id into *num or *str. 0, or -EINVAL with one line
 * (without the "pressurefs: " prefix) in err. */
int pfs_opt_parse_value(enum pfs_opt_id id, const char *text, long long *num, char **str, char *err,
			size_t errlen);
/* Format a value as the control file shows it (no newline). */
void pfs_opt_format_value(enum pfs_opt_id id, const struct pfs_options *o, char *buf, size_t len);
/* Format one line into err (printf-style), control bytes shown as '?', so
 * that whatever a user typed stays one line in the log. */
void pfs_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void pfs_verr(char *err, size_t errlen, const char *fmt, va_list ap);
/* Parse the whole command line. 0, or -EINVAL with one line in err. */
int pfs_cmdline_parse(int argc, char **argv, struct pfs_cmdline *cl, char *err, size_t errlen);
void pfs_cmdline_free(struct pfs_cmdline *cl);
void pfs_usage_print(FILE *out, const char *prog);

/* ---- inodes (inode.c) ---- */

struct pfs;

struct pfs_inode {
	struct pfs_inode *hash_next; /* shard lock */
	dev_t dev;		     /* key, immutable */
	ino_t ino;		     /* key, immutable */
	/* The backing object, immutable. A regular file's is opened read-only
	 * (O_PATH where that is refused) and is also data_fd: one fd per inode,
	 * since fds are the scarce thing. Never for writing: a process holding
	 * a write fd makes execve of the backing file fail (ETXTBSY). */
	int fd;
	mode_t type;	  /* S_IFMT bits, immutable */
	uint64_t nlookup; /* shard lock: the kernel's lookup count */
	uint64_t refs;	  /* shard lock: internal references (cache, hints) */

	int data_fd;		   /* immutable: fd if it can read (regular files), else -1 */
	int data_err;		   /* immutable: why data_fd is -1 (-errno) */
	pthread_mutex_t open_lock; /* the first-open setup of cache, write_fd, writers */
	/* open_lock (written atomically; read without it by a holder of a
	 * writing handle, which keeps it open, and by the shrinker's scan, as
	 * a hint): the backing file opened O_RDWR, -1 when none. Opened
	 * by the first writer's open (or taken from the creating open, the only
	 * way to write a file created read-only), the cache's fd while it
	 * exists, and closed when no writer has the file open and no page is
	 * unwritten: at the last writer's release, or later by the shrinker. */
	int write_fd;
	int writers;		     /* open_lock (written atomically, read as write_fd): open
				      * handles that may write */
	bool write_fd_idle;	     /* open_lock: counted in pfs.inodes.write_fds_idle */
	bool cache_ready;	     /* set once under open_lock, read without it
				      * after an acquire load */
	pthread_mutex_t append_lock; /* serialises O_APPEND writers among themselves */
	int opens;		     /* atomic: open handles (the shrinker skips those) */

	struct pfs_inode *hint_parent; /* pfs.inodes.hint_lock: parent of the last name seen
					* (holds a ref on it) */
	char *hint_name;	       /* pfs.inodes.hint_lock: that name */

	struct pcache_file cache; /* valid once cache_ready */
	/* atomic: the backing ctime (ns since the epoch) after the last change
	 * of metadata made through the daemon (chmod, chown, utimens, link,
	 * rename, xattr). Once the cache knows the file's mtime, the ctime
	 * shown is the later of the two: writeback's own ctime bumps stay out
	 * of sight. */
	int64_t meta_ctime_ns;
	/* atomic (killpriv.c): odd = the backing object had no bit or xattr a
	 * write by an unprivileged caller must clear, as of the last check;
	 * every change of mode, owner or security xattr moves it to the next
	 * even value. */
	unsigned privs_gen;
};

#define PFS_INODE_SHARDS 64

struct pfs_inode_shard {
	pthread_mutex_t lock; /* buckets, count, and nlookup/refs/hash_next of
			       * every inode in this shard */
	struct pfs_inode **buckets;
	size_t nbuckets, count;
};

/* ---- the daemon ---- */

#define PFS_MAX_POLICIES 1024

/* The inode table (inode/inode.c). */
struct pfs_inodes {
	struct pfs_inode root;
	struct pfs_inode_shard shards[PFS_INODE_SHARDS];
	pthread_rwlock_t hint_lock; /* hint_parent/hint_name of every inode */
	long count;		    /* atomic: fds the table holds, what the shrinker
				     * keeps under the fd limit: one per record,
				     * one more per open write_fd */
	long write_fds_idle;	    /* atomic: write_fds kept with no writer (dirty
				     * pages behind them): the shrinker closes them */
};

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

/* Inode shrinker: each inode holds an fd, and the kernel keeps inodes
 * until memory is short, so past a share of the fd limit we ask it to drop
 * some (see inode/inode_shrink.c). */
struct pfs_shrinker {
	long high; /* immutable after start: start shrinking above this */
	pthread_t thread;
	bool running;	      /* main thread only */
	pthread_mutex_t lock; /* stop and the wait on wake */
	pthread_cond_t wake;
	bool stop;			/* lock (the shrinker also reads it atomically
					 * between write-backs) */
	unsigned long long invalidated; /* atomic: dentries it asked the kernel to drop */
	unsigned long long written;	/* atomic: dirty files it wrote back early */
	/* Spare fds for opens that meet EMFILE: slots hold an fd or -1; only
	 * the shrinker fills them, anyone empties one. */
#define PFS_SHRINK_RESERVE 32
	int reserve[PFS_SHRINK_RESERVE]; /* atomic */
	unsigned reserve_size;		 /* immutable after start: slots in use */
	unsigned long long reserve_used; /* atomic: opens it let through */
	unsigned long long throttled;	 /* atomic: closes held back */
	unsigned long long rounds;	 /* atomic: rounds done (closes wait for one) */
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

int pfs_inode_table_init(struct pfs *fs);
/* Free every inode left (unmount): the cache must be clean. */
void pfs_inode_table_destroy(struct pfs *fs);
struct pfs_inode *pfs_inode_get(fuse_req_t req, fuse_ino_t ino);
/* Find or create the inode for name in parent; counts one lookup. Fills e.
 * 0 or -errno. */
int pfs_inode_lookup(struct pfs *fs, struct pfs_inode *parent, const char *name,
		     struct fuse_entry_param *e);
/* The same, using *spare for the record if one is needed (and setting it
 * to NULL then): creating calls allocate it before they create anything,
 * so they fail with ENOMEM before, not after, touching the backing dir. */
int pfs_inode_lookup_spare(struct pfs *fs, struct pfs_inode *parent, const char *name,
			   struct fuse_entry_param *e, struct pfs_inode **spare);
struct pfs_inode *pfs_inode_spare_alloc(struct pfs *fs);
void pfs_inode_spare_free(struct pfs *fs, struct pfs_inode *spare);
/* Drop n kernel lookups. */
void pfs_inode_forget(struct pfs *fs, struct pfs_inode *inode, uint64_t n);
void pfs_inode_ref(struct pfs *fs, struct pfs_inode *inode);
void pfs_inode_unref(struct pfs *fs, struct pfs_inode *inode);
/* Find an inode already in the table by key, with a ref; NULL if none. */
struct pfs_inode *pfs_inode_find(struct pfs *fs, dev_t dev, ino_t ino);
/* Remember name in parent as the inode's last known name (best effort). */
void pfs_inode_hint_set(struct pfs *fs, struct pfs_inode *inode, struct pfs_inode *parent,
			const char *name);
/* "dir/file" relative to the mount root, or "?" if unknown. */
void pfs_inode_path(struct pfs *fs, struct pfs_inode *inode, char *buf, size_t len);
/* Set up the cache (first open); with want_write, also count a writer and
 * make sure write_fd is open: *create_fd (may be NULL), an O_RDWR fd of the
 * file from the creating open, is used if the inode has none, and then set
 * to -1. 0 or -errno (then no writer is counted). */
int pfs_inode_cache_open(struct pfs *fs, struct pfs_inode *inode, bool want_write, int *create_fd);
/* A writing handle went: at the last, close write_fd if no page is
 * unwritten (else the shrinker closes it once they are written). */
void pfs_inode_writer_done(struct pfs *fs, struct pfs_inode *inode);
/* Close write_fd if no writer has the file open and its pages are clean.
 * true if the inode has no write_fd now. */
bool pfs_inode_write_fd_release(struct pfs *fs, struct pfs_inode *inode);
/* Metadata of the inode changed through the daemon: note the backing ctime. */
void pfs_inode_meta_changed(struct pfs_inode *inode);
bool pfs_inode_cache_ready(struct pfs_inode *inode);
/* inode_shrink.c: start/stop the inode shrinker (after mounting / before
 * unmounting). */
int pfs_inode_shrinker_start(struct pfs *fs);
void pfs_inode_shrinker_stop(struct pfs *fs);
/* An open met EMFILE: free a reserved fd for the retry, or wake the
 * shrinker and nap briefly. true: try the open again; false: give up (the
 * shrinker freed nothing for about a second, or a minute has gone by).
 * Start each open with a zeroed struct pfs_shrink_wait. */
struct pfs_shrink_wait {
	unsigned long long seen; /* shrink_invalidated at the last look */
	unsigned idle, tries;
};
bool pfs_shrink_wait_fd(struct pfs *fs, struct pfs_shrink_wait *w);
/* close() (flush) while fds are short: wait a little for the shrinker. */
void pfs_shrink_throttle(struct pfs *fs);
/* stat of the backing object, with the cached size and mtime. */
int pfs_inode_stat(struct pfs *fs, struct pfs_inode *inode, struct stat *st);
/* "/proc/self/fd/N" for the inode's O_PATH fd. */
void pfs_inode_proc_path(const struct pfs_inode *inode, char *buf, size_t len);
extern const struct pcache_file_ops pfs_inode_cache_ops;

static inline struct pfs *pfs_from_req(fuse_req_t req)
{
	return (struct pfs *)fuse_req_userdata(req);
}

/* ---- control directory (ctl.c) ---- */

#define PFS_CTL_NAME	   ".pressurefs"
#define PFS_CTL_DIR_INO	   ((fuse_ino_t)2)
#define PFS_CTL_RENDER_MAX (64 * 1024) /* longest rendering but `dirty` */

enum pfs_ctl_kind {
	PFS_CTL_OPTION,
	PFS_CTL_STATS,
	PFS_CTL_DIRTY,
	PFS_CTL_DROP_CACHES,
	PFS_CTL_SYNC,
	PFS_CTL_CRASH,
	PFS_CTL_FAIL_NTH,
};

struct pfs_ctl_file {
	const char *name;
	enum pfs_ctl_kind kind;
	enum pfs_opt_id opt; /* PFS_CTL_OPTION */
	mode_t mode;
};

struct pfs_ctl_handle {
	size_t len;
	int slot; /* emergency slot in use, -1: from the allocator */
	char data[];
};

/* ---- control-file writes (ctl_parse.c): no FUSE, no daemon state ---- */

#define PFS_CTL_WRITE_MAX	4096 /* longest write a control file takes */
#define PFS_CTL_POLICY_ARGS_MAX 64   /* arg=value pairs in one policy write */

/* "NAME[,arg=value...]" cut into pieces (pointers into the split text). */
struct pfs_ctl_policy {
	const char *name;
	const char *keys[PFS_CTL_POLICY_ARGS_MAX];
	const char *values[PFS_CTL_POLICY_ARGS_MAX];
	unsigned nargs;
};

enum pfs_ctl_cmd_kind {
	PFS_CTL_CMD_SET_OPTION,	 /* opt = value */
	PFS_CTL_CMD_SET_POLICY,	 /* load policy and make it the allocator's */
	PFS_CTL_CMD_DROP_CACHES, /* drop clean pages */
	PFS_CTL_CMD_SYNC,	 /* write back every dirty page */
	PFS_CTL_CMD_CRASH,	 /* die with dirty pages unwritten */
	PFS_CTL_CMD_FAIL_NTH,	 /* arm (nth >= 1) or disarm (0) the countdown */
};

/* What one write to a control file asks for. */
struct pfs_ctl_cmd {
	enum pfs_ctl_cmd_kind kind;
	enum pfs_opt_id opt;		  /* SET_OPTION */
	long long value;		  /* SET_OPTION */
	struct pfs_ctl_policy policy;	  /* SET_POLICY: points into spec */
	char text[PFS_CTL_WRITE_MAX + 1]; /* the write without its trailing blanks */
	char spec[PFS_CTL_WRITE_MAX + 1]; /* SET_POLICY: text, split in place */
	uint64_t nth, nth_more;		  /* FAIL_NTH: alloc_fail_nth()'s n and more */
};

/* The control files (built from the option table; idempotent). */
void pfs_ctl_table_init(void);
unsigned pfs_ctl_file_count(void);
/* File i of the directory (inode PFS_CTL_DIR_INO + 1 + i); NULL past the end. */
const struct pfs_ctl_file *pfs_ctl_file_at(unsigned i);
/*
 * Turn one write(buf, len) at offset off to file into *cmd, with no side
 * effect. 0, or -EINVAL (bad text) / -EBADF (file not writable) with one
 * line in err (control bytes shown as '?').
 */
int pfs_ctl_parse_write(const struct pfs_ctl_file *file, const char *buf, size_t len, off_t off,
			struct pfs_ctl_cmd *cmd, char *err, size_t errlen);
/* Split "NAME[,arg=value...]" in place (commas, blanks, tabs, CRs and
 * newlines separate). 0, or -EINVAL with one line in err. */
int pfs_ctl_policy_split(char *spec, struct pfs_ctl_policy *out, char *err, size_t errlen);

/* ctl_render.c: render a readable control file into a new handle. */
int pfs_ctl_render(struct pfs *fs, const struct pfs_ctl_file *file, struct pfs_ctl_handle **out);
void pfs_ctl_handle_free(struct pfs *fs, struct pfs_ctl_handle *h);

/* Build the file list from the option table (once, before mounting). */
void pfs_ctl_init(void);
bool pfs_ctl_is_ino(fuse_ino_t ino);
bool pfs_ctl_enabled(struct pfs *fs);
/* Is name in the root the control directory's? */
bool pfs_ctl_shadows(struct pfs *fs, fuse_ino_t parent, const char *name);
void pfs_ctl_entry(struct pfs *fs, fuse_ino_t ino, struct fuse_entry_param *e);
void pfs_ctl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void pfs_ctl_getattr(fuse_req_t req, fuse_ino_t ino);
void pfs_ctl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_ctl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		  struct fuse_file_info *fi);
void pfs_ctl_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi);
void pfs_ctl_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_ctl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus);
/* Apply a policy spec at run time or at start ("NAME,arg=v"). */
int pfs_ctl_policy_switch(struct pfs *fs, const char *text, char *err, size_t errlen);
/* Make h the allocator's policy (its install() first: on failure, -errno
 * and the old policy stays); keeps it until unmount. */
int pfs_policy_install(struct pfs *fs, struct policy_handle *h);
/* What the fail_nth control file reads: the countdown last written, then
 * "waiting", "fired" (since it was armed, also after disarming) or "off".
 * Returns the length, like snprintf. */
size_t pfs_ctl_fail_nth_show(struct pfs *fs, char *buf, size_t len);
/* Push fail_* option values to the allocator. */
void pfs_inject_apply(struct pfs *fs);
/* Push dirty_limit and writeback_ms to the page cache (ctl_lock held). */
void pfs_cache_tune(struct pfs *fs);
/* The stats JSON (one snapshot). Returns the length needed, like snprintf. */
size_t pfs_stats_json(struct pfs *fs, char *buf, size_t len);

/* ---- ops (ops_*.c) ---- */

/* ops/creds.c: run a creating call as the caller (fsuid/fsgid) when the
 * daemon is root. */
struct pfs_creds {
	uid_t uid;
	gid_t gid;
	bool switched;
};
void pfs_creds_enter(fuse_req_t req, struct pfs_creds *c);
void pfs_creds_leave(struct pfs_creds *c);

/* ops_entry.c */
/* fuse_reply_entry, undoing the lookup if the request was interrupted. */
void pfs_entry_reply(fuse_req_t req, struct pfs *fs, const struct fuse_entry_param *e);
void pfs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void pfs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void pfs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void pfs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		    struct fuse_file_info *fi);
void pfs_op_readlink(fuse_req_t req, fuse_ino_t ino);
void pfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void pfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void pfs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void pfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void pfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void pfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void pfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		   const char *newname, unsigned int flags);
void pfs_op_statfs(fuse_req_t req, fuse_ino_t ino);

/* ops_dir.c */
void pfs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void pfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi);
void pfs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

/* ops_file.c */
void pfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		   struct fuse_file_info *fi);
void pfs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void pfs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		  struct fuse_file_info *fi);
void pfs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void pfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		      struct fuse_file_info *fi);
void pfs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);
/* setattr(size) path shared with ops_entry.c. */
int pfs_file_truncate(struct pfs *fs, struct pfs_inode *inode, off_t size);

/* fuse_io.c: our own read/writev on /dev/fuse (after fuse_session_mount).
 * It sets FUSE_HANDLE_KILLPRIV_V2 in the INIT reply (libfuse 3.14 cannot)
 * when the killpriv option asks and the kernel offers it, counts GETXATTR
 * requests, and notes the kill-suidgid bit of the request this thread is
 * about to handle (libfuse does not pass it on). 0 or -errno. */
int pfs_fuse_io_install(struct pfs *fs, bool debug);
/* Did the request this thread is handling, on ino, carry
 * FUSE_WRITE_KILL_SUIDGID / FATTR_KILL_SUIDGID / FUSE_OPEN_KILL_SUIDGID?
 * Call once, from the handler of a WRITE, SETATTR, OPEN or CREATE (ino: the
 * nodeid of the request, the parent for CREATE). */
bool pfs_fuse_io_kill_suidgid_wanted(fuse_ino_t ino);

/* killpriv.c: what FUSE_HANDLE_KILLPRIV_V2 asks of us (the daemon writes
 * as root, so the backing fs never clears these bits itself). */
/* Clear setuid, setgid and security.capability of a regular file (and
 * the kernel's cached mode); no syscall once known clear. 0 or -errno. */
int pfs_privs_kill(struct pfs *fs, struct pfs_inode *inode);
/* Mode, owner or a security xattr changed: check again next time. */
void pfs_privs_invalidate(struct pfs_inode *inode);

/* ops_xattr.c */
void pfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		     size_t size, int flags);
void pfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void pfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void pfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* unmount.c: the unmount that waits. The daemon resolves its mount point
 * before mounting (prepare), listens once mounted, takes commands from
 * after daemonizing until its FUSE loop ends, and reports to them right
 * after its last writeback: err 0 or -errno, lost_bytes the dirty bytes it
 * could not write. */
void pfs_unmount_prepare(const char *mountpoint);
int pfs_unmount_listen(uid_t owner);
int pfs_unmount_accept_start(void);
/* Once the FUSE loop has ended (the device number is free again); commands
 * already connected still get the report. */
void pfs_unmount_stop_listening(void);
void pfs_unmount_report(int err, uint64_t lost_bytes);
/* `pressurefs -u MOUNTPOINT` (args after -u): the exit status. */
int pfs_unmount_main(int argc, char **argv);

#endif /* PFS_FS_I_H */
