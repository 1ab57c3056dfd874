/*
 * A page: its memory and its bytes from the backing file.
 *
 * One allocation holds the record and the data, the data aligned for
 * direct I/O (PCACHE_DATA_ALIGN). A page that is not UPTODATE holds only
 * [from, to); _pcache_page_fill reads the rest around it.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "backing_i.h"
#include "page_i.h"

uint64_t _pcache_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct pcache_page *_pcache_page_alloc(struct pcache *pc, uint64_t index, unsigned flags,
				       struct alloc_retry *retry, int *err)
{
	size_t size = pcache_page_alloc_size(pc->page_size);
	struct pcache_page *p;

	if (retry) {
		p = alloc_try(pc->alloc, ALLOC_SITE_CACHE_PAGE, size, flags, retry, err);
	} else {
		p = alloc_malloc(pc->alloc, ALLOC_SITE_CACHE_PAGE, size, flags);
		if (!p)
			*err = -ENOMEM;
	}
	if (!p)
		return NULL;
	memset(p, 0, sizeof(*p));
	p->data = (unsigned char *)(((uintptr_t)(p + 1) + PCACHE_DATA_ALIGN - 1) &
				    ~(uintptr_t)(PCACHE_DATA_ALIGN - 1));
	p->index = index;
	return p;
}

void _pcache_page_list_free(struct pcache *pc, struct pcache_page *list)
{
	while (list) {
		struct pcache_page *next = list->hash_next;

		alloc_free(pc->alloc, list);
		list = next;
	}
}

int _pcache_page_fill(struct pcache_file *f, struct pcache_page *p)
{
	struct pcache *pc = f->cache;
	off_t base = (off_t)(p->index << pc->page_shift);
	uint32_t from = p->from, to = p->to;
	int err;

	/* Pinned, so reclaim leaves it alone; f->lock keeps writers out; a
	 * writeback in flight only reads [from, to), which we do not touch. */
	p->pins++;
	pthread_mutex_unlock(&f->pages_lock);
	err = _pcache_backing_read(f->fd, p->data, from, base);
	if (!err)
		err = _pcache_backing_read(f->fd, p->data + to, pc->page_size - to, base + to);
	pthread_mutex_lock(&f->pages_lock);
	p->pins--;
	if (err)
		return err;
	/* Bytes past the cached size read as zeros, whatever the backing
	 * file still holds there (a truncate that failed half-way). */
	if (base + (off_t)pc->page_size > f->size) {
		size_t keep = f->size > base ? (size_t)(f->size - base) : 0;

		if (keep < from)
			memset(p->data + keep, 0, from - keep);
		if (keep < to)
			keep = to;
		memset(p->data + keep, 0, pc->page_size - keep);
	}
	p->flags |= PCACHE_PAGE_UPTODATE;
	if (!(p->flags & (PCACHE_PAGE_DIRTY | PCACHE_PAGE_WRITEBACK)))
		p->from = p->to = 0;
	return 0;
}

size_t pcache_page_alloc_size(size_t page_size)
{
	return sizeof(struct pcache_page) + PCACHE_DATA_ALIGN - 1 + page_size;
}
