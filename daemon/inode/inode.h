/*
 * The inode table (inode.c) and its shrinker (inode_shrink.c): one record
 * per backing object the kernel knows, each holding the object's fds and
 * its page-cache file.
 */
#ifndef PFS_INODE_H
#define PFS_INODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fuse_ll.h"
#include "pcache.h"

struct pfs;
struct pfs_handle;

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
	/* open_lock: the file handles whose RELEASE has not come. At unmount
	 * the kernel drops RELEASEs still queued, so their handles are freed
	 * here (pfs_file_handles_drop) instead. */
	struct pfs_handle *handles;

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

/* Inode shrinker: each inode holds an fd, and the kernel keeps inodes
 * until memory is short, so past a share of the fd limit we ask it to drop
 * some (see inode/inode_shrink.c). */
struct pfs_shrinker {
	long high; /* immutable after start: start shrinking above this */
	pthread_t thread;
	bool running;	      /* atomic: set by the main thread at start and stop, read by
			       * workers (the lock and cond are ready once it is true) */
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

int pfs_inode_table_init(struct pfs *fs);
/* Free every inode left (unmount): the cache must be clean. */
void pfs_inode_table_destroy(struct pfs *fs);
/* Call fn on every inode of the table. Unmount only (no request runs any
 * more): no lock is taken, and fn must not free the inode. */
void pfs_inode_for_each(struct pfs *fs, void (*fn)(struct pfs *fs, struct pfs_inode *inode));
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
/* The same for the object behind from_fd, which a create has just opened
 * under name (-1: look the name up): the entry is that object even if a
 * rename has put another under the name since, and its record's fd is
 * opened through from_fd, without a lookup by name. */
int pfs_inode_lookup_created(struct pfs *fs, struct pfs_inode *parent, const char *name,
			     int from_fd, struct fuse_entry_param *e, struct pfs_inode **spare);
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
/* Should a file opened now have its close() sent to us (FLUSH)? Only
 * while the table is past the mark where the shrinker works, since
 * pfs_shrink_throttle in FLUSH is all a close() is for here. */
bool pfs_shrink_wants_close(struct pfs *fs);
/* Is the shrinker thread there (its lock and cond ready)? */
bool pfs_shrink_running(struct pfs *fs);
/* stat of the backing object, with the cached size and mtime. */
int pfs_inode_stat(struct pfs *fs, struct pfs_inode *inode, struct stat *st);
/* "/proc/self/fd/N" for the inode's O_PATH fd. */
void pfs_inode_proc_path(const struct pfs_inode *inode, char *buf, size_t len);
extern const struct pcache_file_ops pfs_inode_cache_ops;

#endif /* PFS_INODE_H */
