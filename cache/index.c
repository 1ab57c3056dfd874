/*
 * The page index of one file: a chained hash table keyed by page number,
 * doubling when it holds more than two pages per bucket. A page is cached
 * while it is in an index, so insert and remove keep cached_bytes.
 *
 * The table's memory comes from the allocator (site cache_page). Growing
 * is best effort: it allocates with ALLOC_NORETRY outside pages_lock, and
 * a failure only leaves the chains longer, never loses a page.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "index_i.h"

static size_t index_bucket(const struct pcache_index *ix, uint64_t index)
{
	/* Fibonacci hashing: neighbouring pages land in different buckets. */
	return (size_t)((index * 0x9E3779B97F4A7C15ull) >> 20) & (ix->nbuckets - 1);
}

struct pcache_index *_pcache_index_create(struct pcache *pc, unsigned flags,
					  struct alloc_retry *retry, int *err)
{
	struct pcache_index *ix;

	if (retry)
		ix = alloc_try(pc->alloc, ALLOC_SITE_CACHE_PAGE, sizeof(*ix), flags | ALLOC_ZERO,
			       retry, err);
	else
		ix = alloc_malloc(pc->alloc, ALLOC_SITE_CACHE_PAGE, sizeof(*ix),
				  flags | ALLOC_ZERO);
	if (!ix) {
		if (!retry && err)
			*err = -ENOMEM;
		return NULL;
	}
	memset(ix, 0, sizeof(*ix));
	ix->buckets = ix->inline_buckets;
	ix->nbuckets = PCACHE_INDEX_INLINE_BUCKETS;
	ix->uw_sorted = true;
	return ix;
}

void _pcache_index_destroy(struct pcache *pc, struct pcache_index *ix)
{
	if (!ix)
		return;
	if (ix->buckets != ix->inline_buckets)
		alloc_free(pc->alloc, ix->buckets);
	alloc_free(pc->alloc, ix);
}

struct pcache_page *_pcache_index_lookup(const struct pcache_index *ix, uint64_t index)
{
	struct pcache_page *p;

	if (!ix)
		return NULL;
	for (p = ix->buckets[index_bucket(ix, index)]; p; p = p->hash_next)
		if (p->index == index)
			return p;
	return NULL;
}

void _pcache_index_insert(struct pcache_file *f, struct pcache_page *p)
{
	struct pcache_index *ix = f->index;
	size_t b = index_bucket(ix, p->index);

	p->file = f;
	p->hash_next = ix->buckets[b];
	ix->buckets[b] = p;
	ix->count++;
	atomic_fetch_add(&f->cache->cached_bytes, f->cache->page_size);
}

void _pcache_index_remove(struct pcache_file *f, struct pcache_page *p)
{
	struct pcache_index *ix = f->index;
	struct pcache_page **pp = &ix->buckets[index_bucket(ix, p->index)];

	for (; *pp; pp = &(*pp)->hash_next) {
		if (*pp == p) {
			*pp = p->hash_next;
			p->hash_next = NULL;
			ix->count--;
			atomic_fetch_sub(&f->cache->cached_bytes, f->cache->page_size);
			return;
		}
	}
}

static void index_rehash(struct pcache_index *ix, struct pcache_page **nb, size_t n)
{
	struct pcache_page **old = ix->buckets;
	size_t oldn = ix->nbuckets;

	memset(nb, 0, n * sizeof(*nb));
	ix->buckets = nb;
	ix->nbuckets = n;
	for (size_t i = 0; i < oldn; i++) {
		struct pcache_page *p = old[i], *next;

		for (; p; p = next) {
			size_t b = index_bucket(ix, p->index);

			next = p->hash_next;
			p->hash_next = nb[b];
			nb[b] = p;
		}
	}
}

void _pcache_index_reserve(struct pcache_file *f)
{
	struct pcache *pc = f->cache;
	struct pcache_index *ix = f->index;
	struct pcache_page **nb, **old = NULL;
	size_t want;

	/* f->lock held: only reclaim can change count, and only downwards. */
	pthread_mutex_lock(&f->pages_lock);
	want = ix->count + 1 > 2 * ix->nbuckets ? ix->nbuckets * 2 : 0;
	pthread_mutex_unlock(&f->pages_lock);
	if (!want)
		return;
	nb = alloc_malloc(pc->alloc, ALLOC_SITE_CACHE_PAGE, want * sizeof(*nb),
			  ALLOC_NOFS | ALLOC_NORETRY);
	if (!nb)
		return;
	pthread_mutex_lock(&f->pages_lock);
	if (want > ix->nbuckets) {
		if (ix->buckets != ix->inline_buckets)
			old = ix->buckets;
		index_rehash(ix, nb, want);
		nb = NULL;
	}
	pthread_mutex_unlock(&f->pages_lock);
	alloc_free(pc->alloc, nb);
	alloc_free(pc->alloc, old);
}

void _pcache_index_for_each(struct pcache_index *ix,
			    void (*fn)(struct pcache_file *f, struct pcache_page *p, void *data),
			    struct pcache_file *f, void *data)
{
	if (!ix)
		return;
	for (size_t i = 0; i < ix->nbuckets; i++) {
		struct pcache_page *p = ix->buckets[i], *next;

		for (; p; p = next) {
			next = p->hash_next;
			fn(f, p, data);
		}
	}
}
