/*
 * A page: its memory and its bytes from the backing file.
 *
 * One allocation holds the record and the data, the data aligned for
 * direct I/O (PCACHE_DATA_ALIGN). A page that is not UPTODATE holds only
 * its valid blocks and its dirty bytes; _pcache_page_fill reads the blocks
 * asked for around those, one pread per run of missing bytes.
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

/* Bytes [start, end) of a page to read from the backing file. */
struct fill_piece {
	uint32_t start, end;
};

/* Add [start, end) to the pieces, merged with the last one if they touch. */
static void fill_piece_add(struct fill_piece *pieces, unsigned *n, uint32_t start, uint32_t end)
{
	if (start >= end)
		return;
	if (*n && pieces[*n - 1].end == start) {
		pieces[*n - 1].end = end;
		return;
	}
	pieces[*n].start = start;
	pieces[*n].end = end;
	(*n)++;
}

int _pcache_page_fill(struct pcache_file *f, struct pcache_page *p, uint16_t blocks)
{
	struct pcache *pc = f->cache;
	struct fill_piece pieces[2 * PCACHE_PAGE_BLOCKS];
	off_t base = (off_t)(p->index << pc->page_shift);
	uint32_t bsize = 1u << pc->block_shift, in_file = 0;
	unsigned n = 0, nio = 0;
	uint64_t bytes = 0;
	int err = 0;

	blocks &= (uint16_t)~p->valid;
	if (!blocks)
		return 0;
	if (f->size > base)
		in_file = f->size - base < (off_t)pc->page_size ? (uint32_t)(f->size - base)
								: (uint32_t)pc->page_size;
	/* Around the written bytes a block may hold (an edge of the dirty
	 * hull): those are newer than the backing file. */
	for (unsigned b = 0; b < pc->nr_blocks; b++) {
		uint32_t bs = b * bsize, be = bs + bsize, ks = be, ke = be;

		if (!(blocks & (1u << b)))
			continue;
		if ((p->dirty & (1u << b)) && p->from < be && p->to > bs) {
			ks = p->from > bs ? p->from : bs;
			ke = p->to < be ? p->to : be;
		}
		fill_piece_add(pieces, &n, bs, ks);
		fill_piece_add(pieces, &n, ke, be);
	}
	/* Bytes past the cached size read as zeros, whatever the backing
	 * file still holds there (a truncate that failed half-way). */
	for (unsigned i = 0; i < n; i++) {
		if (pieces[i].end > in_file) {
			uint32_t z = pieces[i].start > in_file ? pieces[i].start : in_file;

			memset(p->data + z, 0, pieces[i].end - z);
			pieces[i].end = z;
		}
		if (pieces[i].start < pieces[i].end) {
			pieces[nio++] = pieces[i];
			bytes += pieces[i].end - pieces[i].start;
		}
	}
	if (nio) {
		/* Pinned, so reclaim leaves it alone; f->lock keeps writers
		 * out; a writeback in flight only reads the dirty bytes, which
		 * we do not touch. */
		p->pins++;
		pthread_mutex_unlock(&f->pages_lock);
		for (unsigned i = 0; i < nio && !err; i++)
			err = _pcache_backing_read(f->fd, p->data + pieces[i].start,
						   pieces[i].end - pieces[i].start,
						   base + pieces[i].start);
		pthread_mutex_lock(&f->pages_lock);
		p->pins--;
		atomic_fetch_add(&pc->fills, 1);
		atomic_fetch_add(&pc->fill_bytes, bytes);
		if (err)
			return err;
	}
	p->valid |= blocks;
	if (p->valid == _pcache_blocks_all(pc))
		p->flags |= PCACHE_PAGE_UPTODATE;
	return 0;
}

size_t pcache_page_alloc_size(size_t page_size)
{
	return sizeof(struct pcache_page) + PCACHE_DATA_ALIGN - 1 + page_size;
}
