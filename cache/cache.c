/*
 * The page cache as a whole: creation and teardown, the per-file state's
 * life cycle, the page state transitions that move accounting, and the
 * read-only views (usage, attributes, the dirty ranges).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "pcache_i.h"

uint64_t _pcache_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

unsigned _pcache_writeback_ms(const struct pcache *pc)
{
	return __atomic_load_n(&pc->writeback_ms, __ATOMIC_RELAXED);
}

uint64_t _pcache_dirty_limit(struct pcache *pc)
{
	uint64_t limit, balloon, set = __atomic_load_n(&pc->dirty_limit, __ATOMIC_RELAXED);

	if (set)
		return set;
	/* Follow the budget as it changes at run time (mem_limit, balloon). */
	limit = alloc_mem_limit(pc->alloc);
	if (!limit)
		return PCACHE_DEFAULT_DIRTY_LIMIT;
	balloon = alloc_balloon(pc->alloc);
	limit = limit > balloon ? limit - balloon : 0;
	return limit / 2 ? limit / 2 : pc->page_size;
}

uint64_t _pcache_clean_limit(struct pcache *pc)
{
	uint64_t set = __atomic_load_n(&pc->clean_limit, __ATOMIC_RELAXED);

	if (set)
		return set;
	/* With a budget, reclaim drops clean pages when the budget needs
	 * them; without one, nothing would, and the cache would grow with
	 * every byte written (a second copy of the backing fs's own cache,
	 * in memory that is never reused). */
	return alloc_mem_limit(pc->alloc) ? UINT64_MAX : PCACHE_DEFAULT_CLEAN_LIMIT;
}

void _pcache_get(struct pcache *pc, struct pcache_file *f)
{
	if (pc->ops.get)
		pc->ops.get(f);
}

/*
 * Writeback moved the backing file's mtime to the time it wrote: once the
 * file is clean, put the last write's time back. Before the put, which may
 * be the last (and free the file). A failure (EPERM: neither the owner nor
 * CAP_FOWNER) leaves the backing file as it is; pcache_file_attr still
 * reports the write's time.
 */
void _pcache_mtime_stamp(struct pcache_file *f)
{
	struct timespec tv[2] = {{.tv_nsec = UTIME_OMIT}, {0}};
	bool stamp;

	pthread_mutex_lock(&f->pages_lock);
	stamp = f->mtime_unstamped && !f->dirty_pages;
	pthread_mutex_unlock(&f->pages_lock);
	if (!stamp)
		return;
	pthread_mutex_lock(&f->stamp_lock);
	pthread_mutex_lock(&f->pages_lock);
	stamp = f->mtime_unstamped && !f->dirty_pages;
	tv[1] = f->mtime;
	pthread_mutex_unlock(&f->pages_lock);
	if (stamp)
		futimens(f->fd, tv);
	pthread_mutex_lock(&f->pages_lock);
	/* A write since then stamps again when it is written back. */
	if (stamp && !f->dirty_pages && f->mtime.tv_sec == tv[1].tv_sec &&
	    f->mtime.tv_nsec == tv[1].tv_nsec)
		f->mtime_unstamped = false;
	pthread_mutex_unlock(&f->pages_lock);
	pthread_mutex_unlock(&f->stamp_lock);
}

void _pcache_put(struct pcache *pc, struct pcache_file *f)
{
	_pcache_mtime_stamp(f);
	if (pc->ops.put)
		pc->ops.put(f);
}

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
	pthread_condattr_t cattr;
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
	pc->dirty_limit = config ? config->dirty_limit : 0;
	pc->clean_limit = config ? config->clean_limit : 0;
	pc->writeback_ms =
		config && config->writeback_ms ? config->writeback_ms : PCACHE_DEFAULT_WRITEBACK_MS;
	pc->writers_unthrottled = config && config->writers_unthrottled;
	pc->writeback_delay_us = config ? config->writeback_delay_us : 0;
	if (ops)
		pc->ops = *ops;
	pthread_mutex_init(&pc->dirty_lock, NULL);
	pthread_mutex_init(&pc->sync_lock, NULL);
	pthread_mutex_init(&pc->list_lock, NULL);
	pthread_mutex_init(&pc->lru_lock, NULL);
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&pc->wb_wake, &cattr);
	pthread_cond_init(&pc->dirty_drained, &cattr);
	pthread_condattr_destroy(&cattr);
	atomic_init(&pc->wb_urgent, false);
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
	pthread_cond_destroy(&pc->dirty_drained);
	pthread_cond_destroy(&pc->wb_wake);
	pthread_mutex_destroy(&pc->lru_lock);
	pthread_mutex_destroy(&pc->list_lock);
	pthread_mutex_destroy(&pc->sync_lock);
	pthread_mutex_destroy(&pc->dirty_lock);
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
	_pcache_wb_wake(pc); /* the next pass uses them */
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

/* ---- the dirty-file list (dirty_lock held) ---- */

static void dirty_list_append(struct pcache *pc, struct pcache_file *f)
{
	f->dirty_next = NULL;
	f->dirty_prev = pc->dirty_tail;
	if (pc->dirty_tail)
		pc->dirty_tail->dirty_next = f;
	else
		pc->dirty_head = f;
	pc->dirty_tail = f;
	f->on_dirty_list = true;
}

static void dirty_list_unlink(struct pcache *pc, struct pcache_file *f)
{
	if (f->dirty_prev)
		f->dirty_prev->dirty_next = f->dirty_next;
	else
		pc->dirty_head = f->dirty_next;
	if (f->dirty_next)
		f->dirty_next->dirty_prev = f->dirty_prev;
	else
		pc->dirty_tail = f->dirty_prev;
	f->dirty_next = f->dirty_prev = NULL;
	f->on_dirty_list = false;
}

void _pcache_dirty_requeue(struct pcache *pc, struct pcache_file *f)
{
	if (!f->on_dirty_list || pc->dirty_tail == f)
		return;
	dirty_list_unlink(pc, f);
	dirty_list_append(pc, f);
}

struct pcache_file *_pcache_dirty_next_unvisited(struct pcache *pc, enum pcache_pass pass,
						 uint64_t seq)
{
	struct pcache_file *f;

	pthread_mutex_lock(&pc->dirty_lock);
	for (f = pc->dirty_head; f; f = f->dirty_next)
		if (f->index->pass_seq[pass] != seq)
			break;
	if (f) {
		f->index->pass_seq[pass] = seq;
		_pcache_get(pc, f);
	}
	pthread_mutex_unlock(&pc->dirty_lock);
	return f;
}

/* ---- page state transitions (pages_lock held) ---- */

void _pcache_page_mark_dirty(struct pcache_file *f, struct pcache_page *p, uint64_t now)
{
	struct pcache *pc = f->cache;

	p->flags |= PCACHE_PAGE_DIRTY;
	p->dirtied_ns = now;
	atomic_fetch_add(&pc->dirty_bytes, pc->page_size);
	_pcache_lru_remove(pc, p);
	_pcache_uw_add(f->index, p);
	if (f->dirty_pages++ == 0) {
		/* The dirty reference: the daemon's inode outlives its data. */
		_pcache_get(pc, f);
		pthread_mutex_lock(&pc->dirty_lock);
		f->dirtied_ns = now;
		dirty_list_append(pc, f);
		pthread_mutex_unlock(&pc->dirty_lock);
	}
	if (atomic_load(&pc->dirty_bytes) > _pcache_dirty_limit(pc))
		_pcache_wb_wake(pc);
}

void _pcache_page_mark_clean(struct pcache_file *f, struct pcache_page *p)
{
	struct pcache *pc = f->cache;

	if (p->flags & PCACHE_PAGE_DIRTY)
		atomic_fetch_sub(&pc->dirty_bytes, pc->page_size);
	p->flags &= (uint16_t) ~(PCACHE_PAGE_DIRTY | PCACHE_PAGE_WRITEBACK);
	_pcache_uw_remove(f->index, p);
	f->dirty_pages--;
	if (p->flags & PCACHE_PAGE_UPTODATE)
		p->from = p->to = 0;
	_pcache_lru_add(pc, p);
}

void _pcache_page_forget(struct pcache_file *f, struct pcache_page *p, struct pcache_page **freed)
{
	struct pcache *pc = f->cache;

	if (p->flags & PCACHE_PAGE_DIRTY) {
		atomic_fetch_sub(&pc->dirty_bytes, pc->page_size);
		_pcache_uw_remove(f->index, p);
		f->dirty_pages--;
	}
	_pcache_lru_remove(pc, p);
	_pcache_index_remove(f->index, p);
	atomic_fetch_sub(&pc->cached_bytes, pc->page_size);
	p->hash_next = *freed;
	*freed = p;
}

void _pcache_page_list_free(struct pcache *pc, struct pcache_page *list)
{
	while (list) {
		struct pcache_page *next = list->hash_next;

		alloc_free(pc->alloc, list);
		list = next;
	}
}

bool _pcache_file_undirty(struct pcache_file *f)
{
	struct pcache *pc = f->cache;
	bool put = false;

	if (f->dirty_pages)
		return false;
	pthread_mutex_lock(&pc->dirty_lock);
	if (f->on_dirty_list) {
		dirty_list_unlink(pc, f);
		put = true;
	}
	pthread_mutex_unlock(&pc->dirty_lock);
	return put;
}

void _pcache_wait_writeback(struct pcache_file *f)
{
	while (f->index && f->index->nr_writeback)
		pthread_cond_wait(&f->writeback_done, &f->pages_lock);
}

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
		_pcache_put(pc, f);
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
	pthread_mutex_lock(&pc->dirty_lock);
	if (f->on_dirty_list)
		dirty_list_unlink(pc, f);
	pthread_mutex_unlock(&pc->dirty_lock);
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

bool pcache_file_is_dirty(struct pcache_file *f)
{
	bool dirty;

	pthread_mutex_lock(&f->pages_lock);
	dirty = f->dirty_pages != 0;
	pthread_mutex_unlock(&f->pages_lock);
	return dirty;
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
}

void pcache_for_each_dirty(struct pcache *pc, pcache_dirty_fn fn, void *data)
{
	struct pcache_file *f;
	uint64_t seq;

	pthread_mutex_lock(&pc->list_lock);
	seq = ++pc->pass_seq[PCACHE_PASS_LIST];
	while ((f = _pcache_dirty_next_unvisited(pc, PCACHE_PASS_LIST, seq))) {
		off_t run_off = 0, run_len = 0;

		pthread_mutex_lock(&f->pages_lock);
		if (f->index) {
			_pcache_uw_sort(f->index);
			for (struct pcache_page *p = f->index->uw_head; p; p = p->uw_next) {
				off_t off = (off_t)(p->index << pc->page_shift) + p->from;
				off_t len = (off_t)(p->to - p->from);

				if (run_len && run_off + run_len == off) {
					run_len += len;
					continue;
				}
				if (run_len)
					fn(data, f->id, run_off, run_len);
				run_off = off;
				run_len = len;
			}
			if (run_len)
				fn(data, f->id, run_off, run_len);
		}
		pthread_mutex_unlock(&f->pages_lock);
		_pcache_put(pc, f);
	}
	pthread_mutex_unlock(&pc->list_lock);
}
