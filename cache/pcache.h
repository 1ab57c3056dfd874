/*
 * pressurefs write-back page cache.
 *
 * write() is acknowledged once its bytes sit in this cache; a writeback
 * thread flushes dirty pages by age (writeback_ms) and by amount
 * (dirty_limit); fsync writes one file's dirty pages and fsyncs its backing
 * file. Every page and every buffer here comes from the allocator (sites
 * cache_page and writeback), so the policy decides what a write meets when
 * memory runs out. The cache never drops acknowledged data by itself: a
 * failed writeback leaves the pages dirty and is retried later. A backing
 * I/O error is reported by fsync the way Linux reports it (errseq: once to
 * every open file description that was open when it happened, or to the
 * next fsync if none has seen it); a writeback that only could not get a
 * buffer is no error: its data is still dirty and goes out later.
 *
 * Writers are throttled like the kernel's balance_dirty_pages: while the
 * bytes dirty or under writeback pass dirty_limit, pcache_write waits
 * (holding no lock) for writeback to bring them under.
 *
 * No FUSE in here: the daemon (daemon/ops/) maps requests to these calls, and the
 * unit tests drive them directly against real backing files.
 *
 * Locks (see the lock-order comment in daemon/daemon_i.h for the whole daemon;
 * the cache's own are declared, with what they protect, in pcache_i.h
 * beside the structure each belongs to):
 *   pcache_file.lock   like i_rwsem: serialises writers, truncate, fsync of
 *                      one file; allocation under it uses ALLOC_NOFS.
 *   pcache_file.pages_lock  the file's page index, page flags and dirty
 *                      ranges, its unwritten pages; held briefly, never
 *                      across I/O or allocation.
 *   pcache.dirty.lock  (dirty.c) the list of files with dirty pages, the
 *                      writeback thread's state and wake-ups, and the wait
 *                      of writers throttled at dirty_limit (who hold no
 *                      other lock: see pcache_balance_dirty).
 *   pcache.lru.lock    (lru.c) the list of clean pages reclaim may drop.
 *   pcache.wb.sync_lock, pcache.dirty.list_lock  serialise whole-cache
 *                      passes (pcache_sync_all, pcache_for_each_dirty).
 *   pcache_file.stamp_lock  the backing file's times and fd: putting the
 *                      last write's mtime back after writeback, an explicit
 *                      set, a change of fd. Held across one syscall.
 * Writeback takes only pages_lock (never pcache_file.lock), so a writer
 * waiting for memory under pcache_file.lock cannot stop writeback from
 * freeing it.
 *
 * Lock order (take left before right, never the reverse):
 *   pcache_file.lock -> pcache_file.pages_lock -> pcache.dirty.lock ->
 *   pcache.lru.lock -> allocator-internal locks
 *   pcache.wb.sync_lock, pcache.dirty.list_lock -> pcache_file.pages_lock
 *   pcache_file.lock, pcache.wb.sync_lock -> pcache_file.stamp_lock ->
 *   pcache_file.pages_lock (the put path stamps, under those or none)
 * Reclaim holding lru.lock only trylocks pages_lock. Under pages_lock,
 * dirty.lock and lru.lock the cache itself allocates nothing, and what the
 * owner's callbacks allocate there is fail-fast (ALLOC_NORETRY);
 * allocations under pcache_file.lock pass ALLOC_NOFS (under wb.sync_lock
 * alone they need not: reclaim never takes it). The reclaimer's
 * blocking mode writes back with on-stack buffers: reclaim never allocates.
 */
#ifndef PFS_PCACHE_H
#define PFS_PCACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "alloc.h"

struct pcache;
struct pcache_file;
struct pcache_page;
struct pcache_index; /* private: the page index of one file */

struct pcache_config {
	size_t page_size; /* power of two, 4 KiB .. 1 MiB */
	/* Dirty bytes that start writeback at once, which then goes on down
	 * to half of them, and past which writers wait (0 = mem_limit/2 or
	 * 64M). */
	uint64_t dirty_limit;
	uint64_t clean_limit;	     /* clean bytes kept; the oldest beyond are dropped
				      * (0 = 64M without a mem_limit, else no limit of its own) */
	unsigned writeback_ms;	     /* dirty pages older than this are written back */
	bool buffered_only;	     /* never O_DIRECT: every writeback goes through the
				      * backing fs's page cache (fixed at create) */
	bool writers_unthrottled;    /* writers never wait at dirty_limit (to compare) */
	unsigned writeback_delay_us; /* for testing: sleep this long per page written
				      * back, to stand for a slow backing store */
};

/* A writeback error and how often it changed, as Linux's errseq_t: the
 * low bits hold the last error's errno, one bit says whether an fsync has
 * reported it, the rest count errors recorded since. 0: never an error. */
typedef uint32_t pcache_errseq_t;

/* How the cache keeps a file alive while it has dirty pages (the daemon's
 * inode refcount): get when the file gets its first dirty page or while the
 * writeback thread works on it, put when done.
 * get may be called with the file's pages_lock held (by the writer that
 * dirties the first page): it must not block or call into the cache.
 * put is called with no cache lock held, from any thread (writeback,
 * reclaim, fsync, truncate, discard); the last put may destroy the file.
 * Either may be NULL (tests). */
struct pcache_file_ops {
	void (*get)(struct pcache_file *f);
	void (*put)(struct pcache_file *f);
};

/* The cache state of one inode; embedded in the daemon's inode. */
struct pcache_file {
	pthread_mutex_t lock;	       /* see above: writers, truncate, fsync */
	pthread_mutex_t pages_lock;    /* see above: index, page flags, ranges */
	pthread_cond_t writeback_done; /* with pages_lock: a page left writeback */
	struct pcache *cache;
	struct pcache_index *index; /* pages_lock */
	/* The backing file: read-write while the file may have dirty pages,
	 * else perhaps read-only (pcache_file_set_fd). Changed only under lock,
	 * stamp_lock and pages_lock with no page unwritten. */
	int fd;
	pthread_mutex_t stamp_lock; /* the backing file's times: orders putting
				     * mtime on it after writeback against an
				     * explicit set (taken after lock, before
				     * pages_lock) */
	off_t size;		/* lock (read under pages_lock too): size as applications see it */
	struct timespec mtime;	/* pages_lock (writers hold lock too): the time of the
				 * last write, truncate or explicit set */
	bool mtime_known;	/* pages_lock: mtime was set through the cache */
	bool mtime_unstamped;	/* pages_lock: the backing file does not show mtime yet */
	uint64_t wb_stop_index; /* pages_lock: writeback takes no page at or past this
				 * (a shrinking truncate is under way); UINT64_MAX */
	uint64_t dirty_pages;	/* pages_lock: pages dirty or under writeback */
	pcache_errseq_t wb_err; /* pages_lock: the file's writeback errors (errseq) */
	uint64_t dirtied_ns;	/* dirty_lock: when the file went from clean to dirty */
	struct pcache_file *dirty_next, *dirty_prev; /* dirty_lock: the dirty-file list */
	bool on_dirty_list;			     /* dirty_lock */
	uint64_t id; /* the daemon's inode number, for `dirty` and logs */
};

/* Registers the cache's reclaimer with a (one per allocator). NULL with
 * errno EINVAL (bad page_size) or ENOMEM. config NULL or zero fields mean
 * the defaults: 64 KiB pages, writeback_ms 5000, dirty_limit 0 (half of
 * mem_limit - balloon, followed at run time; 64 MiB without a limit),
 * clean_limit 0 (64 MiB without a mem_limit; with one, the budget and its
 * reclaim decide). */
struct pcache *pcache_create(struct alloc *a, const struct pcache_config *config,
			     const struct pcache_file_ops *ops);
/* Writes everything back (pcache_sync_all), stops the thread, frees.
 * Destroy (or discard and destroy) every file first: the files belong to
 * the caller; one still attached is reported on stderr. Unmount order:
 * pcache_sync_all, destroy the inodes, pcache_destroy. */
void pcache_destroy(struct pcache *pc);
/* Start/stop the writeback thread (create does not start it, for tests). */
int pcache_writeback_start(struct pcache *pc);
void pcache_writeback_stop(struct pcache *pc);
size_t pcache_page_size(const struct pcache *pc);
/* What one page of page_size bytes asks the allocator for (site
 * cache_page): its data and its record. A pure function, for callers that
 * size things by it before the cache exists (a policy's reserve, the
 * too-small-to-fail threshold). */
size_t pcache_page_alloc_size(size_t page_size);
/* Change dirty_limit, clean_limit, writeback_ms, writers_unthrottled and
 * writeback_delay_us at run time (page_size and buffered_only are fixed at
 * create and ignored here); the writeback
 * thread uses them on its next pass, which this call starts at once, and
 * clean pages past a lowered clean_limit go at once. */
void pcache_set_config(struct pcache *pc, const struct pcache_config *config);

/* Set up / tear down a file's cache state. fd is the backing file (the
 * cache does not close it); size its current size. */
void pcache_file_init(struct pcache *pc, struct pcache_file *f, int fd, off_t size, uint64_t id);
/* Drops every page; the file must have no dirty pages (write them back or
 * accept the loss first: see pcache_file_discard). If some are left they
 * are dropped with a message on stderr, and the file leaves the dirty list
 * without an ops->put (it is being destroyed). Never calls ops. */
void pcache_file_destroy(struct pcache_file *f);
bool pcache_file_is_dirty(struct pcache_file *f);
/* Drop all pages, dirty ones too, unwritten (the file is gone for good).
 * If the file was dirty, its dirty reference is put (after every cache lock
 * is dropped). The file stays usable; pcache_file_destroy it after. */
void pcache_file_discard(struct pcache_file *f);

/*
 * Cache len bytes at off. Returns the bytes cached (len, or fewer when an
 * allocation failed part-way: a short write), or a negative errno
 * (-ENOMEM when nothing could be cached). Follows the policy's verdicts:
 * RETRY drops f->lock, reclaims, backs off and resumes where it stopped.
 */
ssize_t pcache_write(struct pcache_file *f, const void *buf, size_t len, off_t off);
/* Read through the cache (dirty and cached pages over the backing file).
 * Returns bytes read (0 at EOF) or a negative errno. */
ssize_t pcache_read(struct pcache_file *f, void *buf, size_t len, off_t off);
/* Change the size: the backing file first, then the cache (pages past the
 * new end are dropped, the tail of the last page is zeroed). A failure
 * changes nothing: the backing file's error (EPERM on an immutable file)
 * is returned with every cached byte kept. Writeback in flight is waited
 * out and none starts past the new end until the cache is cut, so no late
 * write grows the backing file again. Without a writable f->fd the backing
 * file is truncated by path (the daemon's own permission). */
int pcache_truncate(struct pcache_file *f, off_t size);
/* Write back the file's dirty pages (no fsync). 0 or negative errno. */
int pcache_flush_file(struct pcache_file *f);
/*
 * Write back, then fsync (fdatasync if datasync) the backing file, for an
 * open file description whose errseq cursor is *seen (from
 * pcache_file_errseq_sample at open; advanced here).
 * 0: every byte written to the file before the call, through any
 * descriptor, is in the backing file and synced.
 * -EIO, -ENOSPC, ... (the backing store's errno): a backing write or fsync
 * failed since this description last asked (here or in the background),
 * even if a later retry wrote the data; reported once per description.
 * -ENOMEM: this call's own writeback could get no buffer under the policy;
 * the data stays dirty and nothing is lost: call again.
 * A backing error takes precedence over -ENOMEM.
 */
int pcache_fsync_handle(struct pcache_file *f, bool datasync, pcache_errseq_t *seen);
/* The cursor of a new open file description: an error no fsync has
 * reported yet is still ahead of it, errors already reported are not. */
pcache_errseq_t pcache_file_errseq_sample(struct pcache_file *f);
/* pcache_fsync_handle for a caller without a description of its own: it
 * reports the errors no fsync has reported yet. */
int pcache_fsync(struct pcache_file *f, bool datasync);
/* Forget cached pages in [off, off+len) after writing them back (for
 * fallocate punch-hole and the like). */
int pcache_invalidate_range(struct pcache_file *f, off_t off, off_t len);
/* Size and mtime as applications should see them (for getattr). has_mtime
 * is true once the file was written, truncated or had its mtime set
 * through the cache: then *mtime (CLOCK_REALTIME) is the time of the last
 * of those and overrides the backing file's, which writeback moves. After
 * writeback the cache puts it back on the backing file (futimens), where
 * the process may (it owns the file or has CAP_FOWNER). */
void pcache_file_attr(struct pcache_file *f, off_t *size, struct timespec *mtime, bool *has_mtime);
/* Set the backing file's times (futimens: UTIME_NOW and UTIME_OMIT work)
 * and, unless tv[1] is UTIME_OMIT, make the resulting mtime the cache's:
 * writeback still pending does not move it. 0 or -errno. */
int pcache_file_set_times(struct pcache_file *f, const struct timespec tv[2]);
/* Do the file's I/O through fd from now on (the caller closes the old one
 * after). With if_clean, only while no page is unwritten: -EBUSY else. A
 * file with dirty pages must keep a writable fd. */
int pcache_file_set_fd(struct pcache_file *f, int fd, bool if_clean);

/* ---- whole cache ---- */
/* Wait while the bytes dirty or under writeback are past dirty_limit, until
 * writeback brings them under (pcache_write calls it first). The caller
 * must hold no lock: the wait is for other threads. Returns at once when
 * no writeback thread runs, when writeback is failing, or when a while
 * has passed without a page written: waiting would not help, and the
 * policy decides what an allocation past the budget meets. */
void pcache_balance_dirty(struct pcache *pc);
/* Write back everything; first error or 0. */
int pcache_sync_all(struct pcache *pc);
/* Drop clean pages (drop_caches). Returns bytes freed. */
size_t pcache_drop_clean(struct pcache *pc);

struct pcache_usage {
	uint64_t cached_bytes;	   /* page bytes held, dirty or clean */
	uint64_t dirty_bytes;	   /* page bytes of dirty pages (whole pages, not ranges) */
	uint64_t writeback_bytes;  /* under I/O now */
	uint64_t pages_written;	   /* by writeback and fsync, since create */
	uint64_t writeback_errors; /* failed writeback passes (I/O or buffer allocation;
				    * counted even when a no-allocation fallback then
				    * wrote the data) */
	uint64_t direct_bytes;	   /* of the bytes written back, those written with O_DIRECT */
	uint64_t throttled_writes; /* writes that waited at dirty_limit */
	uint64_t throttled_us;	   /* time they waited, in total */
	uint64_t fills;		   /* reads from the backing file into a cached page */
	uint64_t fill_bytes;	   /* the bytes they asked for */
};
void pcache_usage_read(struct pcache *pc, struct pcache_usage *out);

/*
 * Call fn for each dirty byte range of each dirty file: (file id, offset,
 * length). Ranges of one file come in ascending order, adjacent ones
 * merged; pages under writeback count as dirty (not yet known written).
 * For the `dirty` control file and the crash tests.
 * fn runs with that file's pages_lock held (and a reference on the file):
 * it must not call into the cache, and may allocate only with ALLOC_NOFS.
 */
typedef void (*pcache_dirty_fn)(void *data, uint64_t id, off_t off, off_t len);
void pcache_for_each_dirty(struct pcache *pc, pcache_dirty_fn fn, void *data);

#endif /* PFS_PCACHE_H */
