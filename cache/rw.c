/*
 * The data path: cached writes, reads through the cache, truncate and
 * invalidation. Everything here runs under f->lock (like i_rwsem) and
 * touches pages under pages_lock; I/O and allocation happen with
 * pages_lock dropped.
 *
 * A write whose new page the policy says to do without (BYPASS) goes to
 * the backing file instead, still under f->lock: every path that inserts
 * a page (writes, and reads that keep the page they read) holds f->lock,
 * so no cached copy of that page can appear before the pwrite is done and
 * then hide it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backing_i.h"
#include "dirty_i.h"
#include "index_i.h"
#include "lru_i.h"
#include "page_i.h"
#include "writeback_i.h"

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* ---- write ---- */

/* Whether the written bytes of one block b would cover all of its bytes
 * in the new hull [from, to): the block's old dirty bytes (if it holds
 * any) and this write's, when they are one interval. */
static bool block_hull_written(const struct pcache *pc, const struct pcache_page *p, unsigned b,
			       uint32_t poff, uint32_t end, uint32_t from, uint32_t to)
{
	uint32_t bs = b << pc->block_shift, be = bs + (1u << pc->block_shift);
	uint32_t ws = poff > bs ? poff : bs, we = end < be ? end : be;
	uint32_t need_s = from > bs ? from : bs, need_e = to < be ? to : be;

	if ((p->flags & PCACHE_PAGE_DIRTY) && (p->dirty & (1u << b)) && p->from < be &&
	    p->to > bs) {
		uint32_t os = p->from > bs ? p->from : bs, oe = p->to < be ? p->to : be;

		if (ws >= we) {
			ws = os;
			we = oe;
		} else if (os <= we && ws <= oe) {
			ws = os < ws ? os : ws;
			we = oe > we ? oe : we;
		} else {
			return false; /* a gap between the two */
		}
	}
	return ws < we && ws <= need_s && we >= need_e;
}

/*
 * Copy one chunk into page p (pages_lock held, p not under writeback).
 * Whole blocks need nothing from the backing file. A block the write
 * touches in part, or an edge block of the old dirty hull that the new
 * hull swallows, must hold real data around the written bytes unless
 * those stay at an edge of the hull: such a block is filled first.
 * Returns -EAGAIN after a fill (pages_lock was dropped: look again).
 */
static int page_write_chunk(struct pcache_file *f, struct pcache_page *p, const unsigned char *src,
			    uint32_t poff, uint32_t n, uint64_t now)
{
	struct pcache *pc = f->cache;
	uint32_t end = poff + n, from = poff, to = end;
	bool dirty = p->flags & PCACHE_PAGE_DIRTY;
	uint16_t touched = _pcache_blocks_touched(pc, poff, end);
	uint16_t check, fill = 0;

	if (dirty) {
		from = p->from < from ? p->from : from;
		to = p->to > to ? p->to : to;
	}
	/* Blocks that may end up dirty but not valid: the write's partial
	 * ones and the old dirty blocks at the old hull's edges. */
	check = (uint16_t)(touched & ~_pcache_blocks_covered(pc, poff, end));
	if (dirty)
		check |= (_pcache_blocks_touched(pc, p->from, p->from + 1) |
			  _pcache_blocks_touched(pc, p->to - 1, p->to)) &
			 p->dirty;
	check &= (uint16_t)~p->valid;
	for (unsigned b = 0; check >> b; b++)
		if ((check & (1u << b)) && !block_hull_written(pc, p, b, poff, end, from, to))
			fill |= (uint16_t)(1u << b);
	if (fill) {
		int err = _pcache_page_fill(f, p, fill);

		/* pages_lock was dropped for the I/O (writeback may have
		 * taken the dirty bytes meanwhile): start over. */
		return err ? err : -EAGAIN;
	}
	memcpy(p->data + poff, src, n);
	p->from = from;
	p->to = to;
	p->dirty = dirty ? (uint16_t)(p->dirty | touched) : touched;
	/* Written whole, or in pieces that met. */
	p->valid |= _pcache_blocks_covered(pc, poff, end) |
		    (p->dirty & _pcache_blocks_covered(pc, from, to));
	if (p->valid == _pcache_blocks_all(pc))
		p->flags |= PCACHE_PAGE_UPTODATE;
	if (!dirty)
		_pcache_page_mark_dirty(f, p, now);
	return 0;
}

/* The retry state of a writer's current allocation. */
struct write_retry {
	struct alloc_retry retry;
};
static const struct write_retry write_retry_init = {.retry = ALLOC_RETRY_INIT};

/*
 * f->lock held, page `index` not cached: allocate it (not inserted yet),
 * creating f's page index first if f has none. wr NULL: one attempt, no
 * retry (the read path's cheap try). NULL with *err set when an
 * allocation failed.
 */
static struct pcache_page *page_new(struct pcache_file *f, uint64_t index, unsigned flags,
				    struct write_retry *wr, int *err)
{
	struct pcache *pc = f->cache;
	struct alloc_retry *retry = wr ? &wr->retry : NULL;

	if (!f->index) {
		struct pcache_index *ix = _pcache_index_create(pc, flags, retry, err);

		if (!ix)
			return NULL;
		if (wr)
			*wr = write_retry_init; /* the page's turn */
		pthread_mutex_lock(&f->pages_lock);
		f->index = ix;
		pthread_mutex_unlock(&f->pages_lock);
	}
	_pcache_index_reserve(f);
	return _pcache_page_alloc(pc, index, flags, retry, err);
}

/* f->lock held, page `index` not cached and the policy said to do without
 * it: write this chunk to the backing file, and count it as written only
 * once it is there. 0 or -errno (the write's error). */
static int write_through_chunk(struct pcache_file *f, const unsigned char *src, uint32_t n,
			       off_t pos, const struct timespec *mtime)
{
	size_t written;
	int err = _pcache_backing_write(f->fd, src, n, pos, &written);

	if (err) {
		/* Not answered, so not there: a failed write that grew the
		 * backing file past the cache's size is cut back to it. */
		if (written && pos + (off_t)written > f->size)
			_pcache_backing_truncate(f, f->size);
		return err;
	}
	pthread_mutex_lock(&f->pages_lock);
	if (pos + (off_t)n > f->size)
		f->size = pos + (off_t)n;
	f->mtime = *mtime;
	f->mtime_known = true;
	f->mtime_unstamped = true;
	pthread_mutex_unlock(&f->pages_lock);
	return 0;
}

/* f->lock held, page_new failed with err. Returns -EAGAIN when the caller
 * should look again and retry (after the retry wait), or -ENOMEM. A FAIL
 * verdict is final: the allocator already dropped clean pages (direct
 * reclaim) before it asked the policy. */
static int write_wait_retry(struct pcache_file *f, struct write_retry *wr, int err)
{
	int ret;

	if (err != -EAGAIN)
		return -ENOMEM;
	/* RETRY verdict: drop the inode lock so that reclaim and other users
	 * of this file can run, back off, and resume where we stopped. */
	pthread_mutex_unlock(&f->lock);
	ret = alloc_retry_wait(f->cache->alloc, &wr->retry);
	pthread_mutex_lock(&f->lock);
	return ret == 0 ? -EAGAIN : -ENOMEM;
}

ssize_t pcache_write(struct pcache_file *f, const void *buf, size_t len, off_t off)
{
	struct pcache *pc = f->cache;
	struct write_retry wr = write_retry_init;
	const unsigned char *src = buf;
	size_t done = 0;
	uint64_t now = _pcache_now_ns();
	struct timespec mtime;
	bool wrote_through = false;
	int err = 0;

	if (off < 0)
		return -EINVAL;
	if (len == 0)
		return 0;
	/* Before f->lock: a throttled writer holds nothing anyone waits for. */
	pcache_balance_dirty(pc);
	clock_gettime(CLOCK_REALTIME, &mtime);
	pthread_mutex_lock(&f->lock);
	while (done < len) {
		off_t pos = off + (off_t)done;
		uint64_t index = (uint64_t)pos >> pc->page_shift;
		uint32_t poff = (uint32_t)(pos & (off_t)(pc->page_size - 1));
		uint32_t n = (uint32_t)min_size(len - done, pc->page_size - poff);
		struct pcache_page *p;

		pthread_mutex_lock(&f->pages_lock);
		p = _pcache_index_lookup(f->index, index);
		if (p && (p->flags & PCACHE_PAGE_WRITEBACK)) {
			/* Stable pages: wait, then look again (it may be gone). */
			pthread_cond_wait(&f->writeback_done, &f->pages_lock);
			pthread_mutex_unlock(&f->pages_lock);
			continue;
		}
		if (!p) {
			pthread_mutex_unlock(&f->pages_lock);
			p = page_new(f, index, ALLOC_NOFS | ALLOC_BYPASS_OK, &wr, &err);
			if (!p && err == ALLOC_EBYPASS) {
				wr = write_retry_init;
				err = write_through_chunk(f, src + done, n, pos, &mtime);
				if (err)
					break;
				wrote_through = true;
				done += n;
				continue;
			}
			if (!p) {
				err = write_wait_retry(f, &wr, err);
				if (err == -EAGAIN)
					continue;
				break;
			}
			wr = write_retry_init;
			pthread_mutex_lock(&f->pages_lock);
			/* f->lock kept writers and readers out: nobody else
			 * can have inserted this page meanwhile. page_write_chunk
			 * marks what it writes (a fresh page needs no fill). */
			_pcache_index_insert(f, p);
		}
		err = page_write_chunk(f, p, src + done, poff, n, now);
		if (!err) {
			done += n;
			if (pos + (off_t)n > f->size)
				f->size = pos + (off_t)n;
			f->mtime = mtime;
			f->mtime_known = true;
			f->mtime_unstamped = true;
		}
		pthread_mutex_unlock(&f->pages_lock);
		if (err == -EAGAIN)
			err = 0;
		else if (err)
			break;
	}
	pthread_mutex_unlock(&f->lock);
	/* The pwrite moved the backing mtime: a clean file gets the cache's
	 * back at once (a dirty one after its writeback). */
	if (wrote_through)
		_pcache_mtime_stamp(f);
	if (done)
		return (ssize_t)done;
	return err ? err : -ENOMEM;
}

/* ---- read ---- */

/* pages_lock held: whether p holds every byte of [poff, end): each block
 * valid, or dirty with these bytes inside the dirty hull. */
static bool page_holds(const struct pcache *pc, const struct pcache_page *p, uint32_t poff,
		       uint32_t end)
{
	uint16_t missing = (uint16_t)(_pcache_blocks_touched(pc, poff, end) & ~p->valid);

	if (!missing)
		return true;
	return !(missing & ~p->dirty) && poff >= p->from && end <= p->to;
}

/* pages_lock held: copy [poff, poff+n) of page index into dst, filling the
 * missing blocks it touches first (only those: a random 4 KiB read under
 * pressure would otherwise read the whole page for one block). Returns 1
 * if served from the cache, 0 if there is no page, or a negative errno. */
static int read_cached(struct pcache_file *f, uint64_t index, unsigned char *dst, uint32_t poff,
		       uint32_t n)
{
	struct pcache_page *p = _pcache_index_lookup(f->index, index);
	int err;

	if (!p)
		return 0;
	if (!(p->flags & PCACHE_PAGE_UPTODATE) && !page_holds(f->cache, p, poff, poff + n)) {
		err = _pcache_page_fill(f, p, _pcache_blocks_touched(f->cache, poff, poff + n));
		if (err)
			return err;
	}
	memcpy(dst, p->data + poff, n);
	return 1;
}

/* No cached page: read the whole page from the backing file into a new
 * clean page if one is cheap to get, else straight into dst. */
static int read_backing(struct pcache_file *f, uint64_t index, unsigned char *dst, uint32_t poff,
			uint32_t n, off_t size)
{
	struct pcache *pc = f->cache;
	off_t base = (off_t)(index << pc->page_shift);
	struct pcache_page *p;
	int err;

	p = page_new(f, index, ALLOC_NOFS | ALLOC_NORETRY, NULL, &err);
	if (!p) {
		err = _pcache_backing_read(f->fd, dst, n, base + poff);
		if (!err && base + poff + (off_t)n > size) {
			off_t keep = size > base + poff ? size - base - poff : 0;

			memset(dst + keep, 0, n - (size_t)keep);
		}
		return err;
	}
	err = _pcache_backing_read(f->fd, p->data, pc->page_size, base);
	if (err) {
		alloc_free(pc->alloc, p); /* never inserted */
		return err;
	}
	if (base + (off_t)pc->page_size > size) {
		off_t keep = size > base ? size - base : 0;

		memset(p->data + keep, 0, pc->page_size - (size_t)keep);
	}
	memcpy(dst, p->data + poff, n);
	p->flags = PCACHE_PAGE_UPTODATE;
	p->valid = _pcache_blocks_all(pc);
	pthread_mutex_lock(&f->pages_lock);
	_pcache_index_insert(f, p);
	_pcache_lru_add(pc, p);
	pthread_mutex_unlock(&f->pages_lock);
	return 0;
}

ssize_t pcache_read(struct pcache_file *f, void *buf, size_t len, off_t off)
{
	struct pcache *pc = f->cache;
	unsigned char *dst = buf;
	size_t done = 0;
	off_t size;
	int err = 0;

	if (off < 0)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	size = f->size;
	if (off >= size)
		goto out_unlock;
	if ((off_t)len > size - off)
		len = (size_t)(size - off);
	while (done < len) {
		off_t pos = off + (off_t)done;
		uint64_t index = (uint64_t)pos >> pc->page_shift;
		uint32_t poff = (uint32_t)(pos & (off_t)(pc->page_size - 1));
		uint32_t n = (uint32_t)min_size(len - done, pc->page_size - poff);

		pthread_mutex_lock(&f->pages_lock);
		err = read_cached(f, index, dst + done, poff, n);
		pthread_mutex_unlock(&f->pages_lock);
		if (err == 0)
			err = read_backing(f, index, dst + done, poff, n, size);
		else if (err > 0)
			err = 0;
		if (err)
			break;
		done += n;
	}
out_unlock:
	pthread_mutex_unlock(&f->lock);
	_pcache_clean_trim(pc);
	if (done || !err)
		return (ssize_t)done;
	return err;
}

/* ---- truncate and invalidate ---- */

struct shrink_ctx {
	uint64_t first_gone; /* pages at or past this index go */
	struct pcache_page *freed;
};

static void shrink_drop_cb(struct pcache_file *f, struct pcache_page *p, void *data)
{
	struct shrink_ctx *ctx = data;

	if (p->index >= ctx->first_gone)
		_pcache_page_forget(f, p, &ctx->freed);
}

/* pages_lock held, no writeback on the pages concerned: cut the cache at
 * size. Returns the pages to free. */
static struct pcache_page *cache_shrink(struct pcache_file *f, off_t size)
{
	struct pcache *pc = f->cache;
	uint64_t tail_index = (uint64_t)size >> pc->page_shift;
	uint32_t cut = (uint32_t)(size & (off_t)(pc->page_size - 1));
	struct shrink_ctx ctx = {.first_gone = tail_index + (cut ? 1 : 0)};
	struct pcache_page *p;

	_pcache_index_for_each(f->index, shrink_drop_cb, f, &ctx);
	p = cut ? _pcache_index_lookup(f->index, tail_index) : NULL;
	if (p) {
		memset(p->data + cut, 0, pc->page_size - cut);
		/* The blocks past the end now hold what the file holds there. */
		p->valid |= _pcache_blocks_covered(pc, cut, (uint32_t)pc->page_size);
		if (p->to > cut)
			p->to = cut;
		if (p->from > p->to)
			p->from = p->to;
		p->dirty &= _pcache_blocks_touched(pc, p->from, p->to);
		if ((p->flags & PCACHE_PAGE_DIRTY) && !p->dirty)
			_pcache_page_mark_clean(f, p);
	}
	return ctx.freed;
}

int pcache_truncate(struct pcache_file *f, off_t size)
{
	struct pcache *pc = f->cache;
	struct pcache_page *freed = NULL;
	struct timespec mtime;
	bool put = false;
	int err;

	if (size < 0)
		return -EINVAL;
	clock_gettime(CLOCK_REALTIME, &mtime);
	pthread_mutex_lock(&f->lock);
	pthread_mutex_lock(&f->pages_lock);
	if (size < f->size) {
		/* From here until the cache is cut, no writeback starts on the
		 * page the new end falls in or past it, and the I/O already
		 * under way ends first: no late pwritev can grow the backing
		 * file past the new end after it is cut. */
		f->wb_stop_index = (uint64_t)size >> pc->page_shift;
		_pcache_wait_writeback(f);
	}
	pthread_mutex_unlock(&f->pages_lock);
	/* The backing file first: if it refuses (EPERM on an immutable
	 * file, EIO), the cache keeps every byte and the old size. */
	err = _pcache_backing_truncate(f, size);
	pthread_mutex_lock(&f->pages_lock);
	if (!err) {
		if (size < f->size && f->index) {
			freed = cache_shrink(f, size);
			put = _pcache_file_undirty(f);
		}
		f->size = size;
		f->mtime = mtime;
		f->mtime_known = true;
		f->mtime_unstamped = true;
	}
	f->wb_stop_index = UINT64_MAX;
	pthread_mutex_unlock(&f->pages_lock);
	pthread_mutex_unlock(&f->lock);
	_pcache_page_list_free(pc, freed);
	if (put)
		_pcache_file_put(f);
	else if (!err)
		/* The truncate moved the backing mtime: a clean file gets the
		 * cache's back at once (a dirty one after its writeback). */
		_pcache_mtime_stamp(f);
	return err;
}

struct range_ctx {
	uint64_t first, last;
	struct pcache_page *freed;
	bool busy;
};

static void range_drop_cb(struct pcache_file *f, struct pcache_page *p, void *data)
{
	struct range_ctx *ctx = data;

	if (p->index < ctx->first || p->index > ctx->last)
		return;
	if (p->flags & (PCACHE_PAGE_DIRTY | PCACHE_PAGE_WRITEBACK) || p->pins) {
		ctx->busy = true;
		return;
	}
	_pcache_page_forget(f, p, &ctx->freed);
}

int pcache_invalidate_range(struct pcache_file *f, off_t off, off_t len)
{
	struct pcache *pc = f->cache;
	struct pcache_wb_req req = {.all = true, .alloc_flags = ALLOC_NOFS};
	struct range_ctx ctx = {0};
	int err = 0;

	if (off < 0 || len < 0)
		return -EINVAL;
	if (len == 0)
		return 0;
	ctx.first = (uint64_t)off >> pc->page_shift;
	ctx.last = (uint64_t)(off + len - 1) >> pc->page_shift;
	pthread_mutex_lock(&f->lock);
	/* Pages re-dirtied by a writeback that failed elsewhere meanwhile get
	 * another go; give up after a few rounds rather than spin. */
	for (int attempt = 0; attempt < 8; attempt++) {
		err = _pcache_wb_file(f, &req);
		if (err)
			break;
		pthread_mutex_lock(&f->pages_lock);
		_pcache_wait_writeback(f);
		ctx.busy = false;
		_pcache_index_for_each(f->index, range_drop_cb, f, &ctx);
		pthread_mutex_unlock(&f->pages_lock);
		if (!ctx.busy)
			break;
	}
	if (!err && ctx.busy)
		err = -EIO;
	pthread_mutex_unlock(&f->lock);
	_pcache_page_list_free(pc, ctx.freed);
	return err;
}
