/*
 * Directories: opendir, readdir and readdirplus, releasedir, fsyncdir.
 * Listing buffers come from the allocator (site readdir). The control
 * directory's name is hidden from the root listing unless ctldir=visible,
 * and a backing entry of that name is shadowed either way.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "daemon_i.h"
#include "ctl/ctl.h"
#include "ops/ops.h"

struct pfs_dir {
	DIR *dp;
	off_t offset;	      /* the position dp is at */
	struct dirent *entry; /* read but not yet returned (did not fit) */
	bool ctl_emitted;     /* ctldir=visible: the root listing showed it */
};

static struct pfs_dir *pfs_dir_of(struct fuse_file_info *fi)
{
	return (struct pfs_dir *)(uintptr_t)fi->fh;
}

void pfs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pfs *fs = pfs_from_req(req);
	struct pfs_inode *inode;
	struct pfs_dir *d;
	int fd, r;

	if (pfs_ctl_is_ino(ino)) {
		fi->fh = 0;
		fuse_reply_open(req, fi);
		return;
	}
	inode = pfs_inode_get(req, ino);
	d = alloc_malloc(fs->alloc, ALLOC_SITE_HANDLE, sizeof(*d), ALLOC_ZERO);
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd = openat(inode->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = errno;
		goto out_free;
	}
	d->dp = fdopendir(fd);
	if (!d->dp) {
		r = errno;
		close(fd);
		goto out_free;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		closedir(d->dp);
		alloc_free(fs->alloc, d);
	}
	return;
out_free:
	alloc_free(fs->alloc, d);
	fuse_reply_err(req, r);
}

static bool pfs_is_dot(const char *name)
{
	return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/* Add one entry; returns its size (> rem: it did not fit, nothing added). */
static size_t pfs_dir_add(fuse_req_t req, struct pfs_inode *dir, char *buf, size_t rem,
			  struct dirent *de, bool plus, int *err)
{
	struct pfs *fs = pfs_from_req(req);
	struct fuse_entry_param e;
	size_t size;
	int r;

	*err = 0;
	if (!plus) {
		struct stat st = {.st_ino = de->d_ino, .st_mode = (mode_t)de->d_type << 12};
		return fuse_add_direntry(req, buf, rem, de->d_name, &st, de->d_off);
	}
	if (pfs_is_dot(de->d_name)) {
		memset(&e, 0, sizeof(e));
		e.attr.st_ino = de->d_ino;
		e.attr.st_mode = (mode_t)de->d_type << 12;
	} else {
		r = pfs_inode_lookup(fs, dir, de->d_name, &e);
		if (r) {
			*err = r;
			return 0;
		}
	}
	size = fuse_add_direntry_plus(req, buf, rem, de->d_name, &e, de->d_off);
	if (size > rem && e.ino)
		pfs_inode_forget(fs, (struct pfs_inode *)(uintptr_t)e.ino, 1);
	return size;
}

/* ctldir=visible: the control directory, listed at the end of the root. */
static size_t pfs_dir_add_ctl(fuse_req_t req, char *buf, size_t rem, off_t next, bool plus)
{
	struct fuse_entry_param e;

	pfs_ctl_entry(pfs_from_req(req), PFS_CTL_DIR_INO, &e);
	if (plus)
		return fuse_add_direntry_plus(req, buf, rem, PFS_CTL_NAME, &e, next);
	return fuse_add_direntry(req, buf, rem, PFS_CTL_NAME, &e.attr, next);
}

static void pfs_do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi, bool plus)
{
	struct pfs *fs = pfs_from_req(req);
	struct pfs_dir *d = pfs_dir_of(fi);
	struct pfs_inode *dir;
	bool is_root = ino == FUSE_ROOT_ID;
	size_t used = 0;
	char *buf;
	int r = 0;

	if (pfs_ctl_is_ino(ino)) {
		pfs_ctl_readdir(req, ino, size, off, plus);
		return;
	}
	dir = pfs_inode_get(req, ino);
	buf = alloc_malloc(fs->alloc, ALLOC_SITE_READDIR, size, 0);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (off != d->offset) {
		seekdir(d->dp, off);
		d->entry = NULL;
		d->offset = off;
	}
	if (off == 0)
		d->ctl_emitted = false;
	for (;;) {
		size_t n;

		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				r = -errno;
				if (r == 0 && is_root && !d->ctl_emitted &&
				    fs->ctl.opt.num[PFS_OPT_ctldir] == PFS_CTLDIR_VISIBLE) {
					n = pfs_dir_add_ctl(req, buf + used, size - used, d->offset,
							    plus);
					if (n <= size - used) {
						used += n;
						d->ctl_emitted = true;
					}
				}
				break;
			}
		}
		if (is_root && pfs_ctl_shadows(fs, ino, d->entry->d_name)) {
			d->offset = d->entry->d_off;
			d->entry = NULL;
			continue;
		}
		n = pfs_dir_add(req, dir, buf + used, size - used, d->entry, plus, &r);
		if (r == -ENOENT) {
			/* Removed since it was listed: skip it. */
			r = 0;
		} else if (r) {
			break;
		} else if (n > size - used) {
			break;
		} else {
			used += n;
		}
		d->offset = d->entry->d_off;
		d->entry = NULL;
	}
	/* An error after some entries: return those, the next call sees it. */
	if (r && used == 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, buf, used);
	alloc_free(fs->alloc, buf);
}

void pfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	pfs_do_readdir(req, ino, size, off, fi, false);
}

void pfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	pfs_do_readdir(req, ino, size, off, fi, true);
}

void pfs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pfs *fs = pfs_from_req(req);
	struct pfs_dir *d = pfs_dir_of(fi);

	if (d) {
		closedir(d->dp);
		alloc_free(fs->alloc, d);
	}
	fuse_reply_err(req, 0);
}

void pfs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct pfs_dir *d = pfs_dir_of(fi);
	int fd, r;

	if (!d) {
		fuse_reply_err(req, 0);
		return;
	}
	fd = dirfd(d->dp);
	r = datasync ? fdatasync(fd) : fsync(fd);
	fuse_reply_err(req, r < 0 ? errno : 0);
}
