/*
 * Writeback: moving dirty pages to the backing file.
 *
 * One routine, _pcache_wb_file(), writes a file's dirty pages in index
 * order, coalescing adjacent ranges into one pwritev(). The writeback
 * thread, fsync, flush and sync_all all use it; reclaim uses it in its
 * no-allocation mode. Pages go DIRTY -> WRITEBACK under pages_lock, the
 * I/O runs without any cache lock, and they come back clean, or dirty
 * again on failure, so nothing acknowledged is dropped. The bytes go out
 * through backing.c (long aligned runs with O_DIRECT).
 *
 * Errors: a backing write that fails hands its pages back dirty and, in the
 * same critical section, records the error in the file's errseq, so that no
 * fsync can find the pages clean-looking and the error not yet there. A
 * writeback that cannot get its buffer has written nothing and lost
 * nothing: that is no error of the file, only of the call that needed it
 * (an fsync returns -ENOMEM; the thread tries again later).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "backing_i.h"
#include "dirty_i.h"
#include "lru_i.h"
#include "page_i.h"
#include "writeback_i.h"

void _pcache_wb_init(struct pcache_wb *wb)
{
	pthread_condattr_t cattr;

	memset(wb, 0, sizeof(*wb));
	pthread_mutex_init(&wb->sync_lock, NULL);
	pthread_condattr_init(&cattr);
	/* Throttled writers' timed waits count in CLOCK_MONOTONIC. */
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&wb->drained, &cattr);
	pthread_condattr_destroy(&cattr);
	atomic_init(&wb->urgent, false);
	atomic_init(&wb->throttle_waiters, 0);
	atomic_init(&wb->failing, false);
}

void _pcache_wb_destroy(struct pcache_wb *wb)
{
	pthread_cond_destroy(&wb->drained);
	pthread_mutex_destroy(&wb->sync_lock);
}

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

static unsigned writeback_ms_of(const struct pcache *pc)
{
	return __atomic_load_n(&pc->writeback_ms, __ATOMIC_RELAXED);
}

/* Back-off before a file whose writeback failed is tried again. */
static uint64_t wb_retry_delay_ns(const struct pcache *pc)
{
	uint64_t ms = writeback_ms_of(pc) / 4;

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
		/* clear_page_dirty_for_io: the bytes stay in dirty, from, to. */
		p->flags = (uint8_t)((p->flags & ~PCACHE_PAGE_DIRTY) | PCACHE_PAGE_WRITEBACK);
		ix->nr_writeback++;
		atomic_fetch_sub(&pc->dirty_bytes, pc->page_size);
		atomic_fetch_add(&pc->writeback_bytes, pc->page_size);
		pages[n++] = p;
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
		p->flags = (uint8_t)((p->flags & ~PCACHE_PAGE_WRITEBACK) | PCACHE_PAGE_DIRTY);
		p->dirtied_ns = now;
		atomic_fetch_add(&pc->dirty_bytes, pc->page_size);
	}
	if (ok < n)
		_pcache_errseq_set(f, err);
	atomic_store(&pc->wb.failing, ok < n);
	atomic_fetch_add(&pc->pages_written, ok);
	pthread_cond_broadcast(&f->writeback_done);
}

/* No cache lock held: a writeback ended, wake the writers throttled at
 * dirty_limit. Called after the clean pages past clean_limit are gone, so
 * that what they allocate next does not come on top of those. */
static void wb_wake_throttled(struct pcache *pc)
{
	if (!atomic_load(&pc->wb.throttle_waiters))
		return;
	pthread_mutex_lock(&pc->dirty.lock);
	pthread_cond_broadcast(&pc->wb.drained);
	pthread_mutex_unlock(&pc->dirty.lock);
}

/* A failed pass (its error, if a backing one, is recorded already): count
 * it, and let the thread leave the file alone for a while. */
static void wb_failed(struct pcache_file *f)
{
	struct pcache *pc = f->cache;

	atomic_fetch_add(&pc->writeback_errors, 1);
	_pcache_dirty_retry_after(f, _pcache_now_ns() + wb_retry_delay_ns(pc));
}

int _pcache_wb_file(struct pcache_file *f, const struct pcache_wb_req *req)
{
	struct pcache *pc = f->cache;
	struct iovec stack_iov[PCACHE_WB_STACK_BATCH];
	struct pcache_page *stack_pages[PCACHE_WB_STACK_BATCH];
	struct iovec *iov = stack_iov;
	struct pcache_page **pages = stack_pages;
	void *buf = NULL;
	struct pcache_direct direct = {.fd = -1};
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
		ok = _pcache_backing_write_pages(f, pages, n, iov, &direct, &err);
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
	_pcache_backing_direct_close(&direct);
	alloc_free(pc->alloc, buf);
	while (puts--)
		_pcache_file_put(f);
	return err;
}

/* ---- the writeback thread ---- */

void _pcache_wb_kick(struct pcache *pc, bool urgent)
{
	if (urgent)
		atomic_store(&pc->wb.urgent, true);
	/* Callers may be inside an allocation: never wait for dirty.lock. A
	 * missed signal costs one period of the thread's timed wait. */
	if (pthread_mutex_trylock(&pc->dirty.lock) == 0) {
		pthread_cond_signal(&pc->dirty.wake);
		pthread_mutex_unlock(&pc->dirty.lock);
	}
}

/* dirty.lock held: wait on cond (a CLOCK_MONOTONIC one) for period_ms at
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
	uint64_t period_ms = writeback_ms_of(pc) / 4 ? writeback_ms_of(pc) / 4 : 1;

	wb_cond_wait_ms(&pc->dirty.wake, &pc->dirty.lock, period_ms);
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
	       atomic_load(&pc->wb.failing);
}

void pcache_balance_dirty(struct pcache *pc)
{
	uint64_t start, written;
	unsigned idle = 0;
	bool waited = false;

	if (!wb_dirty_over_limit(pc) || wb_throttle_pointless(pc))
		return;
	start = _pcache_now_ns();
	pthread_mutex_lock(&pc->dirty.lock);
	atomic_fetch_add(&pc->wb.throttle_waiters, 1);
	written = atomic_load(&pc->pages_written);
	/* Only the writeback thread (or others' fsyncs) can bring the dirty
	 * bytes down while we hold nothing; without it, do not wait. */
	while (pc->wb.running && !pc->wb.stop && wb_dirty_over_limit(pc) &&
	       !wb_throttle_pointless(pc)) {
		uint64_t now_written;

		pthread_cond_signal(&pc->dirty.wake);
		wb_cond_wait_ms(&pc->wb.drained, &pc->dirty.lock, PCACHE_THROTTLE_PAUSE_MS);
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
	atomic_fetch_sub(&pc->wb.throttle_waiters, 1);
	pthread_mutex_unlock(&pc->dirty.lock);
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

	pthread_mutex_lock(&pc->dirty.lock);
	while (!pc->wb.stop) {
		uint64_t age_ns = (uint64_t)writeback_ms_of(pc) * 1000000ull;
		uint64_t now = _pcache_now_ns();
		uint64_t dirty = atomic_load(&pc->dirty_bytes), limit = _pcache_dirty_limit(pc);
		bool urgent = atomic_load(&pc->wb.urgent), force;

		if (dirty > limit)
			draining = true;
		else if (dirty <= limit / 2)
			draining = false;
		force = urgent || draining;
		struct pcache_file *f = _pcache_dirty_next_due(pc, now, age_ns, force);
		struct pcache_wb_req req = {
			.all = force,
			.cutoff_ns = now > age_ns ? now - age_ns : 0,
			/* Memory is short and most of it dirty: a writeback
			 * that cannot get a buffer would never free any. */
			.stack_fallback = force,
		};

		if (!f) {
			atomic_store(&pc->wb.urgent, false);
			wb_timed_wait(pc);
			continue;
		}
		_pcache_file_get(f);
		pthread_mutex_unlock(&pc->dirty.lock);
		_pcache_wb_file(f, &req);
		if (urgent)
			_pcache_lru_shrink(pc, SIZE_MAX); /* reclaim asked: free what we cleaned */
		_pcache_dirty_requeue_aged(f, now + wb_retry_delay_ns(pc));
		_pcache_file_put(f);
		pthread_mutex_lock(&pc->dirty.lock);
	}
	pthread_mutex_unlock(&pc->dirty.lock);
	return NULL;
}

int pcache_writeback_start(struct pcache *pc)
{
	int err = 0;

	pthread_mutex_lock(&pc->dirty.lock);
	if (!pc->wb.running) {
		pc->wb.stop = false;
		err = -pthread_create(&pc->wb.thread, NULL, wb_thread_main, pc);
		pc->wb.running = err == 0;
	}
	pthread_mutex_unlock(&pc->dirty.lock);
	return err;
}

void pcache_writeback_stop(struct pcache *pc)
{
	bool join;

	pthread_mutex_lock(&pc->dirty.lock);
	join = pc->wb.running;
	pc->wb.stop = true;
	pthread_cond_signal(&pc->dirty.wake);
	pthread_cond_broadcast(&pc->wb.drained); /* nothing to wait for now */
	pthread_mutex_unlock(&pc->dirty.lock);
	if (join)
		pthread_join(pc->wb.thread, NULL);
	pthread_mutex_lock(&pc->dirty.lock);
	pc->wb.running = false;
	pthread_mutex_unlock(&pc->dirty.lock);
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

	pthread_mutex_lock(&pc->wb.sync_lock);
	seq = ++pc->wb.sync_seq;
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
		_pcache_file_put(f);
	}
	pthread_mutex_unlock(&pc->wb.sync_lock);
	return first;
}
void _pcache_wait_writeback(struct pcache_file *f)
{
	while (f->index && f->index->nr_writeback)
		pthread_cond_wait(&f->writeback_done, &f->pages_lock);
}
