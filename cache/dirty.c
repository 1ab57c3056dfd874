/*
 * Unwritten data: which files have it, which of their pages hold it, how
 * much there is and how much may be.
 *
 * A page is unwritten while DIRTY or under WRITEBACK: it sits on its
 * file's unwritten list (under pages_lock, sorted lazily into file order
 * for writeback), off the LRU. A file with any unwritten page is on the
 * dirty-file list (under dirty.lock, oldest first, which the writeback
 * thread and reclaim walk) and holds one reference on itself (ops->get),
 * so the daemon's inode outlives its data. Only the transitions here move
 * a page between the unwritten list and the LRU, or a file on or off the
 * dirty list (writeback moves pages DIRTY <-> WRITEBACK, both unwritten).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dirty_i.h"
#include "index_i.h"
#include "lru_i.h"

void _pcache_dirty_init(struct pcache_dirty *d)
{
	pthread_condattr_t cattr;

	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->list_lock, NULL);
	pthread_condattr_init(&cattr);
	/* The writeback thread's timed waits count in CLOCK_MONOTONIC. */
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&d->wake, &cattr);
	pthread_condattr_destroy(&cattr);
}

void _pcache_dirty_destroy(struct pcache_dirty *d)
{
	pthread_cond_destroy(&d->wake);
	pthread_mutex_destroy(&d->list_lock);
	pthread_mutex_destroy(&d->lock);
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

/* ---- the dirty reference ---- */

void _pcache_file_get(struct pcache_file *f)
{
	struct pcache *pc = f->cache;

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

void _pcache_file_put(struct pcache_file *f)
{
	struct pcache *pc = f->cache;

	_pcache_mtime_stamp(f);
	if (pc->ops.put)
		pc->ops.put(f);
}

/* ---- the dirty-file list (dirty.lock) ---- */

/* dirty.lock held. */
static void dirty_list_append(struct pcache *pc, struct pcache_file *f)
{
	f->dirty_next = NULL;
	f->dirty_prev = pc->dirty.tail;
	if (pc->dirty.tail)
		pc->dirty.tail->dirty_next = f;
	else
		pc->dirty.head = f;
	pc->dirty.tail = f;
	f->on_dirty_list = true;
}

/* dirty.lock held. */
static void dirty_list_unlink(struct pcache *pc, struct pcache_file *f)
{
	if (f->dirty_prev)
		f->dirty_prev->dirty_next = f->dirty_next;
	else
		pc->dirty.head = f->dirty_next;
	if (f->dirty_next)
		f->dirty_next->dirty_prev = f->dirty_prev;
	else
		pc->dirty.tail = f->dirty_prev;
	f->dirty_next = f->dirty_prev = NULL;
	f->on_dirty_list = false;
}

bool _pcache_file_undirty(struct pcache_file *f)
{
	struct pcache *pc = f->cache;
	bool put = false;

	if (f->dirty_pages)
		return false;
	pthread_mutex_lock(&pc->dirty.lock);
	if (f->on_dirty_list) {
		dirty_list_unlink(pc, f);
		put = true;
	}
	pthread_mutex_unlock(&pc->dirty.lock);
	return put;
}

void _pcache_dirty_list_leave(struct pcache_file *f)
{
	struct pcache *pc = f->cache;

	pthread_mutex_lock(&pc->dirty.lock);
	if (f->on_dirty_list)
		dirty_list_unlink(pc, f);
	pthread_mutex_unlock(&pc->dirty.lock);
}

struct pcache_file *_pcache_dirty_first(struct pcache *pc)
{
	struct pcache_file *f;

	pthread_mutex_lock(&pc->dirty.lock);
	f = pc->dirty.head;
	if (f)
		_pcache_file_get(f);
	pthread_mutex_unlock(&pc->dirty.lock);
	return f;
}

unsigned _pcache_dirty_nr_files(struct pcache *pc)
{
	unsigned n = 0;

	pthread_mutex_lock(&pc->dirty.lock);
	for (struct pcache_file *f = pc->dirty.head; f; f = f->dirty_next)
		n++;
	pthread_mutex_unlock(&pc->dirty.lock);
	return n;
}

struct pcache_file *_pcache_dirty_next_due(struct pcache *pc, uint64_t now, uint64_t age_ns,
					   bool force)
{
	for (struct pcache_file *f = pc->dirty.head; f; f = f->dirty_next) {
		if (f->index->retry_after_ns > now)
			continue;
		if (force || f->dirtied_ns + age_ns <= now)
			return f;
	}
	return NULL;
}

/* dirty.lock held. */
static void dirty_list_requeue(struct pcache *pc, struct pcache_file *f)
{
	if (!f->on_dirty_list || pc->dirty.tail == f)
		return;
	dirty_list_unlink(pc, f);
	dirty_list_append(pc, f);
}

void _pcache_dirty_requeue(struct pcache_file *f)
{
	struct pcache *pc = f->cache;

	pthread_mutex_lock(&pc->dirty.lock);
	dirty_list_requeue(pc, f);
	pthread_mutex_unlock(&pc->dirty.lock);
}

void _pcache_dirty_requeue_aged(struct pcache_file *f, uint64_t retry_at_ns)
{
	struct pcache *pc = f->cache;

	pthread_mutex_lock(&f->pages_lock);
	pthread_mutex_lock(&pc->dirty.lock);
	if (f->on_dirty_list) {
		uint64_t oldest = UINT64_MAX;

		for (struct pcache_page *p = f->index->uw_head; p; p = p->uw_next)
			if ((p->flags & PCACHE_PAGE_DIRTY) && p->dirtied_ns < oldest)
				oldest = p->dirtied_ns;
		if (oldest != UINT64_MAX)
			f->dirtied_ns = oldest;
		else
			/* Only pages someone else is writing: look again later,
			 * not in a hot loop. */
			f->index->retry_after_ns = retry_at_ns;
		dirty_list_requeue(pc, f);
	}
	pthread_mutex_unlock(&pc->dirty.lock);
	pthread_mutex_unlock(&f->pages_lock);
}

void _pcache_dirty_retry_after(struct pcache_file *f, uint64_t retry_at_ns)
{
	struct pcache *pc = f->cache;

	pthread_mutex_lock(&pc->dirty.lock);
	if (f->index)
		f->index->retry_after_ns = retry_at_ns;
	pthread_mutex_unlock(&pc->dirty.lock);
}

struct pcache_file *_pcache_dirty_next_unvisited(struct pcache *pc, enum pcache_pass pass,
						 uint64_t seq)
{
	struct pcache_file *f;

	pthread_mutex_lock(&pc->dirty.lock);
	for (f = pc->dirty.head; f; f = f->dirty_next)
		if (f->index->pass_seq[pass] != seq)
			break;
	if (f) {
		f->index->pass_seq[pass] = seq;
		_pcache_file_get(f);
	}
	pthread_mutex_unlock(&pc->dirty.lock);
	return f;
}

void _pcache_dirty_wake_writeback(struct pcache *pc)
{
	/* Under dirty.lock, so the thread cannot miss it between its check
	 * and its wait. */
	pthread_mutex_lock(&pc->dirty.lock);
	pthread_cond_signal(&pc->dirty.wake);
	pthread_mutex_unlock(&pc->dirty.lock);
}

/* ---- the unwritten pages of one file (pages_lock) ---- */

void _pcache_uw_add(struct pcache_index *ix, struct pcache_page *p)
{
	p->uw_next = NULL;
	p->uw_prev = ix->uw_tail;
	if (ix->uw_tail) {
		if (ix->uw_tail->index > p->index)
			ix->uw_sorted = false;
		ix->uw_tail->uw_next = p;
	} else {
		ix->uw_head = p;
	}
	ix->uw_tail = p;
}

void _pcache_uw_remove(struct pcache_index *ix, struct pcache_page *p)
{
	if (p->uw_prev)
		p->uw_prev->uw_next = p->uw_next;
	else
		ix->uw_head = p->uw_next;
	if (p->uw_next)
		p->uw_next->uw_prev = p->uw_prev;
	else
		ix->uw_tail = p->uw_prev;
	p->uw_next = p->uw_prev = NULL;
}

static struct pcache_page *uw_merge(struct pcache_page *a, struct pcache_page *b)
{
	struct pcache_page head = {0}, *t = &head;

	while (a && b) {
		if (a->index <= b->index) {
			t->uw_next = a;
			a = a->uw_next;
		} else {
			t->uw_next = b;
			b = b->uw_next;
		}
		t = t->uw_next;
	}
	t->uw_next = a ? a : b;
	return head.uw_next;
}

/* Bottom-up merge sort of the singly linked view, then relink uw_prev:
 * no allocation, O(n log n), and done only when an insertion broke order. */
void _pcache_uw_sort(struct pcache_index *ix)
{
	struct pcache_page *bins[64] = {0}, *p, *next, *prev = NULL;

	if (ix->uw_sorted)
		return;
	for (p = ix->uw_head; p; p = next) {
		unsigned i;

		next = p->uw_next;
		p->uw_next = NULL;
		for (i = 0; i < 63 && bins[i]; i++) {
			p = uw_merge(bins[i], p);
			bins[i] = NULL;
		}
		bins[i] = uw_merge(bins[i], p);
	}
	p = NULL;
	for (unsigned i = 0; i < 64; i++)
		p = uw_merge(bins[i], p);
	ix->uw_head = p;
	for (; p; p = p->uw_next) {
		p->uw_prev = prev;
		prev = p;
	}
	ix->uw_tail = prev;
	ix->uw_sorted = true;
}

/* ---- page transitions (pages_lock) ---- */

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
		_pcache_file_get(f);
		pthread_mutex_lock(&pc->dirty.lock);
		f->dirtied_ns = now;
		dirty_list_append(pc, f);
		pthread_mutex_unlock(&pc->dirty.lock);
	}
	if (atomic_load(&pc->dirty_bytes) > _pcache_dirty_limit(pc))
		_pcache_dirty_wake_writeback(pc);
}

void _pcache_page_mark_clean(struct pcache_file *f, struct pcache_page *p)
{
	struct pcache *pc = f->cache;

	if (p->flags & PCACHE_PAGE_DIRTY)
		atomic_fetch_sub(&pc->dirty_bytes, pc->page_size);
	p->flags &= (uint8_t) ~(PCACHE_PAGE_DIRTY | PCACHE_PAGE_WRITEBACK);
	_pcache_uw_remove(f->index, p);
	f->dirty_pages--;
	/* Written bytes of a block that is not valid are forgotten with the
	 * hull: a read fills the block again. */
	p->dirty = 0;
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
	_pcache_index_remove(f, p);
	p->hash_next = *freed;
	*freed = p;
}

/* ---- views ---- */

bool pcache_file_is_dirty(struct pcache_file *f)
{
	bool dirty;

	pthread_mutex_lock(&f->pages_lock);
	dirty = f->dirty_pages != 0;
	pthread_mutex_unlock(&f->pages_lock);
	return dirty;
}

void pcache_for_each_dirty(struct pcache *pc, pcache_dirty_fn fn, void *data)
{
	struct pcache_file *f;
	uint64_t seq;

	pthread_mutex_lock(&pc->dirty.list_lock);
	seq = ++pc->dirty.list_seq;
	while ((f = _pcache_dirty_next_unvisited(pc, PCACHE_PASS_LIST, seq))) {
		off_t run_off = 0, run_len = 0;

		pthread_mutex_lock(&f->pages_lock);
		if (f->index) {
			_pcache_uw_sort(f->index);
			for (struct pcache_page *p = f->index->uw_head; p; p = p->uw_next) {
				off_t base = (off_t)(p->index << pc->page_shift);
				uint32_t s, e;

				for (uint32_t at = 0; _pcache_page_dirty_run(pc, p, at, &s, &e);
				     at = e) {
					if (run_len && run_off + run_len == base + s) {
						run_len += e - s;
						continue;
					}
					if (run_len)
						fn(data, f->id, run_off, run_len);
					run_off = base + s;
					run_len = e - s;
				}
			}
			if (run_len)
				fn(data, f->id, run_off, run_len);
		}
		pthread_mutex_unlock(&f->pages_lock);
		_pcache_file_put(f);
	}
	pthread_mutex_unlock(&pc->dirty.list_lock);
}
