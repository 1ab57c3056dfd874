/*
 * Writeback: moving dirty pages to the backing file.
 *
 * One routine, _pcache_wb_file(), writes a file's dirty pages in index
 * order, coalescing adjacent ranges into one pwritev(). The writeback
 * thread, fsync, flush and sync_all all use it; reclaim uses it in its
 * no-allocation mode. Pages go DIRTY -> WRITEBACK under pages_lock, the
 * I/O runs without any cache lock, and they come back clean, or dirty
 * again on failure, so nothing acknowledged is dropped.
 *
 * Direct writeback: this cache already is the file's page cache, so a
 * long run of pages goes to the disk with O_DIRECT instead of being copied
 * into the backing fs's page cache as well (which cost most of the
 * daemon's CPU in a sequential write, and memory twice over). One pass
 * opens a second, O_DIRECT descriptor of the backing file through
 * /proc/self/fd when it first meets such a run, and closes it at its end.
 * Short runs (random small writes), unaligned ones (a file's tail) and
 * backing filesystems without direct I/O take the buffered path as before.
 * The kernel keeps the two paths coherent: a direct write first writes
 * and drops the backing page cache over its range.
 *
 * Errors: a backing write that fails hands its pages back dirty and, in the
 * same critical section, records the error in the file's errseq, so that no
 * fsync can find the pages clean-looking and the error not yet there. A
 * writeback that cannot get its buffer has written nothing and lost
 * nothing: that is no error of the file, only of the call that needed it
 * (an fsync returns -ENOMEM; the thread tries again later).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pcache_i.h"

/* errseq, as lib/errseq.c: errno in the low bits, then the "seen" flag,
 * then a counter that moves when a new error follows a seen one. */
#define ERRSEQ_ERRNO_MASK 0xfffu
#define ERRSEQ_SEEN	  0x1000u
#define ERRSEQ_CTR_INC	  0x2000u

void _pcache_errseq_set(struct pcache_file *f, int err)
{
	pcache_errseq_t old = f->wb_err, new;

	if (err >= 0 || -err > (int)ERRSEQ_ERRNO_MASK)
		err = -EIO;
	new = (old & ~(ERRSEQ_ERRNO_MASK | ERRSEQ_SEEN)) | (pcache_errseq_t)-err;
	/* An error nobody has seen yet is only replaced: one report covers
	 * both. */
	if (old & ERRSEQ_SEEN)
		new += ERRSEQ_CTR_INC;
	f->wb_err = new;
}

pcache_errseq_t pcache_file_errseq_sample(struct pcache_file *f)
{
	pcache_errseq_t cur;

	pthread_mutex_lock(&f->pages_lock);
	cur = f->wb_err;
	pthread_mutex_unlock(&f->pages_lock);
	/* Unseen: 0 keeps it ahead of the new description. */
	return (cur & ERRSEQ_SEEN) ? cur : 0;
}

/* pages_lock held: the error recorded since *seen, if any, marked seen;
 * *seen moves to now. 0 or -errno. */
static int errseq_check_and_advance(struct pcache_file *f, pcache_errseq_t *seen)
{
	pcache_errseq_t cur = f->wb_err;

	if (cur == *seen)
		return 0;
	cur |= ERRSEQ_SEEN;
	f->wb_err = cur;
	*seen = cur;
	return -(int)(cur & ERRSEQ_ERRNO_MASK);
}

/* Back-off before a file whose writeback failed is tried again. */
static uint64_t wb_retry_delay_ns(const struct pcache *pc)
{
	uint64_t ms = _pcache_writeback_ms(pc) / 4;

	return (ms < 10 ? 10 : ms) * 1000000ull;
}

/* The iovec array and page list of one pass, from the allocator (site
 * writeback). No cache lock is held here; under f->lock the caller passes
 * ALLOC_NOFS. Follows RETRY verdicts itself: reclaim never needs f->lock.
 * A FAIL verdict is final, as for a writer: the allocator dropped clean
 * pages (direct reclaim) before it asked the policy. */
static void *wb_buffer_get(struct pcache *pc, size_t npages, unsigned flags, int *err)
{
	struct alloc_retry retry = ALLOC_RETRY_INIT;
	size_t size = npages * (sizeof(struct iovec) + sizeof(struct pcache_page *));
	void *buf;

	for (;;) {
		buf = alloc_try(pc->alloc, ALLOC_SITE_WRITEBACK, size, flags, &retry, err);
		if (buf)
			return buf;
		if (*err == -EAGAIN && alloc_retry_wait(pc->alloc, &retry) == 0)
			continue;
		*err = -ENOMEM;
		return NULL;
	}
}

/* pages_lock held: take up to cap dirty pages into writeback, in index
 * order. Returns how many. */
static size_t wb_collect(struct pcache_file *f, const struct pcache_wb_req *req,
			 struct pcache_page **pages, size_t cap)
{
	struct pcache *pc = f->cache;
	struct pcache_index *ix = f->index;
	size_t n = 0;

	if (!ix)
		return 0;
	_pcache_uw_sort(ix);
	for (struct pcache_page *p = ix->uw_head; p && n < cap; p = p->uw_next) {
		if (!(p->flags & PCACHE_PAGE_DIRTY) || (p->flags & PCACHE_PAGE_WRITEBACK))
			continue;
		if (!req->all && p->dirtied_ns > req->cutoff_ns)
			continue;
		/* A shrinking truncate is cutting here (the list is sorted). */
		if (p->index >= f->wb_stop_index)
			break;
		/* clear_page_dirty_for_io: the range stays in from/to. */
		p->flags = (uint16_t)((p->flags & ~PCACHE_PAGE_DIRTY) | PCACHE_PAGE_WRITEBACK);
		ix->nr_writeback++;
		atomic_fetch_sub(&pc->dirty_bytes, pc->page_size);
		atomic_fetch_add(&pc->writeback_bytes, pc->page_size);
		pages[n++] = p;
	}
	return n;
}

/* The O_DIRECT descriptor of one pass, opened on first use. */
struct wb_direct {
	int fd; /* -1: none (yet, or refused) */
	bool tried;
	uint32_t mem_align, off_align;
};

static int wb_direct_open(struct pcache_file *f, struct wb_direct *d)
{
	struct pcache *pc = f->cache;
	char path[32];
	struct statx sx;
	int fl;

	if (d->tried)
		return d->fd;
	d->tried = true;
	if (atomic_load(&pc->direct_off))
		return -1;
	/* Only as writable as f->fd: a read-only descriptor must fail its
	 * writeback (EBADF) the same way on either path. */
	fl = fcntl(f->fd, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY)
		return -1;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", f->fd);
	d->fd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (d->fd < 0) {
		/* EINVAL: the backing fs has no direct I/O. Anything else
		 * (no /proc, no fd left, no permission) may pass. */
		if (errno == EINVAL)
			atomic_store(&pc->direct_off, true);
		return -1;
	}
	if (statx(d->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) != 0 ||
	    !(sx.stx_mask & STATX_DIOALIGN) || !sx.stx_dio_mem_align || !sx.stx_dio_offset_align) {
		/* Alignment unknown: do not guess. */
		atomic_store(&pc->direct_off, true);
		close(d->fd);
		d->fd = -1;
		return -1;
	}
	d->mem_align = sx.stx_dio_mem_align;
	d->off_align = sx.stx_dio_offset_align;
	return d->fd;
}

static void wb_direct_close(struct wb_direct *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

/* How many of iov[0..niov), from the first, go to the disk directly
 * (their bytes in *bytes): all, or a prefix that stops before the first
 * piece the backing fs cannot take with O_DIRECT (a file's partial last
 * page); 0 when that prefix is too short to be worth a synchronous device
 * write. */
static size_t wb_direct_prefix(struct pcache_file *f, struct wb_direct *d, const struct iovec *iov,
			       size_t niov, off_t off, size_t *bytes)
{
	size_t k, sum = 0;

	*bytes = 0;
	if (wb_direct_open(f, d) < 0 || (uint64_t)off % d->off_align)
		return 0;
	for (k = 0; k < niov; k++) {
		if ((uintptr_t)iov[k].iov_base % d->mem_align || iov[k].iov_len % d->off_align)
			break;
		sum += iov[k].iov_len;
	}
	if (sum < PCACHE_WB_DIRECT_MIN)
		return 0;
	*bytes = sum;
	return k;
}

/* Write iov[0..niov) (total bytes) at off through fd, all of it. On the
 * direct descriptor, an EINVAL (the backing fs refused after all, or the
 * rest of a short write is no longer aligned) goes on buffered from where
 * it stopped. 0 or -errno. */
static int wb_pwritev_all(struct pcache_file *f, int fd, struct iovec *iov, size_t niov, off_t off,
			  size_t total)
{
	struct pcache *pc = f->cache;

	for (size_t k = 0, done = 0; done < total;) {
		ssize_t w = pwritev(fd, iov + k, (int)(niov - k), off + (off_t)done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EINVAL && fd != f->fd) {
			if (!done)
				atomic_store(&pc->direct_off, true);
			fd = f->fd;
			continue;
		}
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		if (fd != f->fd)
			atomic_fetch_add(&pc->direct_bytes, (uint64_t)w);
		done += (size_t)w;
		/* Short write: advance the iovecs and go on. */
		while (k < niov && (size_t)w >= iov[k].iov_len) {
			w -= (ssize_t)iov[k].iov_len;
			k++;
		}
		if (k < niov) {
			iov[k].iov_base = (char *)iov[k].iov_base + w;
			iov[k].iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Write pages[0..n) (sorted, under writeback, stable). Returns how many
 * pages reached the backing file before an error, and the error. */
static size_t wb_write_pages(struct pcache_file *f, struct pcache_page **pages, size_t n,
			     struct iovec *iov, struct wb_direct *d, int *err)
{
	struct pcache *pc = f->cache;
	unsigned delay_us = __atomic_load_n(&pc->writeback_delay_us, __ATOMIC_RELAXED);
	size_t i = 0;

	*err = 0;
	while (i < n) {
		size_t first = i, niov = 0, total = 0, nd = 0, dbytes = 0;
		off_t off = (off_t)(pages[i]->index << pc->page_shift) + pages[i]->from;

		/* One run: ranges that touch end to start across pages. */
		do {
			struct pcache_page *p = pages[i];

			iov[niov].iov_base = p->data + p->from;
			iov[niov].iov_len = p->to - p->from;
			total += iov[niov].iov_len;
			niov++;
			i++;
		} while (i < n && niov < IOV_MAX && pages[i - 1]->to == pc->page_size &&
			 pages[i]->from == 0 && pages[i]->index == pages[i - 1]->index + 1);

		if (delay_us) {
			uint64_t us = (uint64_t)delay_us * (i - first);
			struct timespec ts = {.tv_sec = (time_t)(us / 1000000),
					      .tv_nsec = (long)(us % 1000000) * 1000};

			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
		}
		/* (Short runs never open the direct descriptor.) */
		if (total >= PCACHE_WB_DIRECT_MIN)
			nd = wb_direct_prefix(f, d, iov, niov, off, &dbytes);
		if (nd)
			*err = wb_pwritev_all(f, d->fd, iov, nd, off, dbytes);
		if (!*err && nd < niov)
			*err = wb_pwritev_all(f, f->fd, iov + nd, niov - nd, off + (off_t)dbytes,
					      total - dbytes);
		if (*err)
			return first;
	}
	return n;
}

/* pages_lock held: end writeback of pages[0..n); the first ok of them made
 * it to the backing file, the rest are dirty again and err (the backing
 * store's) is recorded with them. */
static void wb_end(struct pcache_file *f, struct pcache_page **pages, size_t n, size_t ok, int err)
{
	struct pcache *pc = f->cache;
	uint64_t now = _pcache_now_ns();

	for (size_t i = 0; i < n; i++) {
		struct pcache_page *p = pages[i];

		f->index->nr_writeback--;
		atomic_fetch_sub(&pc->writeback_bytes, pc->page_size);
		if (i < ok) {
			_pcache_page_mark_clean(f, p);
			continue;
		}
		p->flags = (uint16_t)((p->flags & ~PCACHE_PAGE_WRITEBACK) | PCACHE_PAGE_DIRTY);
		p->dirtied_ns = now;
		atomic_fetch_add(&pc->dirty_bytes, pc->page_size);
	}
	if (ok < n)
		_pcache_errseq_set(f, err);
	atomic_store(&pc->wb_failing, ok < n);
	atomic_fetch_add(&pc->pages_written, ok);
	pthread_cond_broadcast(&f->writeback_done);
}

/* No cache lock held: a writeback ended, wake the writers throttled at
 * dirty_limit. Called after the clean pages past clean_limit are gone, so
 * that what they allocate next does not come on top of those. */
static void wb_wake_throttled(struct pcache *pc)
{
	if (!atomic_load(&pc->throttle_waiters))
		return;
	pthread_mutex_lock(&pc->dirty_lock);
	pthread_cond_broadcast(&pc->dirty_drained);
	pthread_mutex_unlock(&pc->dirty_lock);
}

/* A failed pass (its error, if a backing one, is recorded already): count
 * it, and let the thread leave the file alone for a while. */
static void wb_failed(struct pcache_file *f)
{
	struct pcache *pc = f->cache;

	atomic_fetch_add(&pc->writeback_errors, 1);
	pthread_mutex_lock(&pc->dirty_lock);
	if (f->index)
		f->index->retry_after_ns = _pcache_now_ns() + wb_retry_delay_ns(pc);
	pthread_mutex_unlock(&pc->dirty_lock);
}

int _pcache_wb_file(struct pcache_file *f, const struct pcache_wb_req *req)
{
	struct pcache *pc = f->cache;
	struct iovec stack_iov[PCACHE_WB_STACK_BATCH];
	struct pcache_page *stack_pages[PCACHE_WB_STACK_BATCH];
	struct iovec *iov = stack_iov;
	struct pcache_page **pages = stack_pages;
	void *buf = NULL;
	struct wb_direct direct = {.fd = -1};
	size_t cap = PCACHE_WB_STACK_BATCH, want;
	unsigned puts = 0; /* the file may go clean, dirty, clean again */
	int err = 0;

	pthread_mutex_lock(&f->pages_lock);
	want = f->index ? f->dirty_pages - f->index->nr_writeback : 0;
	pthread_mutex_unlock(&f->pages_lock);
	if (!want)
		return 0;
	if (!req->use_stack) {
		cap = want < PCACHE_WB_MAX_BATCH ? want : PCACHE_WB_MAX_BATCH;
		buf = wb_buffer_get(pc, cap, req->alloc_flags, &err);
		if (buf) {
			iov = buf;
			pages = (struct pcache_page **)(iov + cap);
		} else if (req->stack_fallback) {
			/* Counted, but the data still moves: small batches
			 * from the stack, as reclaim writes. */
			atomic_fetch_add(&pc->writeback_errors, 1);
			cap = PCACHE_WB_STACK_BATCH;
			err = 0;
		} else {
			wb_failed(f);
			return err;
		}
	}
	for (;;) {
		size_t n, ok;

		pthread_mutex_lock(&f->pages_lock);
		n = wb_collect(f, req, pages, cap);
		pthread_mutex_unlock(&f->pages_lock);
		if (!n)
			break;
		ok = wb_write_pages(f, pages, n, iov, &direct, &err);
		pthread_mutex_lock(&f->pages_lock);
		wb_end(f, pages, n, ok, err);
		if (_pcache_file_undirty(f))
			puts++;
		pthread_mutex_unlock(&f->pages_lock);
		_pcache_clean_trim(pc);
		wb_wake_throttled(pc);
		if (err) {
			wb_failed(f);
			break;
		}
		if (n < cap)
			break;
	}
	wb_direct_close(&direct);
	alloc_free(pc->alloc, buf);
	while (puts--)
		_pcache_put(pc, f);
	return err;
}

/* ---- the writeback thread ---- */

void _pcache_wb_wake(struct pcache *pc)
{
	/* Under dirty_lock, so the thread cannot miss it between its check
	 * and its wait. */
	pthread_mutex_lock(&pc->dirty_lock);
	pthread_cond_signal(&pc->wb_wake);
	pthread_mutex_unlock(&pc->dirty_lock);
}

void _pcache_wb_kick(struct pcache *pc, bool urgent)
{
	if (urgent)
		atomic_store(&pc->wb_urgent, true);
	/* Callers may be inside an allocation: never wait for dirty_lock. A
	 * missed signal costs one period of the thread's timed wait. */
	if (pthread_mutex_trylock(&pc->dirty_lock) == 0) {
		pthread_cond_signal(&pc->wb_wake);
		pthread_mutex_unlock(&pc->dirty_lock);
	}
}

/* dirty_lock held: the next file the thread should write, or NULL. */
static struct pcache_file *wb_pick(struct pcache *pc, uint64_t now, bool force)
{
	uint64_t age = (uint64_t)_pcache_writeback_ms(pc) * 1000000ull;

	for (struct pcache_file *f = pc->dirty_head; f; f = f->dirty_next) {
		if (f->index->retry_after_ns > now)
			continue;
		if (force || f->dirtied_ns + age <= now)
			return f;
	}
	return NULL;
}

/* dirty_lock held: wait on cond (a CLOCK_MONOTONIC one) for period_ms at
 * most. */
static void wb_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t period_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(period_ms / 1000);
	ts.tv_nsec += (long)(period_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cond, lock, &ts);
}

static void wb_timed_wait(struct pcache *pc)
{
	uint64_t period_ms = _pcache_writeback_ms(pc) / 4 ? _pcache_writeback_ms(pc) / 4 : 1;

	wb_cond_wait_ms(&pc->wb_wake, &pc->dirty_lock, period_ms);
}

/* Pages that still take memory until written: dirty and under writeback,
 * as the kernel counts them against its dirty threshold. */
static bool wb_dirty_over_limit(struct pcache *pc)
{
	return atomic_load(&pc->dirty_bytes) + atomic_load(&pc->writeback_bytes) >
	       _pcache_dirty_limit(pc);
}

static bool wb_throttle_pointless(struct pcache *pc)
{
	return __atomic_load_n(&pc->writers_unthrottled, __ATOMIC_RELAXED) ||
	       atomic_load(&pc->wb_failing);
}

void pcache_balance_dirty(struct pcache *pc)
{
	uint64_t start, written;
	unsigned idle = 0;
	bool waited = false;

	if (!wb_dirty_over_limit(pc) || wb_throttle_pointless(pc))
		return;
	start = _pcache_now_ns();
	pthread_mutex_lock(&pc->dirty_lock);
	atomic_fetch_add(&pc->throttle_waiters, 1);
	written = atomic_load(&pc->pages_written);
	/* Only the writeback thread (or others' fsyncs) can bring the dirty
	 * bytes down while we hold nothing; without it, do not wait. */
	while (pc->wb_running && !pc->wb_stop && wb_dirty_over_limit(pc) &&
	       !wb_throttle_pointless(pc)) {
		uint64_t now_written;

		pthread_cond_signal(&pc->wb_wake);
		wb_cond_wait_ms(&pc->dirty_drained, &pc->dirty_lock, PCACHE_THROTTLE_PAUSE_MS);
		waited = true;
		now_written = atomic_load(&pc->pages_written);
		if (now_written != written) {
			written = now_written;
			idle = 0;
		} else if (++idle >= PCACHE_THROTTLE_IDLE_PAUSES) {
			/* Writeback is stuck (every file waiting out a failure,
			 * or no buffer): holding writers back frees nothing. */
			break;
		}
	}
	atomic_fetch_sub(&pc->throttle_waiters, 1);
	pthread_mutex_unlock(&pc->dirty_lock);
	if (waited) {
		atomic_fetch_add(&pc->throttled_writes, 1);
		atomic_fetch_add(&pc->throttled_ns, _pcache_now_ns() - start);
	}
}

static void *wb_thread_main(void *arg)
{
	struct pcache *pc = arg;
	/* Past dirty_limit, write on until half of it is left, as the
	 * kernel's background writeback runs down to its own threshold: a
	 * thread that stopped right under the limit would leave the disk idle
	 * while throttled writers fill the cache up to it again. */
	bool draining = false;

	pthread_mutex_lock(&pc->dirty_lock);
	while (!pc->wb_stop) {
		uint64_t age_ns = (uint64_t)_pcache_writeback_ms(pc) * 1000000ull;
		uint64_t now = _pcache_now_ns();
		uint64_t dirty = atomic_load(&pc->dirty_bytes), limit = _pcache_dirty_limit(pc);
		bool urgent = atomic_load(&pc->wb_urgent), force;

		if (dirty > limit)
			draining = true;
		else if (dirty <= limit / 2)
			draining = false;
		force = urgent || draining;
		struct pcache_file *f = wb_pick(pc, now, force);
		struct pcache_wb_req req = {
			.all = force,
			.cutoff_ns = now > age_ns ? now - age_ns : 0,
			/* Memory is short and most of it dirty: a writeback
			 * that cannot get a buffer would never free any. */
			.stack_fallback = force,
		};

		if (!f) {
			atomic_store(&pc->wb_urgent, false);
			wb_timed_wait(pc);
			continue;
		}
		_pcache_get(pc, f);
		pthread_mutex_unlock(&pc->dirty_lock);
		_pcache_wb_file(f, &req);
		if (urgent)
			_pcache_lru_shrink(pc, SIZE_MAX); /* reclaim asked: free what we cleaned */
		pthread_mutex_lock(&f->pages_lock);
		pthread_mutex_lock(&pc->dirty_lock);
		if (f->on_dirty_list) {
			uint64_t oldest = UINT64_MAX;

			for (struct pcache_page *p = f->index->uw_head; p; p = p->uw_next)
				if ((p->flags & PCACHE_PAGE_DIRTY) && p->dirtied_ns < oldest)
					oldest = p->dirtied_ns;
			if (oldest != UINT64_MAX) {
				f->dirtied_ns = oldest;
			} else {
				/* Only pages someone else is writing: look again
				 * later, not in a hot loop. */
				f->index->retry_after_ns = now + wb_retry_delay_ns(pc);
			}
			_pcache_dirty_requeue(pc, f);
		}
		pthread_mutex_unlock(&pc->dirty_lock);
		pthread_mutex_unlock(&f->pages_lock);
		_pcache_put(pc, f);
		pthread_mutex_lock(&pc->dirty_lock);
	}
	pthread_mutex_unlock(&pc->dirty_lock);
	return NULL;
}

int pcache_writeback_start(struct pcache *pc)
{
	int err = 0;

	pthread_mutex_lock(&pc->dirty_lock);
	if (!pc->wb_running) {
		pc->wb_stop = false;
		err = -pthread_create(&pc->wb_thread, NULL, wb_thread_main, pc);
		pc->wb_running = err == 0;
	}
	pthread_mutex_unlock(&pc->dirty_lock);
	return err;
}

void pcache_writeback_stop(struct pcache *pc)
{
	bool join;

	pthread_mutex_lock(&pc->dirty_lock);
	join = pc->wb_running;
	pc->wb_stop = true;
	pthread_cond_signal(&pc->wb_wake);
	pthread_cond_broadcast(&pc->dirty_drained); /* nothing to wait for now */
	pthread_mutex_unlock(&pc->dirty_lock);
	if (join)
		pthread_join(pc->wb_thread, NULL);
	pthread_mutex_lock(&pc->dirty_lock);
	pc->wb_running = false;
	pthread_mutex_unlock(&pc->dirty_lock);
}

/* ---- fsync, flush, sync ---- */

/* f->lock held: write every dirty page and wait for writeback others
 * started. Pages that someone else's failed writeback handed back dirty
 * get another round; a few rounds at most. */
static int file_write_all(struct pcache_file *f, const struct pcache_wb_req *req)
{
	int err = 0;

	for (int round = 0; round < 8; round++) {
		bool left;

		err = _pcache_wb_file(f, req);
		if (err)
			return err;
		pthread_mutex_lock(&f->pages_lock);
		_pcache_wait_writeback(f);
		left = f->dirty_pages != 0;
		pthread_mutex_unlock(&f->pages_lock);
		if (!left)
			return 0;
	}
	return -EIO;
}

int pcache_flush_file(struct pcache_file *f)
{
	struct pcache_wb_req req = {.all = true, .alloc_flags = ALLOC_NOFS};
	int err;

	pthread_mutex_lock(&f->lock);
	err = file_write_all(f, &req);
	pthread_mutex_unlock(&f->lock);
	return err;
}

int pcache_fsync_handle(struct pcache_file *f, bool datasync, pcache_errseq_t *seen)
{
	struct pcache_wb_req req = {.all = true, .alloc_flags = ALLOC_NOFS};
	int err, recorded;

	pthread_mutex_lock(&f->lock);
	/* A backing write that fails here is recorded by wb_end, for every
	 * description; only -ENOMEM (no buffer) is this call's alone. */
	err = file_write_all(f, &req);
	if (!err && (datasync ? fdatasync(f->fd) : fsync(f->fd)) < 0) {
		err = -errno;
		pthread_mutex_lock(&f->pages_lock);
		_pcache_errseq_set(f, err);
		pthread_mutex_unlock(&f->pages_lock);
	}
	pthread_mutex_lock(&f->pages_lock);
	recorded = errseq_check_and_advance(f, seen);
	pthread_mutex_unlock(&f->pages_lock);
	pthread_mutex_unlock(&f->lock);
	return recorded ? recorded : err;
}

int pcache_fsync(struct pcache_file *f, bool datasync)
{
	pcache_errseq_t seen = pcache_file_errseq_sample(f);

	return pcache_fsync_handle(f, datasync, &seen);
}

int pcache_sync_all(struct pcache *pc)
{
	/* sync_all is what unmount relies on: it must not lose data to a
	 * failed buffer allocation, so it falls back to the stack. */
	struct pcache_wb_req req = {.all = true, .stack_fallback = true};
	struct pcache_file *f;
	uint64_t seq;
	int first = 0;

	pthread_mutex_lock(&pc->sync_lock);
	seq = ++pc->pass_seq[PCACHE_PASS_SYNC];
	while ((f = _pcache_dirty_next_unvisited(pc, PCACHE_PASS_SYNC, seq))) {
		int err = _pcache_wb_file(f, &req);
		bool again;

		pthread_mutex_lock(&f->pages_lock);
		_pcache_wait_writeback(f);
		again = !err && f->dirty_pages;
		pthread_mutex_unlock(&f->pages_lock);
		/* Pages a failed writeback elsewhere handed back (or new
		 * writes): one more pass, whose error counts. */
		if (again)
			err = _pcache_wb_file(f, &req);
		if (err && !first)
			first = err;
		_pcache_put(pc, f);
	}
	pthread_mutex_unlock(&pc->sync_lock);
	return first;
}
