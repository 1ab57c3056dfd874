/*
 * pressurefs write-back page cache.
 *
 * write() is acknowledged once its bytes sit in this cache; a writeback
 * thread flushes dirty pages by age (writeback_ms) and by amount
 * (dirty_limit); fsync writes one file's dirty pages and fsyncs its backing
 * file. Every page and every buffer here comes from the allocator (sites
 * cache_page and writeback), so the policy decides what a write meets when
 * memory runs out. The cache never drops acknowledged data by itself: a
 * failed writeback leaves the pages dirty, is retried later, and its error
 * is reported by the next fsync of the file.
 *
 * No FUSE in here: the daemon (ops.c) maps requests to these calls, and the
 * unit tests drive them directly against real backing files.
 *
 * Locks (see the lock-order comment in fs/fs_i.h for the whole daemon):
 *   pcache_file.lock   like i_rwsem: serialises writers, truncate, fsync of
 *                      one file; allocation under it uses ALLOC_NOFS.
 *   pcache_file.pages_lock  the file's page index, page flags and dirty
 *                      ranges; held briefly, never across I/O or allocation.
 *   pcache.dirty_lock  the list of files with dirty pages, dirty byte count,
 *                      the writeback thread's wake-ups.
 *   pcache.lru_lock    the list of clean pages reclaim may drop.
 * Writeback takes only pages_lock (never pcache_file.lock), so a writer
 * waiting for memory under pcache_file.lock cannot stop writeback from
 * freeing it.
 */
#ifndef PFS_PCACHE_H
#define PFS_PCACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "alloc.h"

struct pcache;
struct pcache_page;
struct pcache_index; /* private: the page index of one file */

struct pcache_config {
	size_t page_size;	   /* power of two, 4 KiB .. 1 MiB */
	uint64_t dirty_limit;	   /* dirty bytes that start writeback at once (0 = mem_limit/2 or 64M) */
	unsigned writeback_ms;	   /* dirty pages older than this are written back */
};

/* How the cache keeps a file alive while it has dirty pages (the daemon's
 * inode refcount): get when the file gets its first dirty page or while the
 * writeback thread works on it, put when done. */
struct pcache_file_ops {
	void (*get)(struct pcache_file *f);
	void (*put)(struct pcache_file *f);
};

/* The cache state of one inode; embedded in the daemon's inode. */
struct pcache_file {
	pthread_mutex_t lock;	      /* see above: writers, truncate, fsync */
	pthread_mutex_t pages_lock;   /* see above: index, page flags, ranges */
	pthread_cond_t writeback_done; /* with pages_lock: a page left writeback */
	struct pcache *cache;
	struct pcache_index *index;   /* pages_lock */
	int fd;			      /* backing file, opened read-write by the daemon */
	off_t size;		      /* lock (read under pages_lock too): size as applications see it */
	struct timespec mtime;	      /* lock: time of the last cached write */
	uint64_t dirty_pages;	      /* pages_lock */
	int wb_error;		      /* pages_lock: first writeback error since the last fsync, 0 or -errno */
	uint64_t dirtied_ns;	      /* dirty_lock: when the file went from clean to dirty */
	struct pcache_file *dirty_next, *dirty_prev; /* dirty_lock: the dirty-file list */
	bool on_dirty_list;	      /* dirty_lock */
	uint64_t id;		      /* the daemon's inode number, for `dirty` and logs */
};

struct pcache *pcache_create(struct alloc *a, const struct pcache_config *config,
			     const struct pcache_file_ops *ops);
/* Writes everything back (pcache_sync_all), stops the thread, frees. */
void pcache_destroy(struct pcache *pc);
/* Start/stop the writeback thread (create does not start it, for tests). */
int pcache_writeback_start(struct pcache *pc);
void pcache_writeback_stop(struct pcache *pc);
size_t pcache_page_size(const struct pcache *pc);

/* Set up / tear down a file's cache state. fd is the backing file (the
 * cache does not close it); size its current size. */
void pcache_file_init(struct pcache *pc, struct pcache_file *f, int fd, off_t size, uint64_t id);
/* Drops every page; the file must have no dirty pages (write them back or
 * accept the loss first: see pcache_file_discard). */
void pcache_file_destroy(struct pcache_file *f);
bool pcache_file_is_dirty(struct pcache_file *f);
/* Drop all pages, dirty ones too, unwritten (the file is gone for good). */
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
/* Change the size: pages past it are dropped, the tail of the last page is
 * zeroed, and the backing file is truncated to match. */
int pcache_truncate(struct pcache_file *f, off_t size);
/* Write back the file's dirty pages (no fsync). 0 or negative errno. */
int pcache_flush_file(struct pcache_file *f);
/* Write back, then fsync (fdatasync if datasync) the backing file. Returns
 * the first error: its own, or one kept from an earlier writeback. */
int pcache_fsync(struct pcache_file *f, bool datasync);
/* Forget cached pages in [off, off+len) after writing them back (for
 * fallocate punch-hole and the like). */
int pcache_invalidate_range(struct pcache_file *f, off_t off, off_t len);
/* Size and mtime as applications should see them (for getattr). */
void pcache_file_attr(struct pcache_file *f, off_t *size, struct timespec *mtime, bool *has_mtime);

/* ---- whole cache ---- */
/* Write back everything; first error or 0. */
int pcache_sync_all(struct pcache *pc);
/* Drop clean pages (drop_caches). Returns bytes freed. */
size_t pcache_drop_clean(struct pcache *pc);

struct pcache_usage {
	uint64_t cached_bytes; /* page bytes held, dirty or clean */
	uint64_t dirty_bytes;
	uint64_t writeback_bytes; /* under I/O now */
	uint64_t pages_written;   /* by writeback and fsync, since create */
	uint64_t writeback_errors;
};
void pcache_usage_read(struct pcache *pc, struct pcache_usage *out);

/*
 * Call fn for each dirty byte range of each dirty file: (file id, offset,
 * length). Ranges of one file come in ascending order. For the `dirty`
 * control file and the crash tests.
 */
typedef void (*pcache_dirty_fn)(void *data, uint64_t id, off_t off, off_t len);
void pcache_for_each_dirty(struct pcache *pc, pcache_dirty_fn fn, void *data);

#endif /* PFS_PCACHE_H */
