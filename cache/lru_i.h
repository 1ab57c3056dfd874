/*
 * lru.c: the clean pages, oldest first (pcache.lru, under its lock), and
 * the clean limit.
 */
#ifndef PFS_CACHE_LRU_I_H
#define PFS_CACHE_LRU_I_H

#include "pcache_i.h"

/* Set up / tear down pcache.lru (empty). */
void _pcache_lru_init(struct pcache_lru *lru);
void _pcache_lru_destroy(struct pcache_lru *lru);

/* Clean bytes to keep at most (UINT64_MAX: no limit of the cache's own). */
uint64_t _pcache_clean_limit(struct pcache *pc);
/* pages_lock held: p (clean) goes to the young end / leaves the LRU. */
void _pcache_lru_add(struct pcache *pc, struct pcache_page *p);
void _pcache_lru_remove(struct pcache *pc, struct pcache_page *p);
/* Drop up to want bytes of clean, idle pages, oldest first (trylocks
 * pages_lock). Returns the bytes freed. */
size_t _pcache_lru_shrink(struct pcache *pc, size_t want);
/* Drop the oldest clean pages beyond clean_limit. Callers hold no
 * pages_lock (f->lock is fine). */
void _pcache_clean_trim(struct pcache *pc);

#endif /* PFS_CACHE_LRU_I_H */
