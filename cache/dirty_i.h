/*
 * dirty.c: unwritten data. The files with unwritten pages (pcache.dirty,
 * under its lock), each file's list of unwritten pages (under pages_lock),
 * the dirty byte count and limit, the page transitions that move a page
 * between the unwritten list and the LRU, and the reference a dirty file
 * holds on itself.
 */
#ifndef PFS_CACHE_DIRTY_I_H
#define PFS_CACHE_DIRTY_I_H

#include "pcache_i.h"

/* Set up / tear down pcache.dirty (empty). */
void _pcache_dirty_init(struct pcache_dirty *d);
void _pcache_dirty_destroy(struct pcache_dirty *d);

/* Dirty bytes that start writeback (and past which writers wait). */
uint64_t _pcache_dirty_limit(struct pcache *pc);

/* The file references of pcache_file_ops. get may be called under
 * pages_lock; put with no cache lock held: it first puts the last write's
 * time back on a clean backing file (_pcache_mtime_stamp). */
void _pcache_file_get(struct pcache_file *f);
void _pcache_file_put(struct pcache_file *f);
/* Put the last write's time on the backing file if it is clean and does
 * not show it yet (writeback moved it). No cache lock held but f->lock. */
void _pcache_mtime_stamp(struct pcache_file *f);

/* Under pages_lock: account a page going clean -> dirty / unwritten ->
 * clean (back on the LRU). */
void _pcache_page_mark_dirty(struct pcache_file *f, struct pcache_page *p, uint64_t now);
void _pcache_page_mark_clean(struct pcache_file *f, struct pcache_page *p);
/* Under pages_lock: unlink and account a page (any state but WRITEBACK)
 * and push it on *freed (through hash_next); the caller frees the list
 * with _pcache_page_list_free after dropping the lock. */
void _pcache_page_forget(struct pcache_file *f, struct pcache_page *p, struct pcache_page **freed);

/* The file's unwritten pages (pages_lock held), kept in file order lazily:
 * _pcache_uw_sort before walking them in order. */
void _pcache_uw_add(struct pcache_index *ix, struct pcache_page *p);
void _pcache_uw_remove(struct pcache_index *ix, struct pcache_page *p);
void _pcache_uw_sort(struct pcache_index *ix);

/* Under pages_lock: if f has no unwritten page but is on the dirty list,
 * take it off. Returns true when the caller must _pcache_file_put() (after
 * dropping every lock of f). */
bool _pcache_file_undirty(struct pcache_file *f);
/* Under pages_lock: take f off the dirty list whatever its pages, without
 * a put (f is being destroyed). */
void _pcache_dirty_list_leave(struct pcache_file *f);
/* The oldest dirty file, with a reference (_pcache_file_put it), or NULL. */
struct pcache_file *_pcache_dirty_first(struct pcache *pc);
/* How many files are dirty now. */
unsigned _pcache_dirty_nr_files(struct pcache *pc);
/* dirty.lock held: the first file due for writeback (dirtied at least
 * age_ns before now, or any if force) and not waiting out a failure, or
 * NULL. No reference taken. */
struct pcache_file *_pcache_dirty_next_due(struct pcache *pc, uint64_t now, uint64_t age_ns,
					   bool force);
/* After a writeback of f: if it is still dirty, to the back of the list. */
void _pcache_dirty_requeue(struct pcache_file *f);
/* Same, after the writeback thread's turn: the file's age becomes that of
 * its oldest dirty page; if only pages under someone else's writeback are
 * left, it is not due again before retry_at_ns. */
void _pcache_dirty_requeue_aged(struct pcache_file *f, uint64_t retry_at_ns);
/* Writeback of f failed: not due again before retry_at_ns. */
void _pcache_dirty_retry_after(struct pcache_file *f, uint64_t retry_at_ns);
/* The next dirty file this pass (number seq, of kind pass) has not visited,
 * marked visited and with a reference (_pcache_file_put it), or NULL. One
 * file per call, so that the pass never works under dirty.lock. */
struct pcache_file *_pcache_dirty_next_unvisited(struct pcache *pc, enum pcache_pass pass,
						 uint64_t seq);
/* Wake the writeback thread (it waits on pcache.dirty.wake); callers hold
 * no lock after pages_lock. */
void _pcache_dirty_wake_writeback(struct pcache *pc);

#endif /* PFS_CACHE_DIRTY_I_H */
