/*
 * The FUSE operations (ops_*.c) and what they share: running as the
 * caller (creds.c) and clearing privileges on write (killpriv.c).
 */
#ifndef PFS_OPS_H
#define PFS_OPS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fuse_ll.h"

struct pfs;
struct pfs_inode;

/* ops/creds.c: run a creating call as the caller (fsuid/fsgid) when the
 * daemon is root. */
struct pfs_creds {
	uid_t uid;
	gid_t gid;
	bool switched;
};
void pfs_creds_enter(fuse_req_t req, struct pfs_creds *c);
void pfs_creds_leave(struct pfs_creds *c);

/* ops_entry.c */
/* fuse_reply_entry, undoing the lookup if the request was interrupted. */
void pfs_entry_reply(fuse_req_t req, struct pfs *fs, const struct fuse_entry_param *e);
void pfs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void pfs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void pfs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void pfs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		    struct fuse_file_info *fi);
void pfs_op_readlink(fuse_req_t req, fuse_ino_t ino);
void pfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void pfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void pfs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void pfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void pfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void pfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void pfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		   const char *newname, unsigned int flags);
void pfs_op_statfs(fuse_req_t req, fuse_ino_t ino);

/* ops_dir.c */
void pfs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void pfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi);
void pfs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

/* ops_file.c */
void pfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		   struct fuse_file_info *fi);
void pfs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void pfs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		  struct fuse_file_info *fi);
void pfs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void pfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		      struct fuse_file_info *fi);
void pfs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);
/* Unmount, after the last writeback: free the file handles whose RELEASE
 * never came (the kernel drops those still queued when the connection
 * ends), as their release would have. */
void pfs_file_handles_drop(struct pfs *fs);
/* setattr(size) path shared with ops_entry.c. */
int pfs_file_truncate(struct pfs *fs, struct pfs_inode *inode, off_t size);

/* killpriv.c: what FUSE_HANDLE_KILLPRIV_V2 asks of us (the daemon writes
 * as root, so the backing fs never clears these bits itself). */
/* Clear setuid, setgid and security.capability of a regular file (and
 * the kernel's cached mode); no syscall once known clear. 0 or -errno. */
int pfs_privs_kill(struct pfs *fs, struct pfs_inode *inode);
/* Mode, owner or a security xattr changed: check again next time. */
void pfs_privs_invalidate(struct pfs_inode *inode);

/* ops_xattr.c */
void pfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		     size_t size, int flags);
void pfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void pfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void pfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif /* PFS_OPS_H */
