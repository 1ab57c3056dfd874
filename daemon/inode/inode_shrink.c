/*
 * The inode shrinker. Every inode the kernel holds costs the daemon one fd,
 * and the kernel lets go of inodes only when it is short of memory, so a
 * big tree can exhaust RLIMIT_NOFILE. Past half the limit, a thread asks the
 * kernel to drop dentries of unused, clean inodes with a known name
 * (fuse_lowlevel_notify_inval_entry); the kernel then forgets the inodes it
 * can, and their records and fds go. Open files and busy dentries stay.
 *
 * A dirty file is not shrinkable (the cache holds a reference until its
 * pages are written), and files created and written faster than writeback
 * ages them out would fill the fd table with dirty records. So when the
 * clean ones are too few, the shrinker writes back dirty files no one has
 * open, oldest first, and drops them next.
 *
 * Each notification needs the kernel's lock of the parent directory, which
 * every create in that directory holds while the daemon serves it: many
 * creators in one directory can outrun the shrinker. Two things keep them
 * from running out of fds: close() waits for a shrinker round when the
 * table is well past the mark (pfs_shrink_throttle), and an open that meets
 * EMFILE anyway gets one of a few reserved fds (pfs_shrink_urgent).
 *
 * It also closes the write fds that writers left behind for dirty pages
 * (struct pfs_inode's write_fd) once those pages are written back: while
 * the daemon holds one, execve of the backing file fails with ETXTBSY.
 *
 * The shrinker must work when memory is short (that is when the cache is
 * full of the pages that pin files), so it never allocates: its batch lives
 * on its own stack. It holds no lock while it writes back or notifies the
 * kernel, so a lookup waiting for an fd never waits for it in turn.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "daemon_i.h"

#define PFS_SHRINK_BATCH 256

struct pfs_shrink_victim {
	fuse_ino_t parent;
	char name[NAME_MAX + 1];
};

/* A dirty file to write back, by key: the record is found again (with a
 * reference) when its turn comes. */
struct pfs_shrink_dirty {
	dev_t dev;
	ino_t ino;
	uint64_t dirtied_ns;
};

/* One round's work, on the shrinker thread's stack. */
struct pfs_shrink_batch {
	struct pfs_shrink_victim victims[PFS_SHRINK_BATCH];
	struct pfs_shrink_dirty dirty[PFS_SHRINK_BATCH];
	int cursor; /* the shard the next clean pass starts at */
};

/* Unused, clean records with a known name: what the kernel may drop. Starts
 * where the last pass stopped, so dentries the kernel keeps (a cwd, a busy
 * mount point) do not fill every batch. */
static unsigned pfs_shrink_collect(struct pfs *fs, struct pfs_shrink_batch *b, unsigned max)
{
	struct pfs_shrink_victim *v = b->victims;
	unsigned n = 0;
	int i, step;

	pthread_rwlock_rdlock(&fs->inodes.hint_lock);
	for (step = 0; step < PFS_INODE_SHARDS && n < max; step++) {
		struct pfs_inode_shard *s;

		i = (b->cursor + step) % PFS_INODE_SHARDS;
		s = &fs->inodes.shards[i];
		pthread_mutex_lock(&s->lock);
		for (size_t k = 0; k < s->nbuckets && n < max; k++)
			for (struct pfs_inode *in = s->buckets[k]; in && n < max;
			     in = in->hash_next) {
				if (!in->nlookup || in->refs || !in->hint_name ||
				    !in->hint_parent ||
				    __atomic_load_n(&in->opens, __ATOMIC_RELAXED) ||
				    strlen(in->hint_name) > NAME_MAX)
					continue;
				v[n].parent = in->hint_parent == &fs->inodes.root
						      ? FUSE_ROOT_ID
						      : (fuse_ino_t)(uintptr_t)in->hint_parent;
				strcpy(v[n].name, in->hint_name);
				n++;
			}
		pthread_mutex_unlock(&s->lock);
	}
	pthread_rwlock_unlock(&fs->inodes.hint_lock);
	b->cursor = (b->cursor + step) % PFS_INODE_SHARDS;
	return n;
}

/* Max-heap on dirtied_ns: the root is the youngest file kept so far. */
static void pfs_shrink_heap_sift(struct pfs_shrink_dirty *h, unsigned n, unsigned i)
{
	for (;;) {
		unsigned big = i, l = 2 * i + 1, r = l + 1;
		struct pfs_shrink_dirty t;

		if (l < n && h[l].dirtied_ns > h[big].dirtied_ns)
			big = l;
		if (r < n && h[r].dirtied_ns > h[big].dirtied_ns)
			big = r;
		if (big == i)
			return;
		t = h[i];
		h[i] = h[big];
		h[big] = t;
		i = big;
	}
}

static void pfs_shrink_heap_push(struct pfs_shrink_dirty *h, unsigned n)
{
	for (unsigned i = n; i > 0;) {
		unsigned up = (i - 1) / 2;
		struct pfs_shrink_dirty t;

		if (h[up].dirtied_ns >= h[i].dirtied_ns)
			return;
		t = h[i];
		h[i] = h[up];
		h[up] = t;
		i = up;
	}
}

static int pfs_shrink_dirty_cmp(const void *a, const void *b)
{
	const struct pfs_shrink_dirty *x = a, *y = b;

	return x->dirtied_ns < y->dirtied_ns ? -1 : x->dirtied_ns > y->dirtied_ns;
}

/*
 * The oldest dirty regular files no one has open, at most max, oldest
 * first; those the kernel has forgotten too (kept only by their dirty
 * pages). dirty_pages and dirtied_ns belong to the cache's locks, which
 * rank before a shard lock: they are read without them, as estimates. A
 * stale one only writes back a younger file first.
 */
static unsigned pfs_shrink_collect_dirty(struct pfs *fs, struct pfs_shrink_batch *b, unsigned max)
{
	struct pfs_shrink_dirty *h = b->dirty;
	unsigned n = 0;

	for (int i = 0; i < PFS_INODE_SHARDS; i++) {
		struct pfs_inode_shard *s = &fs->inodes.shards[i];

		pthread_mutex_lock(&s->lock);
		for (size_t k = 0; k < s->nbuckets; k++)
			for (struct pfs_inode *in = s->buckets[k]; in; in = in->hash_next) {
				struct pfs_shrink_dirty d;

				if (in->type != S_IFREG || !in->refs ||
				    !pfs_inode_cache_ready(in) ||
				    __atomic_load_n(&in->opens, __ATOMIC_RELAXED) ||
				    !__atomic_load_n(&in->cache.dirty_pages, __ATOMIC_RELAXED))
					continue;
				d.dev = in->dev;
				d.ino = in->ino;
				d.dirtied_ns =
					__atomic_load_n(&in->cache.dirtied_ns, __ATOMIC_RELAXED);
				if (n < max) {
					h[n] = d;
					pfs_shrink_heap_push(h, n++);
				} else if (d.dirtied_ns < h[0].dirtied_ns) {
					h[0] = d;
					pfs_shrink_heap_sift(h, n, 0);
				}
			}
		pthread_mutex_unlock(&s->lock);
	}
	qsort(h, n, sizeof(*h), pfs_shrink_dirty_cmp);
	return n;
}

/* Write back the files collected; returns how many are clean now. The
 * records are found again by key: one may have gone meanwhile. */
static unsigned pfs_shrink_write_back(struct pfs *fs, struct pfs_shrink_batch *b, unsigned n)
{
	unsigned clean = 0;

	for (unsigned i = 0; i < n; i++) {
		struct pfs_inode *in;

		if (__atomic_load_n(&fs->shrink.stop, __ATOMIC_RELAXED))
			break;
		in = pfs_inode_find(fs, b->dirty[i].dev, b->dirty[i].ino);
		if (!in)
			continue;
		/* A failure stays in the file's error for its next fsync. */
		if (in->type == S_IFREG && pfs_inode_cache_ready(in) &&
		    pcache_flush_file(&in->cache) == 0)
			clean++;
		pfs_inode_unref(fs, in);
	}
	return clean;
}

/* Write fds kept for dirty pages after the last writer left: close those
 * whose pages are clean now (pfs_inode_write_fd_release checks under the
 * inode's open_lock; the scan only finds candidates). */
static void pfs_shrink_write_fds(struct pfs *fs, struct pfs_shrink_batch *b)
{
	unsigned n = 0;

	for (int i = 0; i < PFS_INODE_SHARDS && n < PFS_SHRINK_BATCH; i++) {
		struct pfs_inode_shard *s = &fs->inodes.shards[i];

		pthread_mutex_lock(&s->lock);
		for (size_t k = 0; k < s->nbuckets && n < PFS_SHRINK_BATCH; k++)
			for (struct pfs_inode *in = s->buckets[k]; in && n < PFS_SHRINK_BATCH;
			     in = in->hash_next) {
				if (in->type != S_IFREG ||
				    __atomic_load_n(&in->write_fd, __ATOMIC_RELAXED) < 0 ||
				    __atomic_load_n(&in->writers, __ATOMIC_RELAXED))
					continue;
				b->dirty[n].dev = in->dev;
				b->dirty[n].ino = in->ino;
				n++;
			}
		pthread_mutex_unlock(&s->lock);
	}
	for (unsigned i = 0; i < n; i++) {
		struct pfs_inode *in = pfs_inode_find(fs, b->dirty[i].dev, b->dirty[i].ino);

		if (!in)
			continue;
		pfs_inode_write_fd_release(fs, in);
		pfs_inode_unref(fs, in);
	}
}

/* One round: bring the table from n records towards three quarters of
 * shrink_high. Returns how many dentries it asked the kernel to drop. */
static unsigned pfs_shrink_round(struct pfs *fs, struct pfs_shrink_batch *b, long n)
{
	long want = n - fs->shrink.high * 3 / 4;
	unsigned max = want < PFS_SHRINK_BATCH ? (unsigned)want : PFS_SHRINK_BATCH;
	unsigned got = pfs_shrink_collect(fs, b, max);

	if (got < max) {
		unsigned dirty = pfs_shrink_collect_dirty(fs, b, max - got);
		unsigned clean = pfs_shrink_write_back(fs, b, dirty);

		__atomic_add_fetch(&fs->shrink.written, clean, __ATOMIC_RELAXED);
		/* Forgotten ones went with their last page; the rest are
		 * clean now and can be dropped in this same round. */
		if (clean)
			got = pfs_shrink_collect(fs, b, max);
	}
	/* The kernel forgets what it can drop; open or busy dentries stay.
	 * Counted one by one: opens waiting for an fd watch this for
	 * progress (pfs_shrink_wait_fd), and each notification may wait for
	 * a lookup in that directory to finish. */
	for (unsigned i = 0; i < got; i++) {
		fuse_lowlevel_notify_inval_entry(fs->conn.se, b->victims[i].parent,
						 b->victims[i].name, strlen(b->victims[i].name));
		__atomic_add_fetch(&fs->shrink.invalidated, 1, __ATOMIC_RELAXED);
	}
	__atomic_add_fetch(&fs->shrink.rounds, 1, __ATOMIC_RELEASE);
	return got;
}

/*
 * The fd reserve: a few fds held while fds are plentiful and given back
 * when an open meets EMFILE, so that the open goes through at once. The
 * shrinker may be stuck meanwhile: its notification waits for the kernel's
 * lock of the directory that this very lookup holds. Only the shrinker
 * thread (and start/stop) fills slots; anyone may empty one.
 */
static void pfs_shrink_reserve_fill(struct pfs *fs)
{
	for (unsigned i = 0; i < fs->shrink.reserve_size; i++) {
		int fd;

		if (__atomic_load_n(&fs->shrink.reserve[i], __ATOMIC_RELAXED) >= 0)
			continue;
		fd = open("/", O_PATH | O_CLOEXEC);
		if (fd < 0)
			return;
		__atomic_store_n(&fs->shrink.reserve[i], fd, __ATOMIC_RELEASE);
	}
}

/* Close one reserved fd; false if the reserve is empty. */
static bool pfs_shrink_reserve_release(struct pfs *fs)
{
	for (unsigned i = 0; i < fs->shrink.reserve_size; i++) {
		int fd = __atomic_exchange_n(&fs->shrink.reserve[i], -1, __ATOMIC_ACQ_REL);

		if (fd >= 0) {
			close(fd);
			return true;
		}
	}
	return false;
}

static void *pfs_shrink_main(void *data)
{
	struct pfs *fs = data;
	/* Never from the allocator: see the top of the file. */
	struct pfs_shrink_batch batch = {.cursor = 0}, *b = &batch;
	bool busy = false;

	pthread_mutex_lock(&fs->shrink.lock);
	while (!fs->shrink.stop) {
		struct timespec until;
		long n;

		/* Pace: a short nap while the kernel catches up with the last
		 * batch (its forgets), a long one when there is nothing to do. */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += busy ? 20 * 1000 * 1000 : 0;
		until.tv_sec += busy ? 0 : 1;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&fs->shrink.wake, &fs->shrink.lock, &until);
		n = __atomic_load_n(&fs->inodes.count, __ATOMIC_RELAXED);
		busy = false;
		if (fs->shrink.stop)
			continue;
		if (__atomic_load_n(&fs->inodes.write_fds_idle, __ATOMIC_RELAXED) > 0) {
			pthread_mutex_unlock(&fs->shrink.lock);
			pfs_shrink_write_fds(fs, b);
			pthread_mutex_lock(&fs->shrink.lock);
		}
		if (n <= fs->shrink.high) {
			pfs_shrink_reserve_fill(fs);
			continue;
		}
		pthread_mutex_unlock(&fs->shrink.lock);
		busy = pfs_shrink_round(fs, b, n) > 0;
		/* Take back what the last round's opens used, if fds allow:
		 * they are given away again at the first EMFILE. */
		pfs_shrink_reserve_fill(fs);
		pthread_mutex_lock(&fs->shrink.lock);
	}
	pthread_mutex_unlock(&fs->shrink.lock);
	return NULL;
}

/* Wake the shrinker thread; a trylock, since a missed wake costs only
 * one period of its timed wait. */
static void pfs_shrink_wake(struct pfs *fs)
{
	if (pthread_mutex_trylock(&fs->shrink.lock) == 0) {
		pthread_cond_signal(&fs->shrink.wake);
		pthread_mutex_unlock(&fs->shrink.lock);
	}
}

/* An open ran out of fds: hand it one from the reserve, or wake the
 * shrinker and give it a moment. */
static void pfs_shrink_urgent(struct pfs *fs)
{
	struct timespec nap = {.tv_nsec = 10 * 1000 * 1000};

	if (pfs_shrink_running(fs))
		pfs_shrink_wake(fs);
	if (pfs_shrink_reserve_release(fs)) {
		__atomic_add_fetch(&fs->shrink.reserve_used, 1, __ATOMIC_RELAXED);
		return;
	}
	nanosleep(&nap, NULL);
}

/* Lookups that come faster than the shrinker frees fds (a stat of every
 * name in a big directory) wait for it for as long as it makes progress:
 * failing after a fixed number of naps turned a slow shrinker into EMFILE
 * for the application. Without progress for 100 naps (about a second), or
 * after 6,000 tries, the open fails. */
bool pfs_shrink_wait_fd(struct pfs *fs, struct pfs_shrink_wait *w)
{
	unsigned long long done = __atomic_load_n(&fs->shrink.invalidated, __ATOMIC_RELAXED);

	if (w->tries++ == 0 || done != w->seen) {
		w->seen = done;
		w->idle = 0;
	} else if (++w->idle > 100) {
		return false;
	}
	if (w->tries > 6000)
		return false;
	pfs_shrink_urgent(fs);
	return true;
}

/*
 * Called by close() (FUSE flush), where the caller holds no kernel lock:
 * when the table runs a quarter past shrink_high, hold it until the
 * shrinker has finished a round (20 naps at most). Creators in one
 * directory otherwise win every race for that directory's kernel lock,
 * which each of the shrinker's notifications needs too, and fds run out.
 * A round, not the count, ends the wait: the forgets that lower the count
 * may need this very thread (single-threaded loop).
 */
void pfs_shrink_throttle(struct pfs *fs)
{
	struct timespec nap = {.tv_nsec = 10 * 1000 * 1000};
	long mark = fs->shrink.high + fs->shrink.high / 4;
	unsigned long long round = __atomic_load_n(&fs->shrink.rounds, __ATOMIC_ACQUIRE);

	if (!pfs_shrink_running(fs))
		return;
	for (int i = 0; i < 20 && __atomic_load_n(&fs->inodes.count, __ATOMIC_RELAXED) > mark &&
			__atomic_load_n(&fs->shrink.rounds, __ATOMIC_ACQUIRE) == round;
	     i++) {
		if (i == 0)
			__atomic_add_fetch(&fs->shrink.throttled, 1, __ATOMIC_RELAXED);
		pfs_shrink_wake(fs);
		nanosleep(&nap, NULL);
	}
}

bool pfs_shrink_running(struct pfs *fs)
{
	return __atomic_load_n(&fs->shrink.running, __ATOMIC_ACQUIRE);
}

bool pfs_shrink_wants_close(struct pfs *fs)
{
	/* high, not the throttle's mark above it: a file opened on the way up
	 * is closed past the mark. */
	return pfs_shrink_running(fs) &&
	       __atomic_load_n(&fs->inodes.count, __ATOMIC_RELAXED) > fs->shrink.high;
}

int pfs_inode_shrinker_start(struct pfs *fs)
{
	struct rlimit rl;
	int r;

	/* main raised the soft limit as far as it could: say how far. */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		rl.rlim_cur = 1 << 20;
	fs->shrink.high = (long)(rl.rlim_cur / 2);
	fs->shrink.stop = false;
	fs->shrink.invalidated = 0;
	fs->shrink.written = 0;
	fs->shrink.reserve_used = 0;
	fs->shrink.throttled = 0;
	fs->shrink.rounds = 0;
	/* A sixteenth of the fds at most: tiny limits keep theirs for inodes. */
	fs->shrink.reserve_size =
		(unsigned)(rl.rlim_cur / 16 < PFS_SHRINK_RESERVE ? rl.rlim_cur / 16
								 : PFS_SHRINK_RESERVE);
	for (unsigned i = 0; i < PFS_SHRINK_RESERVE; i++)
		fs->shrink.reserve[i] = -1;
	pfs_shrink_reserve_fill(fs);
	pfs_log(PFS_LOG_INFO, "fd limit %llu: the inode shrinker starts above %ld inodes",
		(unsigned long long)rl.rlim_cur, fs->shrink.high);
	pthread_mutex_init(&fs->shrink.lock, NULL);
	pthread_cond_init(&fs->shrink.wake, NULL);
	r = -pthread_create(&fs->shrink.thread, NULL, pfs_shrink_main, fs);
	__atomic_store_n(&fs->shrink.running, r == 0, __ATOMIC_RELEASE);
	if (r)
		while (pfs_shrink_reserve_release(fs))
			;
	return r;
}

void pfs_inode_shrinker_stop(struct pfs *fs)
{
	if (!pfs_shrink_running(fs))
		return;
	pthread_mutex_lock(&fs->shrink.lock);
	__atomic_store_n(&fs->shrink.stop, true, __ATOMIC_RELAXED);
	pthread_cond_signal(&fs->shrink.wake);
	pthread_mutex_unlock(&fs->shrink.lock);
	pthread_join(fs->shrink.thread, NULL);
	__atomic_store_n(&fs->shrink.running, false, __ATOMIC_RELEASE);
	while (pfs_shrink_reserve_release(fs))
		;
	if (fs->shrink.invalidated || fs->shrink.reserve_used)
		pfs_log(PFS_LOG_INFO,
			"inode shrinker: %llu dentries dropped, %llu dirty files written back "
			"early, %llu opens got a reserved fd, %llu closes held back",
			fs->shrink.invalidated, fs->shrink.written, fs->shrink.reserve_used,
			fs->shrink.throttled);
}
