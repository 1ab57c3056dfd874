/*
 * The clean pages, oldest first, and how many of them to keep.
 *
 * A page is on the LRU while it is cached and neither DIRTY nor under
 * WRITEBACK. Beyond clean_limit the oldest are dropped as soon as
 * writeback or a read adds more (_pcache_clean_trim), and reclaim drops
 * them when the allocator asks (_pcache_lru_shrink). on_lru changes only
 * under the page's pages_lock and lru.lock both, so a page can be checked
 * under either; shrinking, which holds lru.lock, only trylocks pages_lock.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "index_i.h"
#include "lru_i.h"
#include "page_i.h"

void _pcache_lru_init(struct pcache_lru *lru)
{
	memset(lru, 0, sizeof(*lru));
	pthread_mutex_init(&lru->lock, NULL);
}

void _pcache_lru_destroy(struct pcache_lru *lru)
{
	pthread_mutex_destroy(&lru->lock);
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

/* lru.lock held. */
static void lru_append(struct pcache *pc, struct pcache_page *p)
{
	p->lru_next = NULL;
	p->lru_prev = pc->lru.tail;
	if (pc->lru.tail)
		pc->lru.tail->lru_next = p;
	else
		pc->lru.head = p;
	pc->lru.tail = p;
	p->on_lru = true;
	__atomic_store_n(&pc->lru.count, pc->lru.count + 1, __ATOMIC_RELAXED);
}

void _pcache_lru_add(struct pcache *pc, struct pcache_page *p)
{
	pthread_mutex_lock(&pc->lru.lock);
	if (!p->on_lru)
		lru_append(pc, p);
	pthread_mutex_unlock(&pc->lru.lock);
}

static void lru_unlink(struct pcache *pc, struct pcache_page *p)
{
	if (p->lru_prev)
		p->lru_prev->lru_next = p->lru_next;
	else
		pc->lru.head = p->lru_next;
	if (p->lru_next)
		p->lru_next->lru_prev = p->lru_prev;
	else
		pc->lru.tail = p->lru_prev;
	p->lru_next = p->lru_prev = NULL;
	p->on_lru = false;
	__atomic_store_n(&pc->lru.count, pc->lru.count - 1, __ATOMIC_RELAXED);
}

/* lru.lock held: to the young end, staying on the LRU throughout (so that
 * on_lru only ever changes under both locks). */
static void lru_rotate(struct pcache *pc, struct pcache_page *p)
{
	if (pc->lru.tail == p)
		return;
	if (p->lru_prev)
		p->lru_prev->lru_next = p->lru_next;
	else
		pc->lru.head = p->lru_next;
	p->lru_next->lru_prev = p->lru_prev;
	p->lru_next = NULL;
	p->lru_prev = pc->lru.tail;
	pc->lru.tail->lru_next = p;
	pc->lru.tail = p;
}

void _pcache_lru_remove(struct pcache *pc, struct pcache_page *p)
{
	/* pages_lock held, and on_lru changes only under pages_lock and
	 * lru.lock both: a page not on the LRU costs no global lock. */
	if (!p->on_lru)
		return;
	pthread_mutex_lock(&pc->lru.lock);
	lru_unlink(pc, p);
	pthread_mutex_unlock(&pc->lru.lock);
}

size_t _pcache_lru_shrink(struct pcache *pc, size_t want)
{
	struct pcache_page *freed = NULL;
	size_t bytes = 0;
	uint64_t scan;

	pthread_mutex_lock(&pc->lru.lock);
	/* Each page is looked at once at most: busy ones go to the back. */
	for (scan = pc->lru.count; scan && bytes < want && pc->lru.head; scan--) {
		struct pcache_page *p = pc->lru.head;
		struct pcache_file *f = p->file;

		if (pthread_mutex_trylock(&f->pages_lock) != 0) {
			lru_rotate(pc, p);
			continue;
		}
		if (p->pins || (p->flags & (PCACHE_PAGE_DIRTY | PCACHE_PAGE_WRITEBACK))) {
			pthread_mutex_unlock(&f->pages_lock);
			lru_rotate(pc, p);
			continue;
		}
		/* Clean and idle: unlink it under both locks. */
		lru_unlink(pc, p);
		_pcache_index_remove(f, p);
		pthread_mutex_unlock(&f->pages_lock);
		p->hash_next = freed;
		freed = p;
		bytes += pc->page_size;
	}
	pthread_mutex_unlock(&pc->lru.lock);
	_pcache_page_list_free(pc, freed);
	return bytes;
}

void _pcache_clean_trim(struct pcache *pc)
{
	uint64_t limit = _pcache_clean_limit(pc);
	uint64_t clean = __atomic_load_n(&pc->lru.count, __ATOMIC_RELAXED) * pc->page_size;

	/* Oldest first, as reclaim does: a page read or written back long
	 * ago goes before one just written. Pages on the LRU that are busy
	 * are skipped, so this may leave a little more than the limit. */
	if (clean > limit)
		_pcache_lru_shrink(pc, (size_t)(clean - limit));
}

size_t pcache_drop_clean(struct pcache *pc)
{
	return _pcache_lru_shrink(pc, SIZE_MAX);
}
