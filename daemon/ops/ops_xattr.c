/*
 * Extended attributes. A regular file's data fd takes f*xattr calls
 * directly (the kernel asks for security.capability before every write, so
 * this path is hot); other objects go through their /proc/self/fd path (an
 * O_PATH fd cannot take f*xattr calls). Value and list buffers come from
 * the allocator (site request).
 */
#include <errno.h>
#include <string.h>
#include <sys/xattr.h>

#include "daemon_i.h"
#include "ctl/ctl.h"
#include "ops/ops.h"

/* The object to act on: *fd >= 0 for a data fd, else path. */
static int pfs_xattr_target(fuse_req_t req, fuse_ino_t ino, int *fd, char *path, size_t len)
{
	struct pfs_inode *inode;

	if (pfs_ctl_is_ino(ino))
		return -ENOTSUP;
	inode = pfs_inode_get(req, ino);
	*fd = inode->data_fd;
	pfs_inode_proc_path(inode, path, len);
	return 0;
}

void pfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		     size_t size, int flags)
{
	char path[64];
	int fd, r;

	if (pfs_shutdown_refused(req))
		return;
	r = pfs_xattr_target(req, ino, &fd, path, sizeof(path));
	if (r == 0 && (fd >= 0 ? fsetxattr(fd, name, value, size, flags)
			       : setxattr(path, name, value, size, flags)) < 0)
		r = -errno;
	/* A new security.capability must be cleared by the next write. */
	if (r == 0 && strncmp(name, "security.", 9) == 0)
		pfs_privs_invalidate(pfs_inode_get(req, ino));
	if (r == 0)
		pfs_inode_meta_changed(pfs_inode_get(req, ino));
	fuse_reply_err(req, -r);
}

/* getxattr and listxattr: size 0 asks for the length only. */
static void pfs_xattr_reply(fuse_req_t req,
			    ssize_t (*get)(int fd, const char *path, const char *name, char *buf,
					   size_t size),
			    int fd, const char *path, const char *name, size_t size)
{
	struct pfs *fs = pfs_from_req(req);
	char *buf = NULL;
	ssize_t n;

	if (size) {
		buf = alloc_malloc(fs->alloc, ALLOC_SITE_REQUEST, size, 0);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	n = get(fd, path, name, buf, size);
	if (n < 0)
		fuse_reply_err(req, errno);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	alloc_free(fs->alloc, buf);
}

static ssize_t pfs_xattr_get(int fd, const char *path, const char *name, char *buf, size_t size)
{
	return fd >= 0 ? fgetxattr(fd, name, buf, size) : getxattr(path, name, buf, size);
}

static ssize_t pfs_xattr_list(int fd, const char *path, const char *name, char *buf, size_t size)
{
	return fd >= 0 ? flistxattr(fd, buf, size) : listxattr(path, buf, size);
}

void pfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char path[64];
	int fd, r = pfs_xattr_target(req, ino, &fd, path, sizeof(path));

	if (r)
		fuse_reply_err(req, -r);
	else
		pfs_xattr_reply(req, pfs_xattr_get, fd, path, name, size);
}

void pfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char path[64];
	int fd = -1;

	if (pfs_ctl_is_ino(ino)) {
		/* No attributes: an empty list. */
		if (size)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_xattr(req, 0);
		return;
	}
	pfs_xattr_target(req, ino, &fd, path, sizeof(path));
	pfs_xattr_reply(req, pfs_xattr_list, fd, path, NULL, size);
}

void pfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	char path[64];
	int fd, r;

	if (pfs_shutdown_refused(req))
		return;
	r = pfs_xattr_target(req, ino, &fd, path, sizeof(path));
	if (r == 0 && (fd >= 0 ? fremovexattr(fd, name) : removexattr(path, name)) < 0)
		r = -errno;
	if (r == 0)
		pfs_inode_meta_changed(pfs_inode_get(req, ino));
	fuse_reply_err(req, -r);
}
