/*
 * The page cache as a whole: creation, run-time configuration, teardown
 * and usage; and a file's cache state from init to destroy, with the
 * attributes it keeps for the daemon (size, mtime, the backing fd).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "dirty_i.h"
#include "index_i.h"
#include "lru_i.h"
#include "page_i.h"
#include "reclaim_i.h"
#include "writeback_i.h"

static unsigned page_shift_of(size_t size)
{
	unsigned shift = 0;

	while (((size_t)1 << shift) < size)
		shift++;
	return shift;
}

struct pcache *pcache_create(struct alloc *a, const struct pcache_config *config,
			     const struct pcache_file_ops *ops)
{
	struct pcache *pc;
	size_t psize = config && config->page_size ? config->page_size : PCACHE_DEFAULT_PAGE_SIZE;

	if (!a || psize < PCACHE_MIN_PAGE_SIZE || psize > PCACHE_MAX_PAGE_SIZE ||
	    (psize & (psize - 1))) {
		errno = EINVAL;
		return NULL;
	}
	/* The cache's own record is bookkeeping, not a page. */
	pc = alloc_malloc(a, ALLOC_SITE_OTHER, sizeof(*pc), ALLOC_ZERO);
	if (!pc) {
		errno = ENOMEM;
		return NULL;
	}
	memset(pc, 0, sizeof(*pc));
	pc->alloc = a;
	pc->page_size = psize;
	pc->page_shift = page_shift_of(psize);
	pc->block_shift = page_shift_of(psize / PCACHE_PAGE_BLOCKS);
	if (pc->block_shift < page_shift_of(PCACHE_MIN_BLOCK_SIZE))
		pc->block_shift = page_shift_of(PCACHE_MIN_BLOCK_SIZE);
	if (pc->block_shift > pc->page_shift)
		pc->block_shift = pc->page_shift;
	pc->nr_blocks = 1u << (pc->page_shift - pc->block_shift);
	pc->dirty_limit = config ? config->dirty_limit : 0;
	pc->clean_limit = config ? config->clean_limit : 0;
	pc->writeback_ms =
		config && config->writeback_ms ? config->writeback_ms : PCACHE_DEFAULT_WRITEBACK_MS;
	pc->writers_unthrottled = config && config->writers_unthrottled;
	pc->writeback_delay_us = config ? config->writeback_delay_us : 0;
	if (ops)
		pc->ops = *ops;
	_pcache_lru_init(&pc->lru);
	_pcache_dirty_init(&pc->dirty);
	_pcache_wb_init(&pc->wb);
	atomic_init(&pc->direct_off, config && config->buffered_only);
	alloc_set_reclaimer(a, _pcache_reclaim, pc);
	return pc;
}

void pcache_destroy(struct pcache *pc)
{
	long left;

	if (!pc)
		return;
	pcache_sync_all(pc);
	pcache_writeback_stop(pc);
	alloc_set_reclaimer(pc->alloc, NULL, NULL);
	left = atomic_load(&pc->nfiles);
	if (left)
		pfs_log(LOG_ERR, "cache destroyed with %ld file(s) still attached", left);
	_pcache_wb_destroy(&pc->wb);
	_pcache_dirty_destroy(&pc->dirty);
	_pcache_lru_destroy(&pc->lru);
	alloc_free(pc->alloc, pc);
}

void pcache_set_config(struct pcache *pc, const struct pcache_config *config)
{
	__atomic_store_n(&pc->dirty_limit, config->dirty_limit, __ATOMIC_RELAXED);
	__atomic_store_n(&pc->clean_limit, config->clean_limit, __ATOMIC_RELAXED);
	__atomic_store_n(&pc->writeback_ms,
			 config->writeback_ms ? config->writeback_ms : PCACHE_DEFAULT_WRITEBACK_MS,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&pc->writers_unthrottled, config->writers_unthrottled, __ATOMIC_RELAXED);
	__atomic_store_n(&pc->writeback_delay_us, config->writeback_delay_us, __ATOMIC_RELAXED);
	_pcache_clean_trim(pc);
	_pcache_dirty_wake_writeback(pc); /* the next pass uses them */
}

size_t pcache_page_size(const struct pcache *pc)
{
	return pc->page_size;
}

void pcache_file_init(struct pcache *pc, struct pcache_file *f, int fd, off_t size, uint64_t id)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->pages_lock, NULL);
	pthread_mutex_init(&f->stamp_lock, NULL);
	pthread_cond_init(&f->writeback_done, NULL);
	f->cache = pc;
	f->fd = fd;
	f->wb_stop_index = UINT64_MAX;
	f->size = size;
	f->id = id;
	atomic_fetch_add(&pc->nfiles, 1);
}

/* ---- the dirty-file list (dirty.lock held) ---- */

/* ---- page state transitions (pages_lock held) ---- */

/* ---- file teardown ---- */

static void drop_page_cb(struct pcache_file *f, struct pcache_page *p, void *data)
{
	_pcache_page_forget(f, p, data);
}

/* pages_lock held, no page under writeback: unlink every page. */
static struct pcache_page *file_drop_all(struct pcache_file *f)
{
	struct pcache_page *list = NULL;

	_pcache_index_for_each(f->index, drop_page_cb, f, &list);
	return list;
}

void pcache_file_discard(struct pcache_file *f)
{
	struct pcache *pc = f->cache;
	struct pcache_page *list;
	bool put;

	pthread_mutex_lock(&f->lock);
	pthread_mutex_lock(&f->pages_lock);
	_pcache_wait_writeback(f);
	list = file_drop_all(f);
	put = _pcache_file_undirty(f);
	pthread_mutex_unlock(&f->pages_lock);
	pthread_mutex_unlock(&f->lock);
	_pcache_page_list_free(pc, list);
	if (put)
		_pcache_file_put(f);
}

void pcache_file_destroy(struct pcache_file *f)
{
	struct pcache *pc = f->cache;
	struct pcache_page *list;

	pthread_mutex_lock(&f->pages_lock);
	_pcache_wait_writeback(f);
	if (f->dirty_pages)
		pfs_log(LOG_ERR,
			"cache file %llu destroyed with %llu dirty page(s): their data is lost",
			(unsigned long long)f->id, (unsigned long long)f->dirty_pages);
	list = file_drop_all(f);
	/* Being destroyed: its dirty reference is moot, no put. */
	_pcache_dirty_list_leave(f);
	_pcache_index_destroy(pc, f->index);
	f->index = NULL;
	pthread_mutex_unlock(&f->pages_lock);
	_pcache_page_list_free(pc, list);
	pthread_cond_destroy(&f->writeback_done);
	pthread_mutex_destroy(&f->stamp_lock);
	pthread_mutex_destroy(&f->pages_lock);
	pthread_mutex_destroy(&f->lock);
	atomic_fetch_sub(&pc->nfiles, 1);
}

void pcache_file_attr(struct pcache_file *f, off_t *size, struct timespec *mtime, bool *has_mtime)
{
	pthread_mutex_lock(&f->pages_lock);
	if (size)
		*size = f->size;
	if (mtime)
		*mtime = f->mtime;
	if (has_mtime)
		*has_mtime = f->mtime_known;
	pthread_mutex_unlock(&f->pages_lock);
}

int pcache_file_set_times(struct pcache_file *f, const struct timespec tv[2])
{
	struct stat st;
	int err = 0;

	/* Under stamp_lock, so that a stamp of an older write's time cannot
	 * land after this. */
	pthread_mutex_lock(&f->stamp_lock);
	if (futimens(f->fd, tv) < 0 || (tv[1].tv_nsec != UTIME_OMIT && fstat(f->fd, &st) < 0)) {
		err = -errno;
		goto out_unlock;
	}
	if (tv[1].tv_nsec == UTIME_OMIT)
		goto out_unlock;
	pthread_mutex_lock(&f->pages_lock);
	f->mtime = st.st_mtim;
	f->mtime_known = true;
	/* Writeback still to come moves it again: stamp after. */
	f->mtime_unstamped = f->dirty_pages != 0;
	pthread_mutex_unlock(&f->pages_lock);
out_unlock:
	pthread_mutex_unlock(&f->stamp_lock);
	return err;
}

int pcache_file_set_fd(struct pcache_file *f, int fd, bool if_clean)
{
	int err = 0;

	pthread_mutex_lock(&f->lock);
	pthread_mutex_lock(&f->stamp_lock);
	pthread_mutex_lock(&f->pages_lock);
	if (if_clean && f->dirty_pages) {
		err = -EBUSY;
	} else {
		/* Writeback reads f->fd without a lock while its pages are
		 * under I/O: wait those out; later passes see the new fd. */
		_pcache_wait_writeback(f);
		f->fd = fd;
	}
	pthread_mutex_unlock(&f->pages_lock);
	pthread_mutex_unlock(&f->stamp_lock);
	pthread_mutex_unlock(&f->lock);
	return err;
}

/* ---- whole-cache views ---- */

void pcache_usage_read(struct pcache *pc, struct pcache_usage *out)
{
	out->cached_bytes = atomic_load(&pc->cached_bytes);
	out->dirty_bytes = atomic_load(&pc->dirty_bytes);
	out->writeback_bytes = atomic_load(&pc->writeback_bytes);
	out->pages_written = atomic_load(&pc->pages_written);
	out->writeback_errors = atomic_load(&pc->writeback_errors);
	out->direct_bytes = atomic_load(&pc->direct_bytes);
	out->throttled_writes = atomic_load(&pc->throttled_writes);
	out->throttled_us = atomic_load(&pc->throttled_ns) / 1000;
	out->fills = atomic_load(&pc->fills);
	out->fill_bytes = atomic_load(&pc->fill_bytes);
}
