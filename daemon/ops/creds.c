/*
 * Creating calls run as the caller when the daemon is root, so new files
 * get the caller's owner and the backing fs checks the caller's rights.
 * Shared by the entry and file operations.
 */
#include <sys/fsuid.h>

#include "daemon_i.h"
#include "ops/ops.h"

void pfs_creds_enter(fuse_req_t req, struct pfs_creds *c)
{
	struct pfs *fs = pfs_from_req(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	c->switched = false;
	if (!fs->owner.as_root || (ctx->uid == 0 && ctx->gid == 0))
		return;
	/* Per-thread on Linux: only this request's thread changes identity. */
	c->gid = (gid_t)setfsgid(ctx->gid);
	c->uid = (uid_t)setfsuid(ctx->uid);
	c->switched = true;
}

void pfs_creds_leave(struct pfs_creds *c)
{
	if (!c->switched)
		return;
	setfsuid(c->uid);
	setfsgid(c->gid);
}
