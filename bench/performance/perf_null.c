/*
 * bench/perf's `fuse-null` target: a FUSE filesystem that stores nothing.
 *
 * It answers every request at once: a write is acknowledged without its
 * bytes going anywhere, a read returns zeros. What a workload reaches on it
 * is the ceiling of the FUSE transport on this machine (the kernel's
 * request hand-off, the copy through /dev/fuse, libfuse's loop), which no
 * daemon that does real work can pass. bench/perf compiles it at bench
 * time, like libfuse's examples.
 *
 * At most NULL_MAX_FILES names (files and directories, which the
 * workloads make under the mount point); a file has a size and nothing
 * else. Same loop as pressurefs: multi-threaded, at most 16
 * workers, max_write 128 KiB.
 *
 * usage: perf_null [-f] [-s] MOUNTPOINT
 */
#define FUSE_USE_VERSION 34
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NULL_MAX_FILES 64
#define NULL_NAME_MAX  255

struct null_file {
	char name[NULL_NAME_MAX + 1]; /* "" when the slot is free */
	fuse_ino_t parent;
	bool dir;
	off_t size;
};

/* null_lock protects files[]: every field of every slot. */
static pthread_mutex_t null_lock = PTHREAD_MUTEX_INITIALIZER;
static struct null_file files[NULL_MAX_FILES];

/* Inode numbers: 1 is the root, 2 + i is files[i]. */
static struct null_file *null_file_of(fuse_ino_t ino)
{
	return ino >= 2 && ino < 2 + NULL_MAX_FILES ? &files[ino - 2] : NULL;
}

/* null_lock held. */
static void null_stat(fuse_ino_t ino, struct stat *st)
{
	struct null_file *f = null_file_of(ino);

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (ino == FUSE_ROOT_ID || (f && f->dir)) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
		st->st_size = f ? f->size : 0;
		st->st_blocks = (st->st_size + 511) / 512;
	}
}

/* null_lock held: the slot of name in directory parent, or -1. */
static int null_find(fuse_ino_t parent, const char *name)
{
	for (int i = 0; i < NULL_MAX_FILES; i++)
		if (files[i].name[0] && files[i].parent == parent &&
		    strcmp(files[i].name, name) == 0)
			return i;
	return -1;
}

/* null_lock held: name in parent, made if missing; -errno on failure. */
static int null_make(fuse_ino_t parent, const char *name, bool dir)
{
	int slot;

	if (strlen(name) > NULL_NAME_MAX)
		return -ENAMETOOLONG;
	if (parent != FUSE_ROOT_ID && !(null_file_of(parent) && null_file_of(parent)->dir))
		return -ENOTDIR;
	slot = null_find(parent, name);
	if (slot >= 0)
		return files[slot].dir == dir ? slot : -EEXIST;
	for (int i = 0; i < NULL_MAX_FILES; i++) {
		if (!files[i].name[0]) {
			snprintf(files[i].name, sizeof(files[i].name), "%s", name);
			files[i].parent = parent;
			files[i].dir = dir;
			files[i].size = 0;
			return i;
		}
	}
	return -ENOSPC;
}

/* null_lock held: the entry of slot. */
static void null_entry_fill(int slot, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = 2 + (fuse_ino_t)slot;
	null_stat(e->ino, &e->attr);
	e->attr_timeout = 1.0;
	e->entry_timeout = 1.0;
}

/* null_lock held on entry, dropped before the reply. */
static void null_reply_entry(fuse_req_t req, int slot)
{
	struct fuse_entry_param e;

	null_entry_fill(slot, &e);
	pthread_mutex_unlock(&null_lock);
	fuse_reply_entry(req, &e);
}

static void null_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_write = 128 * 1024;
}

static void null_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int slot;

	pthread_mutex_lock(&null_lock);
	slot = null_find(parent, name);
	if (slot < 0) {
		pthread_mutex_unlock(&null_lock);
		fuse_reply_err(req, ENOENT);
		return;
	}
	null_reply_entry(req, slot);
}

static void null_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	pthread_mutex_lock(&null_lock);
	null_stat(ino, &st);
	pthread_mutex_unlock(&null_lock);
	fuse_reply_attr(req, &st, 1.0);
}

static void null_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			 struct fuse_file_info *fi)
{
	struct null_file *f = null_file_of(ino);

	pthread_mutex_lock(&null_lock);
	if (f && (to_set & FUSE_SET_ATTR_SIZE))
		f->size = attr->st_size;
	pthread_mutex_unlock(&null_lock);
	null_getattr(req, ino, fi);
}

static void null_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	int slot;

	(void)mode;
	pthread_mutex_lock(&null_lock);
	slot = null_make(parent, name, false);
	if (slot < 0) {
		pthread_mutex_unlock(&null_lock);
		fuse_reply_err(req, -slot);
		return;
	}
	if (fi->flags & O_TRUNC)
		files[slot].size = 0;
	null_entry_fill(slot, &e);
	pthread_mutex_unlock(&null_lock);
	fuse_reply_create(req, &e, fi);
}

static void null_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	int slot;

	(void)mode;
	pthread_mutex_lock(&null_lock);
	slot = null_find(parent, name);
	if (slot >= 0) {
		pthread_mutex_unlock(&null_lock);
		fuse_reply_err(req, EEXIST);
		return;
	}
	slot = null_make(parent, name, true);
	if (slot < 0) {
		pthread_mutex_unlock(&null_lock);
		fuse_reply_err(req, -slot);
		return;
	}
	null_reply_entry(req, slot);
}

static void null_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int slot;

	pthread_mutex_lock(&null_lock);
	slot = null_find(parent, name);
	if (slot >= 0)
		files[slot].name[0] = '\0';
	pthread_mutex_unlock(&null_lock);
	fuse_reply_err(req, slot >= 0 ? 0 : ENOENT);
}

static void null_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void null_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct null_file *f = null_file_of(ino);

	if (f && (fi->flags & O_TRUNC)) {
		pthread_mutex_lock(&null_lock);
		f->size = 0;
		pthread_mutex_unlock(&null_lock);
	}
	fuse_reply_open(req, fi);
}

static void null_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	static const char zeros[128 * 1024];
	struct null_file *f = null_file_of(ino);
	off_t end;

	(void)fi;
	pthread_mutex_lock(&null_lock);
	end = f ? f->size : 0;
	pthread_mutex_unlock(&null_lock);
	if (size > sizeof(zeros))
		size = sizeof(zeros);
	if (off >= end)
		size = 0;
	else if ((off_t)size > end - off)
		size = (size_t)(end - off);
	fuse_reply_buf(req, zeros, size);
}

static void null_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct null_file *f = null_file_of(ino);

	(void)buf;
	(void)fi;
	pthread_mutex_lock(&null_lock);
	if (f && off + (off_t)size > f->size)
		f->size = off + (off_t)size;
	pthread_mutex_unlock(&null_lock);
	fuse_reply_write(req, size);
}

static void null_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void null_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	null_ok(req, ino, fi);
}

static const struct fuse_lowlevel_ops null_ops = {
	.init = null_init,
	.lookup = null_lookup,
	.getattr = null_getattr,
	.setattr = null_setattr,
	.create = null_create,
	.mkdir = null_mkdir,
	.unlink = null_unlink,
	.rmdir = null_unlink,
	.forget = null_forget,
	.open = null_open,
	.read = null_read,
	.write = null_write,
	.flush = null_ok,
	.release = null_ok,
	.fsync = null_fsync,
};

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	struct fuse_loop_config *cfg;
	struct fuse_session *se;
	int ret = 1;

	if (fuse_parse_cmdline(&args, &opts) != 0 || !opts.mountpoint) {
		fprintf(stderr, "usage: %s [-f] [-s] MOUNTPOINT\n", argv[0]);
		return 2;
	}
	se = fuse_session_new(&args, &null_ops, sizeof(null_ops), NULL);
	if (!se)
		goto out_free;
	if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, opts.mountpoint) != 0)
		goto out_destroy;
	fuse_daemonize(opts.foreground);
	if (opts.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		cfg = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(cfg, 0);
		fuse_loop_cfg_set_max_threads(cfg, 16);
		ret = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
out_free:
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return ret ? 1 : 0;
}
