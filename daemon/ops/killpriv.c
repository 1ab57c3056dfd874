/*
 * Clearing setuid, setgid and security.capability, which
 * FUSE_HANDLE_KILLPRIV_V2 leaves to us: the kernel flags a WRITE, a
 * truncating SETATTR and an O_TRUNC OPEN/CREATE by a caller without
 * CAP_FSETID, and we clear setuid, setgid and the capability xattr. The
 * FUSE header says setgid only with group-execute, but the VFS of the
 * kernels we run on (6.18, ext4) clears it on such writes without g+x too,
 * as does the kernel itself with killpriv=0: we do the same, so the option
 * does not change what a user sees (and clearing more is the safe side).
 * The daemon writes the backing files as root, so the backing fs keeps the
 * bits unless we take them.
 *
 * The kernel flags every write of such a caller, whatever the mode, so the
 * check is cached per inode: once an inode is known clear, a flagged write
 * costs two atomic loads and no syscall. Changes made through the mount
 * (chmod, chown, setting a security xattr) invalidate the cache; changes
 * made to the backing directory behind our back are not seen.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "daemon_i.h"
#include "ops/ops.h"

#define PFS_CAPS_XATTR "security.capability"

void pfs_privs_invalidate(struct pfs_inode *inode)
{
	unsigned gen = __atomic_load_n(&inode->privs_gen, __ATOMIC_RELAXED);

	/* The next even value: a check that began before the change cannot
	 * mark the inode clear afterwards (its compare-exchange fails). */
	while (!__atomic_compare_exchange_n(&inode->privs_gen, &gen, (gen | 1u) + 1u, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		;
}

/* Remove security.capability if it is there: 0, 1 if not allowed, or
 * -errno. */
static int pfs_privs_caps_remove(struct pfs_inode *inode, const char *path)
{
	int r = inode->data_fd >= 0 ? fremovexattr(inode->data_fd, PFS_CAPS_XATTR)
				    : removexattr(path, PFS_CAPS_XATTR);

	if (r == 0 || errno == ENODATA || errno == ENOTSUP)
		return 0;
	return errno == EPERM ? 1 : -errno;
}

int pfs_privs_kill(struct pfs *fs, struct pfs_inode *inode)
{
	unsigned gen = __atomic_load_n(&inode->privs_gen, __ATOMIC_ACQUIRE);
	char path[64];
	struct stat st;
	mode_t kill;
	bool denied = false;
	int r;

	if ((gen & 1u) || inode->type != S_IFREG)
		return 0;
	if (fstat(inode->fd, &st) < 0)
		return -errno;
	pfs_inode_proc_path(inode, path, sizeof(path));
	kill = st.st_mode & (S_ISUID | S_ISGID);
	/* EPERM: a daemon that is not root, on a file it does not own. Its
	 * own writes, without CAP_FSETID, make the backing fs clear them. */
	if (kill && chmod(path, st.st_mode & 07777 & ~kill) < 0) {
		if (errno != EPERM)
			return -errno;
		denied = true;
	} else if (kill) {
		/* The kernel's cached mode would keep the bits (for exec too)
		 * until its attribute timeout: drop it now. No inode lock is
		 * taken for attributes alone, so this is safe inside a WRITE. */
		fuse_lowlevel_notify_inval_inode(fs->conn.se, (fuse_ino_t)(uintptr_t)inode, -1, 0);
	}
	r = pfs_privs_caps_remove(inode, path);
	if (r < 0)
		return r;
	/* Clear now, unless the mode or an xattr changed meanwhile. */
	if (!denied && r == 0)
		__atomic_compare_exchange_n(&inode->privs_gen, &gen, gen | 1u, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
	return 0;
}
