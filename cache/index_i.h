/*
 * index.c: the page index of one file (f->index), a hash table keyed by
 * page number, under the file's pages_lock. A page is cached while it is
 * in an index: insert and remove keep pcache.cached_bytes.
 */
#ifndef PFS_CACHE_INDEX_I_H
#define PFS_CACHE_INDEX_I_H

#include "pcache_i.h"

struct pcache_index *_pcache_index_create(struct pcache *pc, unsigned flags,
					  struct alloc_retry *retry, int *err);
void _pcache_index_destroy(struct pcache *pc, struct pcache_index *ix);
struct pcache_page *_pcache_index_lookup(const struct pcache_index *ix, uint64_t index);
/* pages_lock held: f's page p (p->index set) becomes cached. */
void _pcache_index_insert(struct pcache_file *f, struct pcache_page *p);
/* pages_lock held: p leaves f's index; the caller frees it. */
void _pcache_index_remove(struct pcache_file *f, struct pcache_page *p);
/* Grow the table ahead of an insertion (f->lock held, pages_lock not):
 * best effort, a failed allocation only makes chains longer. */
void _pcache_index_reserve(struct pcache_file *f);
/* Visit every page (pages_lock held); fn may remove the page it is given. */
void _pcache_index_for_each(struct pcache_index *ix,
			    void (*fn)(struct pcache_file *f, struct pcache_page *p, void *data),
			    struct pcache_file *f, void *data);

#endif /* PFS_CACHE_INDEX_I_H */
