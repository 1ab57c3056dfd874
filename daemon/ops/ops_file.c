/*
 * Regular files: create, open, read, write, flush, release, fsync,
 * fallocate, lseek. Data goes through the inode's page cache; a write is
 * acknowledged once its bytes are cached. Handles record the open flags.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <unistd.h>

#include "daemon_i.h"
#include "transport/transport.h"
#include "ctl/ctl.h"
#include "ops/ops.h"

struct pfs_handle {
	int flags;   /* open flags (O_APPEND: the daemon writes at the cached size) */
	bool writer; /* counted in the inode's writers (keeps write_fd open) */
	/* The writeback errors this open file description has been told of
	 * (fsync of this handle only, serialised by the cache's file lock). */
	pcache_errseq_t wb_seen;
	/* The inode's open_lock: its list of handles not yet released. */
	struct pfs_handle *next, **pprev;
};

static struct pfs_handle *pfs_handle_of(struct fuse_file_info *fi)
{
	return (struct pfs_handle *)(uintptr_t)fi->fh;
}

static void pfs_handle_free(struct pfs *fs, struct pfs_inode *inode, struct pfs_handle *h)
{
	pthread_mutex_lock(&inode->open_lock);
	*h->pprev = h->next;
	if (h->next)
		h->next->pprev = h->pprev;
	pthread_mutex_unlock(&inode->open_lock);
	__atomic_sub_fetch(&inode->opens, 1, __ATOMIC_RELAXED);
	if (h->writer)
		pfs_inode_writer_done(fs, inode);
	alloc_free(fs->alloc, h);
}

static void pfs_inode_handles_drop(struct pfs *fs, struct pfs_inode *inode)
{
	while (inode->handles)
		pfs_handle_free(fs, inode, inode->handles);
}

void pfs_file_handles_drop(struct pfs *fs)
{
	pfs_inode_for_each(fs, pfs_inode_handles_drop);
}

int pfs_file_truncate(struct pfs *fs, struct pfs_inode *inode, off_t size)
{
	char path[64];
	int r = 0;

	if (inode->type == S_IFDIR)
		return -EISDIR;
	if (inode->type != S_IFREG)
		return -EINVAL;
	if (!pfs_inode_cache_ready(inode)) {
		/* No cache state yet: truncate the backing file, unless the first
		 * open sets the cache up meanwhile. */
		pthread_mutex_lock(&inode->open_lock);
		if (!inode->cache_ready) {
			pfs_inode_proc_path(inode, path, sizeof(path));
			r = truncate(path, size) < 0 ? -errno : 0;
			pthread_mutex_unlock(&inode->open_lock);
			return r;
		}
		pthread_mutex_unlock(&inode->open_lock);
	}
	return pcache_truncate(&inode->cache, size);
}

/* Cache setup, O_TRUNC and the handle h (consumed), shared by open and
 * create (create_fd: see pfs_inode_cache_open). */
static int pfs_file_open(struct pfs *fs, struct pfs_inode *inode, struct fuse_file_info *fi,
			 struct pfs_handle *h, bool kill_suidgid, int *create_fd)
{
	bool want_write = (fi->flags & O_ACCMODE) != O_RDONLY;
	int r;

	if (inode->type == S_IFDIR)
		r = -EISDIR;
	else if (inode->type != S_IFREG)
		r = -EINVAL;
	else
		r = pfs_inode_cache_open(fs, inode, want_write, create_fd);
	if (r) {
		alloc_free(fs->alloc, h);
		return r;
	}
	/* From here the handle counts (a writer keeps write_fd open). */
	h->flags = fi->flags;
	h->writer = want_write;
	/* Errors from before this open are not its news, unless nobody has
	 * been told yet. */
	h->wb_seen = pcache_file_errseq_sample(&inode->cache);
	pthread_mutex_lock(&inode->open_lock);
	h->next = inode->handles;
	h->pprev = &inode->handles;
	if (h->next)
		h->next->pprev = &h->next;
	inode->handles = h;
	pthread_mutex_unlock(&inode->open_lock);
	__atomic_add_fetch(&inode->opens, 1, __ATOMIC_RELAXED);
	/* O_TRUNC by a caller without CAP_FSETID (FUSE_HANDLE_KILLPRIV_V2). */
	if (kill_suidgid)
		r = pfs_privs_kill(fs, inode);
	if (r == 0 && (fi->flags & O_TRUNC) && want_write)
		r = pcache_truncate(&inode->cache, 0);
	if (r) {
		pfs_handle_free(fs, inode, h);
		return r;
	}
	/* With the kernel's write-back cache, the kernel places appends itself
	 * and may write back through any handle. */
	if (fs->conn.kernel_wbcache)
		h->flags &= ~O_APPEND;
	fi->fh = (uint64_t)(uintptr_t)h;
	/* Every change goes through the kernel, so its cached pages stay
	 * valid across opens. */
	fi->keep_cache = 1;
	/* close() does not write back (that is what the cache is for), so the
	 * FLUSH round trip it costs buys nothing, except the shrinker's brake
	 * on creators while fds are short (FOPEN_NOFLUSH; the kernel ignores
	 * it with its own write-back cache, which must flush on close). */
	fi->noflush = !pfs_shrink_wants_close(fs);
	return 0;
}

static struct pfs_handle *pfs_handle_alloc(struct pfs *fs)
{
	return alloc_malloc(fs->alloc, ALLOC_SITE_HANDLE, sizeof(struct pfs_handle), 0);
}

void pfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		   struct fuse_file_info *fi)
{
	struct pfs *fs = pfs_from_req(req);
	struct pfs_inode *dir, *inode, *spare;
	struct fuse_entry_param e;
	struct pfs_handle *h;
	struct pfs_creds creds;
	bool kill_suidgid = pfs_fuse_io_kill_suidgid_wanted(parent);
	bool want_write = (fi->flags & O_ACCMODE) != O_RDONLY;
	int fd = -1, r;

	if (pfs_ctl_is_ino(parent) || pfs_ctl_shadows(fs, parent, name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (pfs_shutdown_refused(req))
		return;
	dir = pfs_inode_get(req, parent);
	/* Everything that can run out of memory, before the file exists. */
	spare = pfs_inode_spare_alloc(fs);
	h = pfs_handle_alloc(fs);
	if (!spare || !h) {
		r = -ENOMEM;
		goto out_free;
	}
	/*
	 * Create as the caller. A writer's fd is opened O_RDWR (the cache reads
	 * around partial pages) and kept as the inode's write fd: a file
	 * created read-only (git's objects: O_CREAT|O_RDWR, 0444) cannot be
	 * opened for writing again by a daemon that is not root.
	 */
	pfs_creds_enter(req, &creds);
	fd = openat(dir->fd, name,
		    O_CREAT | O_NOFOLLOW | O_CLOEXEC | (fi->flags & O_EXCL) |
			    (want_write ? O_RDWR : O_RDONLY),
		    mode & 07777);
	if (fd < 0 && errno == EACCES && (fi->flags & O_ACCMODE) == O_WRONLY) {
		/* An existing file the caller may write but not read: its
		 * permission, then the daemon's own write fd as for open. */
		fd = openat(dir->fd, name, O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_WRONLY,
			    mode & 07777);
		r = fd < 0 ? -errno : 0;
		if (fd >= 0)
			close(fd);
		fd = -1;
	} else {
		r = fd < 0 ? -errno : 0;
	}
	pfs_creds_leave(&creds);
	if (r)
		goto out_free;
	r = pfs_inode_lookup_created(fs, dir, name, fd, &e, &spare);
	pfs_inode_spare_free(fs, spare);
	spare = NULL;
	if (!want_write && fd >= 0) {
		close(fd);
		fd = -1;
	}
	if (r)
		goto out_free;
	inode = (struct pfs_inode *)(uintptr_t)e.ino;
	r = pfs_file_open(fs, inode, fi, h, kill_suidgid, &fd);
	h = NULL;
	if (r) {
		pfs_inode_forget(fs, inode, 1);
		goto out_free;
	}
	if (fd >= 0) /* the inode had a write fd already */
		close(fd);
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		pfs_handle_free(fs, inode, pfs_handle_of(fi));
		pfs_inode_forget(fs, inode, 1);
	}
	return;
out_free:
	if (fd >= 0)
		close(fd);
	pfs_inode_spare_free(fs, spare);
	alloc_free(fs->alloc, h);
	fuse_reply_err(req, -r);
}

void pfs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pfs *fs = pfs_from_req(req);
	struct pfs_inode *inode;
	struct pfs_handle *h;
	bool kill_suidgid = pfs_fuse_io_kill_suidgid_wanted(ino);
	int r;

	if (pfs_ctl_is_ino(ino)) {
		pfs_ctl_open(req, ino, fi);
		return;
	}
	if ((fi->flags & O_TRUNC) && pfs_shutdown_refused(req))
		return;
	inode = pfs_inode_get(req, ino);
	h = pfs_handle_alloc(fs);
	r = h ? pfs_file_open(fs, inode, fi, h, kill_suidgid, NULL) : -ENOMEM;
	if (r)
		fuse_reply_err(req, -r);
	else if (fuse_reply_open(req, fi) == -ENOENT)
		pfs_handle_free(fs, inode, pfs_handle_of(fi));
}

void pfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct pfs *fs = pfs_from_req(req);
	struct pfs_inode *inode;
	ssize_t n;
	char *buf;

	if (pfs_ctl_is_ino(ino)) {
		pfs_ctl_read(req, ino, size, off, fi);
		return;
	}
	inode = pfs_inode_get(req, ino);
	buf = alloc_malloc(fs->alloc, ALLOC_SITE_REQUEST, size ? size : 1, 0);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = pcache_read(&inode->cache, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	alloc_free(fs->alloc, buf);
}

void pfs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		  struct fuse_file_info *fi)
{
	struct pfs_inode *inode;
	ssize_t n;

	if (pfs_ctl_is_ino(ino)) {
		pfs_ctl_write(req, ino, buf, size, off, fi);
		return;
	}
	if (pfs_shutdown_refused(req))
		return;
	inode = pfs_inode_get(req, ino);
	/* A writer without CAP_FSETID (FUSE_HANDLE_KILLPRIV_V2): clear what
	 * the VFS would, first (no syscall once the inode is known clear). */
	if (pfs_fuse_io_kill_suidgid_wanted(ino)) {
		int r = pfs_privs_kill(pfs_from_req(req), inode);
		if (r) {
			fuse_reply_err(req, -r);
			return;
		}
	}
	if (pfs_handle_of(fi)->flags & O_APPEND) {
		/* Throttled at dirty_limit before append_lock, which other
		 * appenders would wait for meanwhile. */
		pcache_balance_dirty(pfs_from_req(req)->cache);
		/* The kernel's idea of the end may be stale; ours is not. */
		pthread_mutex_lock(&inode->append_lock);
		pcache_file_attr(&inode->cache, &off, NULL, NULL);
		n = pcache_write(&inode->cache, buf, size, off);
		pthread_mutex_unlock(&inode->append_lock);
	} else {
		n = pcache_write(&inode->cache, buf, size, off);
	}
	/*
	 * The kernel ignores the count of a WRITE from its own writeback
	 * (writeback_cache=1): a short count there would drop the rest
	 * silently. Answer those all or nothing, so the error reaches fsync.
	 */
	if (n >= 0 && (size_t)n < size && fi->writepage)
		n = -ENOMEM;
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

void pfs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pfs *fs = pfs_from_req(req);

	/* Only closes of files opened while fds were short come here
	 * (pfs_file_open), and every close with the kernel's write-back cache. */
	__atomic_add_fetch(&fs->conn.flush_requests, 1, __ATOMIC_RELAXED);
	pfs_shrink_throttle(fs);
	fuse_reply_err(req, 0);
}

void pfs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pfs *fs = pfs_from_req(req);

	if (pfs_ctl_is_ino(ino)) {
		pfs_ctl_release(req, ino, fi);
		return;
	}
	pfs_handle_free(fs, pfs_inode_get(req, ino), pfs_handle_of(fi));
	fuse_reply_err(req, 0);
}

void pfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct pfs_inode *inode;

	if (pfs_ctl_is_ino(ino)) {
		fuse_reply_err(req, 0);
		return;
	}
	inode = pfs_inode_get(req, ino);
	fuse_reply_err(req, -pcache_fsync_handle(&inode->cache, datasync != 0,
						 &pfs_handle_of(fi)->wb_seen));
}

void pfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		      struct fuse_file_info *fi)
{
	struct pfs_inode *inode;
	off_t size;
	int r = 0;

	if (pfs_ctl_is_ino(ino)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (pfs_shutdown_refused(req))
		return;
	inode = pfs_inode_get(req, ino);
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		r = -EOPNOTSUPP;
		goto out;
	}
	if (offset < 0 || length <= 0) {
		r = -EINVAL;
		goto out;
	}
	/* Cached pages over the range would hide (or later overwrite) what
	 * the backing file does to it. */
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		r = pcache_invalidate_range(&inode->cache, offset, length);
		if (r)
			goto out;
	}
	/* A writing handle: write_fd stays open while it does. */
	if (fallocate(__atomic_load_n(&inode->write_fd, __ATOMIC_RELAXED), mode, offset, length) <
	    0) {
		r = -errno;
		goto out;
	}
	if (!(mode & FALLOC_FL_KEEP_SIZE)) {
		pcache_file_attr(&inode->cache, &size, NULL, NULL);
		if (offset + length > size)
			r = pcache_truncate(&inode->cache, offset + length);
	}
out:
	fuse_reply_err(req, -r);
}

void pfs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct pfs_inode *inode;
	off_t res;
	int r;

	if (pfs_from_req(req)->conn.kernel_wbcache) {
		/* The kernel holds dirty data we have not seen: let it answer
		 * from its own size (it stops asking after ENOSYS). */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (pfs_ctl_is_ino(ino) || (whence != SEEK_DATA && whence != SEEK_HOLE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	inode = pfs_inode_get(req, ino);
	/* Holes are the backing file's: put the cached data there first. */
	r = pcache_flush_file(&inode->cache);
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	/* No read fd (a file only its writer may open): then a writer's. */
	res = lseek(inode->data_fd >= 0 ? inode->data_fd
					: __atomic_load_n(&inode->write_fd, __ATOMIC_RELAXED),
		    off, whence);
	if (res < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, res);
}
