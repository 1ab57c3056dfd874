/*
 * backing.c: I/O on a file's backing file. Calls nothing else of the
 * cache: it reads into and writes from page memory it is handed.
 */
#ifndef PFS_CACHE_BACKING_I_H
#define PFS_CACHE_BACKING_I_H

#include "pcache_i.h"

/* The O_DIRECT descriptor of one writeback pass, opened on first use. */
struct pcache_direct {
	int fd; /* -1: none (yet, or refused) */
	bool tried;
	uint32_t mem_align, off_align;
};

/* pread exactly len bytes at off (or up to EOF, zero-filling the rest).
 * 0 or -errno. */
int _pcache_backing_read(int fd, unsigned char *buf, size_t len, off_t off);
/* pwrite all len bytes at off (a write that bypasses the cache). 0, or
 * -errno: a short write is an error (-EIO if the kernel gave none), and
 * *written says how many bytes landed before it. */
int _pcache_backing_write(int fd, const unsigned char *buf, size_t len, off_t off, size_t *written);
/* Set the backing file's size: through f->fd if it is writable, else by
 * path. 0 or -errno. */
int _pcache_backing_truncate(struct pcache_file *f, off_t size);
/* Write the dirty bytes of pages[0..n) (sorted, under writeback, stable),
 * one pwritev per run of bytes that meet, with iov as scratch (n entries:
 * a run holds at most one piece of each page), long aligned runs through
 * d's O_DIRECT descriptor. Returns how many pages reached the backing file
 * whole before an error, and the error in *err. */
size_t _pcache_backing_write_pages(struct pcache_file *f, struct pcache_page **pages, size_t n,
				   struct iovec *iov, struct pcache_direct *d, int *err);
/* End of a pass: close d's descriptor if one was opened. */
void _pcache_backing_direct_close(struct pcache_direct *d);

#endif /* PFS_CACHE_BACKING_I_H */
