/*
 * The control directory MOUNTPOINT/.pressurefs/: synthetic inodes with
 * reserved numbers, no backing file. The files come from the table in
 * ctl_parse.c (every PFS_CTL_RW option, and the others listed there).
 *
 * Reads serve a snapshot rendered at open (ctl_render.c); a write is parsed
 * by pfs_ctl_parse_write() (ctl_parse.c, no side effects) and the command
 * it gives is applied here at once. Only the mount's owner may write.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon_i.h"
#include "ctl/ctl.h"

static struct timespec pfs_ctl_time; /* set before the session starts, read-only after */

void pfs_ctl_init(void)
{
	pfs_ctl_table_init();
	clock_gettime(CLOCK_REALTIME, &pfs_ctl_time);
}

bool pfs_ctl_is_ino(fuse_ino_t ino)
{
	return ino >= PFS_CTL_DIR_INO && ino <= PFS_CTL_DIR_INO + pfs_ctl_file_count();
}

bool pfs_ctl_enabled(struct pfs *fs)
{
	return fs->ctl.opt.num[PFS_OPT_ctldir] != PFS_CTLDIR_NONE;
}

bool pfs_ctl_shadows(struct pfs *fs, fuse_ino_t parent, const char *name)
{
	return parent == FUSE_ROOT_ID && pfs_ctl_enabled(fs) && strcmp(name, PFS_CTL_NAME) == 0;
}

static const struct pfs_ctl_file *pfs_ctl_file_of(fuse_ino_t ino)
{
	if (ino <= PFS_CTL_DIR_INO || ino > PFS_CTL_DIR_INO + pfs_ctl_file_count())
		return NULL;
	return pfs_ctl_file_at((unsigned)(ino - PFS_CTL_DIR_INO - 1));
}

void pfs_ctl_entry(struct pfs *fs, fuse_ino_t ino, struct fuse_entry_param *e)
{
	const struct pfs_ctl_file *file = pfs_ctl_file_of(ino);

	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->attr.st_ino = ino;
	e->attr.st_uid = fs->owner.uid;
	e->attr.st_gid = fs->owner.gid;
	e->attr.st_atim = e->attr.st_mtim = e->attr.st_ctim = pfs_ctl_time;
	e->attr.st_blksize = 4096;
	if (file) {
		e->attr.st_mode = S_IFREG | file->mode;
		e->attr.st_nlink = 1;
	} else {
		e->attr.st_mode = S_IFDIR | 0555;
		e->attr.st_nlink = 2;
	}
	e->attr_timeout = fs->conn.timeout;
	e->entry_timeout = fs->conn.timeout;
}

void pfs_ctl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pfs *fs = pfs_from_req(req);
	struct fuse_entry_param e;

	if (parent == FUSE_ROOT_ID) {
		pfs_ctl_entry(fs, PFS_CTL_DIR_INO, &e);
		fuse_reply_entry(req, &e);
		return;
	}
	if (parent != PFS_CTL_DIR_INO) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	for (unsigned i = 0; i < pfs_ctl_file_count(); i++) {
		if (strcmp(pfs_ctl_file_at(i)->name, name) == 0) {
			pfs_ctl_entry(fs, PFS_CTL_DIR_INO + 1 + i, &e);
			fuse_reply_entry(req, &e);
			return;
		}
	}
	fuse_reply_err(req, ENOENT);
}

void pfs_ctl_getattr(fuse_req_t req, fuse_ino_t ino)
{
	struct pfs *fs = pfs_from_req(req);
	struct fuse_entry_param e;

	pfs_ctl_entry(fs, ino, &e);
	fuse_reply_attr(req, &e.attr, fs->conn.timeout);
}

void pfs_ctl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct pfs *fs = pfs_from_req(req);
	char buf[8192];
	size_t used = 0;

	if (size > sizeof(buf))
		size = sizeof(buf);
	/* Entry i: 0 ".", 1 "..", 2.. the files; an entry's offset is the next one's. */
	for (off_t i = off; i < (off_t)pfs_ctl_file_count() + 2; i++) {
		struct fuse_entry_param e;
		const char *name;
		size_t n;

		if (i == 0) {
			pfs_ctl_entry(fs, PFS_CTL_DIR_INO, &e);
			name = ".";
		} else if (i == 1) {
			memset(&e, 0, sizeof(e));
			e.attr.st_ino = FUSE_ROOT_ID;
			e.attr.st_mode = S_IFDIR;
			name = "..";
		} else {
			pfs_ctl_entry(fs, PFS_CTL_DIR_INO + (fuse_ino_t)(i - 1), &e);
			name = pfs_ctl_file_at((unsigned)(i - 2))->name;
		}
		if (plus) {
			if (i < 2)
				e.ino = 0; /* no lookup counted for . and .. */
			n = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1);
		} else {
			n = fuse_add_direntry(req, buf + used, size - used, name, &e.attr, i + 1);
		}
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

static bool pfs_ctl_may_write(fuse_req_t req)
{
	return fuse_req_ctx(req)->uid == pfs_from_req(req)->owner.uid;
}

void pfs_ctl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pfs *fs = pfs_from_req(req);
	const struct pfs_ctl_file *file = pfs_ctl_file_of(ino);
	int acc = fi->flags & O_ACCMODE;
	struct pfs_ctl_handle *h;
	int r;

	if (!file) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((acc != O_WRONLY && !(file->mode & 0444)) ||
	    (acc != O_RDONLY && (!(file->mode & 0200) || !pfs_ctl_may_write(req)))) {
		fuse_reply_err(req, EACCES);
		return;
	}
	/* Contents are generated: no kernel caching, no size. A write acts
	 * when it arrives, so close() has nothing to tell us. */
	fi->direct_io = 1;
	fi->noflush = 1;
	fi->fh = 0;
	if (acc != O_WRONLY) {
		r = pfs_ctl_render(fs, file, &h);
		if (r) {
			fuse_reply_err(req, -r);
			return;
		}
		fi->fh = (uint64_t)(uintptr_t)h;
	}
	if (fuse_reply_open(req, fi) == -ENOENT)
		pfs_ctl_handle_free(fs, (struct pfs_ctl_handle *)(uintptr_t)fi->fh);
}

void pfs_ctl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct pfs_ctl_handle *h = (struct pfs_ctl_handle *)(uintptr_t)fi->fh;

	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (off < 0 || (size_t)off >= h->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > h->len - (size_t)off)
		size = h->len - (size_t)off;
	/*
	 * Reply from this thread's stack: once the kernel has the bytes, the
	 * reader may close and another thread free h while we still return
	 * from writev (ASan checks the iovec after the call). A short read is
	 * fine: readers loop.
	 */
	char copy[16384];
	if (size > sizeof(copy))
		size = sizeof(copy);
	memcpy(copy, h->data + off, size);
	fuse_reply_buf(req, copy, size);
}

void pfs_ctl_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	pfs_ctl_handle_free(pfs_from_req(req), (struct pfs_ctl_handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* ---- writes ---- */

int pfs_policy_install(struct pfs *fs, struct policy_handle *h)
{
	struct policy_handle *old;
	int r = 0;

	pthread_mutex_lock(&fs->ctl.lock);
	if (fs->ctl.npolicies == PFS_MAX_POLICIES) {
		r = -ENOSPC;
		goto out_unlock;
	}
	/* The new one takes its reserve while the old one still holds its
	 * own: a switch that does not fit changes nothing. */
	if (h->ops->install) {
		r = h->ops->install(h->state);
		if (r)
			goto out_unlock;
	}
	old = fs->ctl.policy;
	fs->ctl.policies[fs->ctl.npolicies++] = h;
	fs->ctl.policy = h;
	alloc_set_policy(fs->alloc, h->ops, h->state);
	if (old && old->ops->uninstall)
		old->ops->uninstall(old->state);
out_unlock:
	pthread_mutex_unlock(&fs->ctl.lock);
	return r;
}

/* Load a split policy spec and make it current; logs the switch. */
static int pfs_ctl_policy_apply(struct pfs *fs, const struct pfs_ctl_policy *p, char *err,
				size_t errlen)
{
	struct policy_handle *h;
	char args[512];
	int r;

	h = policy_load(p->name, p->keys, p->values, p->nargs, &pfs_policy_host, err, errlen);
	if (!h)
		return -EINVAL;
	/* Shown as the policy file reads back: one line whatever was written. */
	policy_format_args(h, args, sizeof(args));
	r = pfs_policy_install(fs, h);
	if (r) {
		if (r == -ENOSPC)
			snprintf(err, errlen, "too many policy switches (%d) in one mount",
				 PFS_MAX_POLICIES);
		else {
			pthread_mutex_lock(&fs->ctl.lock);
			snprintf(err, errlen,
				 "policy %s: cannot install it: %s%s; the policy stays %s",
				 h->ops->name, strerror(-r),
				 r == -ENOMEM ? " (its reserve does not fit in the budget)" : "",
				 fs->ctl.policy ? fs->ctl.policy->ops->name
						: "the built-in enomem");
			pthread_mutex_unlock(&fs->ctl.lock);
		}
		policy_unload(h);
		return r;
	}
	pfs_log(PFS_LOG_INFO, "policy switched to %s%s%s", h->ops->name ? h->ops->name : p->name,
		args[0] ? "," : "", args);
	return 0;
}

int pfs_ctl_policy_switch(struct pfs *fs, const char *text, char *err, size_t errlen)
{
	char spec[PFS_CTL_WRITE_MAX + 1];
	struct pfs_ctl_policy p;
	int r;

	snprintf(spec, sizeof(spec), "%s", text);
	r = pfs_ctl_policy_split(spec, &p, err, errlen);
	if (r)
		return r;
	return pfs_ctl_policy_apply(fs, &p, err, errlen);
}

void pfs_cache_tune(struct pfs *fs)
{
	struct pcache_config c = {
		.page_size = (size_t)fs->ctl.opt.num[PFS_OPT_page_size],
		.dirty_limit = (uint64_t)fs->ctl.opt.num[PFS_OPT_dirty_limit],
		.clean_limit = (uint64_t)fs->ctl.opt.num[PFS_OPT_clean_limit],
		.writeback_ms = (unsigned)fs->ctl.opt.num[PFS_OPT_writeback_ms],
		.writers_unthrottled = !fs->ctl.opt.num[PFS_OPT_dirty_throttle],
		.writeback_delay_us = (unsigned)fs->ctl.opt.num[PFS_OPT_writeback_delay_us],
	};

	pcache_set_config(fs->cache, &c);
}

/* Push the injection knobs from the option values to the allocator. */
void pfs_inject_apply(struct pfs *fs)
{
	struct alloc_inject in = {
		.probability = (unsigned)fs->ctl.opt.num[PFS_OPT_fail_probability],
		.interval = (unsigned long)fs->ctl.opt.num[PFS_OPT_fail_interval],
		.times = fs->ctl.opt.num[PFS_OPT_fail_times],
		.space = (unsigned long long)fs->ctl.opt.num[PFS_OPT_fail_space],
		.sites = (unsigned)fs->ctl.opt.num[PFS_OPT_fail_sites],
		.seed = (uint64_t)fs->ctl.opt.num[PFS_OPT_fail_seed],
		.verbose = fs->ctl.opt.num[PFS_OPT_fail_verbose] != 0,
	};
	alloc_set_inject(fs->alloc, &in);
}

static void pfs_ctl_option_apply(struct pfs *fs, enum pfs_opt_id id, long long v)
{
	pthread_mutex_lock(&fs->ctl.lock);
	fs->ctl.opt.num[id] = v;
	switch (id) {
	case PFS_OPT_mem_limit:
		alloc_set_mem_limit(fs->alloc, (uint64_t)v);
		break;
	case PFS_OPT_balloon:
		alloc_set_balloon(fs->alloc, (uint64_t)v);
		break;
	case PFS_OPT_dirty_limit:
	case PFS_OPT_clean_limit:
	case PFS_OPT_writeback_ms:
	case PFS_OPT_dirty_throttle:
	case PFS_OPT_writeback_delay_us:
		pfs_cache_tune(fs);
		break;
	default:
		pfs_inject_apply(fs);
		break;
	}
	pthread_mutex_unlock(&fs->ctl.lock);
}

/* Arm or disarm the countdown; keep whether it fired for reading after. */
static void pfs_ctl_fail_nth_apply(struct pfs *fs, uint64_t nth, uint64_t more)
{
	pthread_mutex_lock(&fs->ctl.lock);
	if (nth == 0 && fs->ctl.fail_nth)
		fs->ctl.fail_nth_fired = alloc_fail_nth_fired(fs->alloc);
	else if (nth)
		fs->ctl.fail_nth_fired = false;
	fs->ctl.fail_nth = nth;
	fs->ctl.fail_nth_more = more;
	alloc_fail_nth(fs->alloc, nth, more);
	pthread_mutex_unlock(&fs->ctl.lock);
}

size_t pfs_ctl_fail_nth_show(struct pfs *fs, char *buf, size_t len)
{
	char more[32] = "";
	bool fired;
	int n;

	pthread_mutex_lock(&fs->ctl.lock);
	fired = fs->ctl.fail_nth ? alloc_fail_nth_fired(fs->alloc) : fs->ctl.fail_nth_fired;
	if (fs->ctl.fail_nth_more == UINT64_MAX)
		snprintf(more, sizeof(more), "+");
	else if (fs->ctl.fail_nth_more)
		snprintf(more, sizeof(more), "+%llu", (unsigned long long)fs->ctl.fail_nth_more);
	n = snprintf(buf, len, "%llu%s %s\n", (unsigned long long)fs->ctl.fail_nth, more,
		     fired		? "fired"
		     : fs->ctl.fail_nth ? "waiting"
					: "off");
	pthread_mutex_unlock(&fs->ctl.lock);
	return n < 0 ? 0 : (size_t)n;
}

/* Carry out a parsed write. 0 or -errno (the write's reply). */
static int pfs_ctl_cmd_apply(struct pfs *fs, const struct pfs_ctl_cmd *cmd, char *err,
			     size_t errlen)
{
	switch (cmd->kind) {
	case PFS_CTL_CMD_SET_OPTION:
		pfs_ctl_option_apply(fs, cmd->opt, cmd->value);
		return 0;
	case PFS_CTL_CMD_SET_POLICY: {
		char why[400]; /* leaves room for the prefix in err */
		int r = pfs_ctl_policy_apply(fs, &cmd->policy, why, sizeof(why));

		if (r)
			snprintf(err, errlen, "policy: %s", why);
		return r;
	}
	case PFS_CTL_CMD_DROP_CACHES:
		pcache_drop_clean(fs->cache);
		return 0;
	case PFS_CTL_CMD_SYNC:
		return pcache_sync_all(fs->cache);
	case PFS_CTL_CMD_FAIL_NTH:
		pfs_ctl_fail_nth_apply(fs, cmd->nth, cmd->nth_more);
		return 0;
	case PFS_CTL_CMD_CRASH:
		/*
		 * A daemon crash: dirty pages die with the process; what the backing
		 * filesystem already holds stays (a power cut is bench/compare --crash power).
		 */
		pfs_log(PFS_LOG_ERR, "crash requested through %s/crash: aborting", PFS_CTL_NAME);
		abort();
	}
	return -EBADF;
}

void pfs_ctl_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct pfs *fs = pfs_from_req(req);
	const struct pfs_ctl_file *file = pfs_ctl_file_of(ino);
	struct pfs_ctl_cmd cmd;
	char err[512];
	int r;

	if (!file || !(file->mode & 0200)) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (!pfs_ctl_may_write(req)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	err[0] = '\0';
	r = pfs_ctl_parse_write(file, buf, size, off, &cmd, err, sizeof(err));
	if (r == 0)
		r = pfs_ctl_cmd_apply(fs, &cmd, err, sizeof(err));
	if (r) {
		/* The loader may echo what was written: keep the log to one line. */
		for (char *c = err; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
		if (err[0])
			pfs_log(PFS_LOG_WARNING, "%s", err);
		fuse_reply_err(req, -r);
		return;
	}
	fuse_reply_write(req, size);
}
