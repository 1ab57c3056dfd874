/*
 * I/O on the backing file: reading pages in, writing runs of pages out,
 * setting its size. Nothing here knows the cache's lists or locks.
 *
 * Direct writeback: the page cache above already is the file's page cache,
 * so a long run of pages goes to the disk with O_DIRECT instead of being
 * copied into the backing fs's page cache as well (which cost most of the
 * daemon's CPU in a sequential write, and memory twice over). One pass
 * opens a second, O_DIRECT descriptor of the backing file through
 * /proc/self/fd when it first meets such a run, and closes it at its end.
 * Short runs (random small writes), unaligned ones (a file's tail) and
 * backing filesystems without direct I/O take the buffered path. The
 * kernel keeps the two paths coherent: a direct write first writes and
 * drops the backing page cache over its range.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backing_i.h"

/* pread exactly len bytes (or up to EOF, zero-filling the rest). */
int _pcache_backing_read(int fd, unsigned char *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, off + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	memset(buf + done, 0, len - done);
	return 0;
}

/* A short count goes on from where it stopped: the next call reports
 * the kernel's reason (ENOSPC), or 0 bytes, which is an error too. */
int _pcache_backing_write(int fd, const unsigned char *buf, size_t len, off_t off, size_t *written)
{
	size_t done = 0;
	int err = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, buf + done, len - done, off + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (n == 0) {
			err = -EIO;
			break;
		}
		done += (size_t)n;
	}
	*written = done;
	return err;
}

/* Set the backing file's size: through f->fd if it is writable, else by
 * path, with the process's own permission (a file no writer has open). */
int _pcache_backing_truncate(struct pcache_file *f, off_t size)
{
	char path[32];

	if (ftruncate(f->fd, size) == 0)
		return 0;
	/* EBADF or EINVAL: f->fd is not open for writing. */
	if (errno != EBADF && errno != EINVAL)
		return -errno;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", f->fd);
	return truncate(path, size) < 0 ? -errno : 0;
}

static int wb_direct_open(struct pcache_file *f, struct pcache_direct *d)
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

void _pcache_backing_direct_close(struct pcache_direct *d)
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
static size_t wb_direct_prefix(struct pcache_file *f, struct pcache_direct *d,
			       const struct iovec *iov, size_t niov, off_t off, size_t *bytes)
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

/* Write the dirty bytes of pages[0..n) (sorted, under writeback, stable):
 * one pwritev per run of bytes that meet end to start, across pages too.
 * Returns how many pages reached the backing file whole before an error,
 * and the error. */
size_t _pcache_backing_write_pages(struct pcache_file *f, struct pcache_page **pages, size_t n,
				   struct iovec *iov, struct pcache_direct *d, int *err)
{
	struct pcache *pc = f->cache;
	unsigned delay_us = __atomic_load_n(&pc->writeback_delay_us, __ATOMIC_RELAXED);
	size_t i = 0, undelayed = 0;
	uint32_t at = 0; /* where the next run of pages[i] is looked for */

	*err = 0;
	while (i < n) {
		size_t first = i, niov = 0, total = 0, nd = 0, dbytes = 0;
		uint32_t s, e;
		off_t off;

		if (!_pcache_page_dirty_run(pc, pages[i], at, &s, &e)) {
			i++;
			at = 0;
			continue;
		}
		off = (off_t)(pages[i]->index << pc->page_shift) + s;
		for (;;) {
			iov[niov].iov_base = pages[i]->data + s;
			iov[niov].iov_len = e - s;
			total += e - s;
			niov++;
			at = e;
			if (e < pc->page_size || niov >= IOV_MAX || i + 1 >= n ||
			    pages[i + 1]->index != pages[i]->index + 1 ||
			    !_pcache_page_dirty_run(pc, pages[i + 1], 0, &s, &e) || s != 0)
				break;
			i++;
		}

		if (delay_us && i + 1 > undelayed) {
			uint64_t us = (uint64_t)delay_us *
				      (i + 1 - (first > undelayed ? first : undelayed));
			struct timespec ts = {.tv_sec = (time_t)(us / 1000000),
					      .tv_nsec = (long)(us % 1000000) * 1000};

			undelayed = i + 1;
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
