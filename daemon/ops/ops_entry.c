/*
 * Names and attributes: lookup/forget, getattr/setattr, creating, linking,
 * renaming and removing entries, readlink, statfs. Errors are -errno inside
 * and become fuse_reply_err() only here, at the boundary.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "daemon_i.h"
#include "transport/transport.h"
#include "ctl/ctl.h"
#include "ops/ops.h"

/*
 * The directory an entry operation works in. The control directory takes
 * no new entries, and neither does its name in the root.
 */
static int pfs_parent_get(fuse_req_t req, fuse_ino_t parent, const char *name,
			  struct pfs_inode **out)
{
	struct pfs *fs = pfs_from_req(req);

	if (pfs_ctl_is_ino(parent) || pfs_ctl_shadows(fs, parent, name))
		return -EPERM;
	*out = pfs_inode_get(req, parent);
	if ((*out)->type != S_IFDIR)
		return -ENOTDIR;
	return 0;
}

void pfs_entry_reply(fuse_req_t req, struct pfs *fs, const struct fuse_entry_param *e)
{
	/* -ENOENT: the request was interrupted, the kernel never saw the lookup. */
	if (fuse_reply_entry(req, e) == -ENOENT && e->ino && e->ino != FUSE_ROOT_ID &&
	    !pfs_ctl_is_ino(e->ino))
		pfs_inode_forget(fs, (struct pfs_inode *)(uintptr_t)e->ino, 1);
}

/* Reply with the entry just made; spare (may be NULL) is consumed. */
static void pfs_reply_lookup(fuse_req_t req, struct pfs_inode *dir, const char *name,
			     struct pfs_inode *spare)
{
	struct pfs *fs = pfs_from_req(req);
	struct fuse_entry_param e;
	int r = pfs_inode_lookup_spare(fs, dir, name, &e, &spare);

	pfs_inode_spare_free(fs, spare);
	if (r)
		fuse_reply_err(req, -r);
	else
		pfs_entry_reply(req, fs, &e);
}

void pfs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pfs *fs = pfs_from_req(req);
	struct fuse_entry_param e;
	int r;

	if (pfs_ctl_is_ino(parent) || pfs_ctl_shadows(fs, parent, name)) {
		pfs_ctl_lookup(req, parent, name);
		return;
	}
	r = pfs_inode_lookup(fs, pfs_inode_get(req, parent), name, &e);
	if (r == -ENOENT) {
		/* A negative entry: creations through the mount invalidate it. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs->conn.timeout;
		fuse_reply_entry(req, &e);
	} else if (r) {
		fuse_reply_err(req, -r);
	} else {
		pfs_entry_reply(req, fs, &e);
	}
}

static void pfs_forget_one(fuse_req_t req, fuse_ino_t ino, uint64_t n)
{
	if (ino == FUSE_ROOT_ID || pfs_ctl_is_ino(ino))
		return;
	pfs_inode_forget(pfs_from_req(req), pfs_inode_get(req, ino), n);
}

void pfs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	pfs_forget_one(req, ino, nlookup);
	fuse_reply_none(req);
}

void pfs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		pfs_forget_one(req, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

void pfs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pfs *fs = pfs_from_req(req);
	struct stat st;
	int r;

	if (pfs_ctl_is_ino(ino)) {
		pfs_ctl_getattr(req, ino);
		return;
	}
	r = pfs_inode_stat(fs, pfs_inode_get(req, ino), &st);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, fs->conn.attr_timeout);
}

/* utimensat on a symlink needs its parent and name: use the name hint. */
static int pfs_symlink_utimens(struct pfs *fs, struct pfs_inode *inode, const struct timespec tv[2])
{
	struct pfs_inode *parent = NULL;
	char name[NAME_MAX + 1];
	struct stat st;
	int r = -EPERM;

	pthread_rwlock_rdlock(&fs->inodes.hint_lock);
	if (inode->hint_parent && inode->hint_name && strlen(inode->hint_name) <= NAME_MAX) {
		parent = inode->hint_parent;
		strcpy(name, inode->hint_name);
		pfs_inode_ref(fs, parent);
	}
	pthread_rwlock_unlock(&fs->inodes.hint_lock);
	if (!parent)
		return r;
	if (fstatat(parent->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == inode->ino &&
	    st.st_dev == inode->dev)
		r = utimensat(parent->fd, name, tv, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	pfs_inode_unref(fs, parent);
	return r;
}

static int pfs_setattr_times(struct pfs *fs, struct pfs_inode *inode, const struct stat *attr,
			     int to_set)
{
	struct timespec tv[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
	char path[64];

	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		tv[0].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		tv[0] = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		tv[1].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		tv[1] = attr->st_mtim;
	if (inode->type == S_IFLNK)
		return pfs_symlink_utimens(fs, inode, tv);
	/* The cache reports this mtime from now on and puts it back on the
	 * backing file after a writeback still to come. */
	if (pfs_inode_cache_ready(inode))
		return pcache_file_set_times(&inode->cache, tv);
	pfs_inode_proc_path(inode, path, sizeof(path));
	return utimensat(AT_FDCWD, path, tv, 0) < 0 ? -errno : 0;
}

void pfs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		    struct fuse_file_info *fi)
{
	struct pfs *fs = pfs_from_req(req);
	struct pfs_inode *inode;
	struct stat st;
	char path[64];
	bool kill_suidgid = pfs_fuse_io_kill_suidgid_wanted(ino);
	int r = 0;

	if (pfs_ctl_is_ino(ino)) {
		/* Control files' modes and owners are fixed (sysfs-like). */
		if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
			fuse_reply_err(req, EPERM);
			return;
		}
		/* O_TRUNC of a control file: nothing to truncate. */
		pfs_ctl_getattr(req, ino);
		return;
	}
	if (pfs_shutdown_refused(req))
		return;
	inode = pfs_inode_get(req, ino);
	pfs_inode_proc_path(inode, path, sizeof(path));
	/* With FUSE_HANDLE_KILLPRIV_V2: truncate by a caller without
	 * CAP_FSETID, or chown(f, -1, -1). A real chown needs nothing here:
	 * ours, as root, clears the bits by the VFS's own chown rule. */
	if (kill_suidgid && !(to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		r = pfs_privs_kill(fs, inode);
		if (r)
			goto out;
	}
	if ((to_set & FUSE_SET_ATTR_MODE) && inode->type != S_IFLNK &&
	    chmod(path, attr->st_mode & 07777) < 0) {
		r = -errno;
		goto out;
	}
	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
		if (fchownat(inode->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			goto out;
		}
	}
	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
		pfs_privs_invalidate(inode);
	if (to_set & FUSE_SET_ATTR_SIZE) {
		r = pfs_file_truncate(fs, inode, attr->st_size);
		if (r)
			goto out;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
		      FUSE_SET_ATTR_MTIME_NOW)) {
		r = pfs_setattr_times(fs, inode, attr, to_set);
		if (r)
			goto out;
	}
	pfs_inode_meta_changed(inode);
	r = pfs_inode_stat(fs, inode, &st);
out:
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, fs->conn.attr_timeout);
}

void pfs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n;

	if (pfs_ctl_is_ino(ino)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	n = readlinkat(pfs_inode_get(req, ino)->fd, "", buf, sizeof(buf));
	if (n < 0)
		fuse_reply_err(req, errno);
	else if ((size_t)n >= sizeof(buf))
		fuse_reply_err(req, ENAMETOOLONG);
	else {
		buf[n] = '\0';
		fuse_reply_readlink(req, buf);
	}
}

/* mknod, mkdir and symlink: make the node as the caller, then look it up. */
static void pfs_make_node(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			  dev_t rdev, const char *link)
{
	struct pfs *fs = pfs_from_req(req);
	struct pfs_inode *dir, *spare = NULL;
	struct pfs_creds creds;
	int r;

	if (pfs_shutdown_refused(req))
		return;
	r = pfs_parent_get(req, parent, name, &dir);
	if (r)
		goto out_err;
	spare = pfs_inode_spare_alloc(fs);
	if (!spare) {
		r = -ENOMEM;
		goto out_err;
	}
	pfs_creds_enter(req, &creds);
	if (link)
		r = symlinkat(link, dir->fd, name);
	else if (S_ISDIR(mode))
		r = mkdirat(dir->fd, name, mode & 07777);
	else
		r = mknodat(dir->fd, name, mode, rdev);
	r = r < 0 ? -errno : 0;
	pfs_creds_leave(&creds);
	if (r)
		goto out_err;
	pfs_reply_lookup(req, dir, name, spare);
	return;
out_err:
	pfs_inode_spare_free(fs, spare);
	fuse_reply_err(req, -r);
}

void pfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	pfs_make_node(req, parent, name, mode, rdev, NULL);
}

void pfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	pfs_make_node(req, parent, name, S_IFDIR | mode, 0, NULL);
}

void pfs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	pfs_make_node(req, parent, name, S_IFLNK | 0777, 0, link);
}

void pfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct pfs *fs = pfs_from_req(req);
	struct pfs_inode *inode, *dir;
	char path[64];
	int r;

	if (pfs_shutdown_refused(req))
		return;
	if (pfs_ctl_is_ino(ino)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	r = pfs_parent_get(req, newparent, newname, &dir);
	if (r)
		goto out_err;
	/* A link finds the inode already in the table: nothing to allocate. */
	inode = pfs_inode_get(req, ino);
	if (fs->owner.as_root) {
		r = linkat(inode->fd, "", dir->fd, newname, AT_EMPTY_PATH);
	} else {
		pfs_inode_proc_path(inode, path, sizeof(path));
		r = linkat(AT_FDCWD, path, dir->fd, newname, AT_SYMLINK_FOLLOW);
	}
	if (r < 0) {
		r = -errno;
		goto out_err;
	}
	pfs_inode_meta_changed(inode);
	pfs_reply_lookup(req, dir, newname, NULL);
	return;
out_err:
	fuse_reply_err(req, -r);
}

static void pfs_remove(fuse_req_t req, fuse_ino_t parent, const char *name, int flags)
{
	struct pfs_inode *dir;
	int r;

	if (pfs_shutdown_refused(req))
		return;
	r = pfs_parent_get(req, parent, name, &dir);
	if (r == 0 && unlinkat(dir->fd, name, flags) < 0)
		r = -errno;
	fuse_reply_err(req, -r);
}

void pfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	pfs_remove(req, parent, name, 0);
}

void pfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	pfs_remove(req, parent, name, AT_REMOVEDIR);
}

/* After a rename, the inode now at (dir, name) is known under that name. */
static void pfs_rename_hint(struct pfs *fs, struct pfs_inode *dir, const char *name)
{
	struct pfs_inode *inode;
	struct stat st;

	if (fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	inode = pfs_inode_find(fs, st.st_dev, st.st_ino);
	if (!inode)
		return;
	pfs_inode_meta_changed(inode); /* a rename moves the ctime */
	pfs_inode_hint_set(fs, inode, dir, name);
	pfs_inode_unref(fs, inode);
}

void pfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		   const char *newname, unsigned int flags)
{
	struct pfs *fs = pfs_from_req(req);
	struct pfs_inode *dir, *newdir;
	int r;

	if (pfs_shutdown_refused(req))
		return;
	r = pfs_parent_get(req, parent, name, &dir);
	if (r == 0)
		r = pfs_parent_get(req, newparent, newname, &newdir);
	if (r)
		goto out;
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		r = -EINVAL;
		goto out;
	}
	if (renameat2(dir->fd, name, newdir->fd, newname, flags) < 0) {
		r = -errno;
		goto out;
	}
	pfs_rename_hint(fs, newdir, newname);
	if (flags & RENAME_EXCHANGE)
		pfs_rename_hint(fs, dir, name);
out:
	fuse_reply_err(req, -r);
}

void pfs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct pfs *fs = pfs_from_req(req);
	struct statvfs sv;

	if (fstatvfs(fs->inodes.root.fd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}
