/*
 * The inode table: one record per backing object the kernel knows, keyed by
 * (st_dev, st_ino), holding an O_PATH fd. The FUSE inode number is the
 * record's address, so the data path goes from fuse_ino_t to the record
 * without touching the table; the table (sharded, one mutex per shard) is
 * used only by lookup, forget and the last unref.
 *
 * A record lives while the kernel holds lookups on it (nlookup) or the
 * daemon holds references (refs: the page cache while the file is dirty,
 * children whose name hint points at it). It stays in the table in between,
 * so a file forgotten with dirty pages is found again with its cache.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_i.h"

#define PFS_SHARD_MIN_BUCKETS 64

static struct pfs *pfs_inode_owner;

static void pfs_inode_free(struct pfs *fs, struct pfs_inode *inode);

static struct pfs_inode_shard *pfs_shard_of(struct pfs *fs, dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ULL ^ (uint64_t)dev;
	return &fs->inodes.shards[(h >> 32) % PFS_INODE_SHARDS];
}

static size_t pfs_bucket_of(const struct pfs_inode_shard *s, dev_t dev, ino_t ino)
{
	uint64_t h = ((uint64_t)ino ^ ((uint64_t)dev << 17)) * 0xC2B2AE3D27D4EB4FULL;
	return (size_t)(h >> 20) & (s->nbuckets - 1);
}

int pfs_inode_table_init(struct pfs *fs)
{
	for (int i = 0; i < PFS_INODE_SHARDS; i++) {
		struct pfs_inode_shard *s = &fs->inodes.shards[i];

		pthread_mutex_init(&s->lock, NULL);
		s->buckets = alloc_malloc(fs->alloc, ALLOC_SITE_INODE,
					  PFS_SHARD_MIN_BUCKETS * sizeof(*s->buckets), ALLOC_ZERO);
		if (!s->buckets)
			return -ENOMEM;
		s->nbuckets = PFS_SHARD_MIN_BUCKETS;
		s->count = 0;
	}
	pthread_rwlock_init(&fs->inodes.hint_lock, NULL);
	pfs_inode_owner = fs;
	return 0;
}

void pfs_inode_table_destroy(struct pfs *fs)
{
	/* Unmount: no request runs any more, so no lock or refcount matters;
	 * hints are cut first so that freeing one record never reaches another. */
	for (int i = 0; i < PFS_INODE_SHARDS; i++) {
		struct pfs_inode_shard *s = &fs->inodes.shards[i];
		for (size_t k = 0; s->buckets && k < s->nbuckets; k++)
			for (struct pfs_inode *in = s->buckets[k]; in; in = in->hash_next) {
				alloc_free(fs->alloc, in->hint_name);
				in->hint_name = NULL;
				in->hint_parent = NULL;
			}
	}
	for (int i = 0; i < PFS_INODE_SHARDS; i++) {
		struct pfs_inode_shard *s = &fs->inodes.shards[i];
		for (size_t k = 0; s->buckets && k < s->nbuckets; k++) {
			struct pfs_inode *in = s->buckets[k], *next;
			for (; in; in = next) {
				next = in->hash_next;
				if (in->cache_ready && pcache_file_is_dirty(&in->cache)) {
					pfs_log(PFS_LOG_ERR,
						"inode %llu: dirty data could not be written back "
						"and is lost",
						(unsigned long long)in->ino);
					pcache_file_discard(&in->cache);
				}
				in->refs = 0;
				pfs_inode_free(fs, in);
			}
		}
		alloc_free(fs->alloc, s->buckets);
		s->buckets = NULL;
		pthread_mutex_destroy(&s->lock);
	}
	pthread_rwlock_destroy(&fs->inodes.hint_lock);
}

void pfs_inode_for_each(struct pfs *fs, void (*fn)(struct pfs *fs, struct pfs_inode *inode))
{
	for (int i = 0; i < PFS_INODE_SHARDS; i++) {
		struct pfs_inode_shard *s = &fs->inodes.shards[i];
		for (size_t k = 0; s->buckets && k < s->nbuckets; k++)
			for (struct pfs_inode *in = s->buckets[k]; in; in = in->hash_next)
				fn(fs, in);
	}
}

/* Called with s->lock held: rehash into n buckets, if memory allows (a
 * failure leaves the table as it was). */
static void pfs_shard_resize(struct pfs *fs, struct pfs_inode_shard *s, size_t n)
{
	struct pfs_inode **b = alloc_malloc(fs->alloc, ALLOC_SITE_INODE, n * sizeof(*b),
					    ALLOC_ZERO | ALLOC_NOFS | ALLOC_NORETRY);
	struct pfs_inode **old = s->buckets;
	size_t oldn = s->nbuckets;

	if (!b)
		return;
	s->buckets = b;
	s->nbuckets = n;
	for (size_t i = 0; i < oldn; i++) {
		struct pfs_inode *in = old[i], *next;
		for (; in; in = next) {
			size_t k = pfs_bucket_of(s, in->dev, in->ino);
			next = in->hash_next;
			in->hash_next = b[k];
			b[k] = in;
		}
	}
	alloc_free(fs->alloc, old);
}

/* Called with s->lock held. Growth failing is harmless: chains get longer. */
static void pfs_shard_grow(struct pfs *fs, struct pfs_inode_shard *s)
{
	pfs_shard_resize(fs, s, s->nbuckets * 2);
}

static struct pfs_inode *pfs_shard_find(struct pfs_inode_shard *s, dev_t dev, ino_t ino)
{
	struct pfs_inode *in = s->buckets[pfs_bucket_of(s, dev, ino)];

	while (in && (in->ino != ino || in->dev != dev))
		in = in->hash_next;
	return in;
}

/* Called with s->lock held. After a big tree has come and gone (or the
 * shrinker has had the kernel drop it), give the buckets back; the gap
 * between growing (count > 2n) and this (count < n/8) keeps a table that
 * hovers around one size from resizing back and forth. */
static void pfs_shard_shrink(struct pfs *fs, struct pfs_inode_shard *s)
{
	if (s->nbuckets > PFS_SHARD_MIN_BUCKETS && s->count < s->nbuckets / 8)
		pfs_shard_resize(fs, s, s->nbuckets / 2);
}

static void pfs_shard_remove(struct pfs *fs, struct pfs_inode_shard *s, struct pfs_inode *inode)
{
	struct pfs_inode **p = &s->buckets[pfs_bucket_of(s, inode->dev, inode->ino)];

	while (*p && *p != inode)
		p = &(*p)->hash_next;
	if (*p) {
		*p = inode->hash_next;
		s->count--;
		pfs_shard_shrink(fs, s);
	}
}

static void pfs_hint_drop(struct pfs *fs, struct pfs_inode *inode);

/* The record is out of the table and unreferenced: release everything. */
static void pfs_inode_free(struct pfs *fs, struct pfs_inode *inode)
{
	if (inode->cache_ready)
		pcache_file_destroy(&inode->cache);
	pfs_hint_drop(fs, inode);
	if (inode->write_fd >= 0) {
		close(inode->write_fd);
		__atomic_sub_fetch(&fs->inodes.count, 1, __ATOMIC_RELAXED);
	}
	if (inode->write_fd_idle)
		__atomic_sub_fetch(&fs->inodes.write_fds_idle, 1, __ATOMIC_RELAXED);
	close(inode->fd);
	pthread_mutex_destroy(&inode->open_lock);
	pthread_mutex_destroy(&inode->append_lock);
	alloc_free(fs->alloc, inode);
	__atomic_sub_fetch(&fs->inodes.count, 1, __ATOMIC_RELAXED);
}

static bool pfs_inode_is_root(struct pfs *fs, struct pfs_inode *inode)
{
	return inode == &fs->inodes.root;
}

/* Drop from the table and free when no one holds it. Shard lock held; returns
 * true if the caller must free it after unlocking. */
static bool pfs_inode_maybe_unhash(struct pfs *fs, struct pfs_inode_shard *s,
				   struct pfs_inode *inode)
{
	if (inode->nlookup || inode->refs)
		return false;
	pfs_shard_remove(fs, s, inode);
	return true;
}

void pfs_inode_ref(struct pfs *fs, struct pfs_inode *inode)
{
	struct pfs_inode_shard *s;

	if (pfs_inode_is_root(fs, inode))
		return;
	s = pfs_shard_of(fs, inode->dev, inode->ino);
	pthread_mutex_lock(&s->lock);
	inode->refs++;
	pthread_mutex_unlock(&s->lock);
}

void pfs_inode_unref(struct pfs *fs, struct pfs_inode *inode)
{
	struct pfs_inode_shard *s;
	bool dead;

	if (pfs_inode_is_root(fs, inode))
		return;
	s = pfs_shard_of(fs, inode->dev, inode->ino);
	pthread_mutex_lock(&s->lock);
	inode->refs--;
	dead = pfs_inode_maybe_unhash(fs, s, inode);
	pthread_mutex_unlock(&s->lock);
	if (dead)
		pfs_inode_free(fs, inode);
}

void pfs_inode_forget(struct pfs *fs, struct pfs_inode *inode, uint64_t n)
{
	struct pfs_inode_shard *s;
	bool last;

	if (pfs_inode_is_root(fs, inode))
		return;
	s = pfs_shard_of(fs, inode->dev, inode->ino);
	pthread_mutex_lock(&s->lock);
	inode->nlookup = n > inode->nlookup ? 0 : inode->nlookup - n;
	last = inode->nlookup == 0;
	/* Pin it while we look at the cache outside the lock. */
	if (last)
		inode->refs++;
	pthread_mutex_unlock(&s->lock);
	if (!last)
		return;
	/* Dirty pages of a file with no name left and no user can never be
	 * read again: drop them instead of writing them back. */
	if (pfs_inode_cache_ready(inode) && pcache_file_is_dirty(&inode->cache)) {
		struct stat st;
		if (fstat(inode->fd, &st) == 0 && st.st_nlink == 0)
			pcache_file_discard(&inode->cache);
	}
	pfs_inode_unref(fs, inode); /* the pin, and the inode if that was all */
}

struct pfs_inode *pfs_inode_find(struct pfs *fs, dev_t dev, ino_t ino)
{
	struct pfs_inode_shard *s;
	struct pfs_inode *in;

	if (fs->inodes.root.dev == dev && fs->inodes.root.ino == ino)
		return &fs->inodes.root;
	s = pfs_shard_of(fs, dev, ino);
	pthread_mutex_lock(&s->lock);
	in = pfs_shard_find(s, dev, ino);
	if (in)
		in->refs++;
	pthread_mutex_unlock(&s->lock);
	return in;
}

struct pfs_inode *pfs_inode_get(fuse_req_t req, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &pfs_from_req(req)->inodes.root;
	return (struct pfs_inode *)(uintptr_t)ino;
}

void pfs_inode_proc_path(const struct pfs_inode *inode, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", inode->fd);
}

/* ---- name hints: the last name each inode was seen under ---- */

/* Install (parent, name) as the hint, taking over the caller's parent
 * reference and name; release the old ones. */
static void pfs_hint_swap(struct pfs *fs, struct pfs_inode *inode, struct pfs_inode *parent,
			  char *name)
{
	struct pfs_inode *old_parent;
	char *old_name;

	pthread_rwlock_wrlock(&fs->inodes.hint_lock);
	old_parent = inode->hint_parent;
	old_name = inode->hint_name;
	inode->hint_parent = parent;
	inode->hint_name = name;
	pthread_rwlock_unlock(&fs->inodes.hint_lock);
	alloc_free(fs->alloc, old_name);
	if (old_parent)
		pfs_inode_unref(fs, old_parent);
}

static void pfs_hint_drop(struct pfs *fs, struct pfs_inode *inode)
{
	pfs_hint_swap(fs, inode, NULL, NULL);
}

void pfs_inode_hint_set(struct pfs *fs, struct pfs_inode *inode, struct pfs_inode *parent,
			const char *name)
{
	char *copy;
	bool same;

	if (pfs_inode_is_root(fs, inode))
		return;
	pthread_rwlock_rdlock(&fs->inodes.hint_lock);
	same = inode->hint_parent == parent && inode->hint_name &&
	       strcmp(inode->hint_name, name) == 0;
	pthread_rwlock_unlock(&fs->inodes.hint_lock);
	if (same)
		return;
	/* A hint is only a hint: never wait or fail for it. */
	copy = alloc_strdup(fs->alloc, ALLOC_SITE_INODE, name, ALLOC_NORETRY);
	if (!copy)
		return;
	pfs_inode_ref(fs, parent);
	pfs_hint_swap(fs, inode, parent, copy);
}

void pfs_inode_path(struct pfs *fs, struct pfs_inode *inode, char *buf, size_t len)
{
	const char *names[256];
	unsigned n = 0;
	size_t used = 0;
	bool ok = true;

	pthread_rwlock_rdlock(&fs->inodes.hint_lock);
	while (inode != &fs->inodes.root) {
		if (!inode->hint_name || n == 256) {
			ok = false;
			break;
		}
		names[n++] = inode->hint_name;
		inode = inode->hint_parent;
	}
	if (ok) {
		buf[0] = '\0';
		while (n-- > 0 && used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s", names[n],
						 n ? "/" : "");
		if (used >= len)
			ok = false;
	}
	pthread_rwlock_unlock(&fs->inodes.hint_lock);
	if (!ok || !buf[0])
		snprintf(buf, len, "?");
}

/* ---- lookup ---- */

/* open() that waits a little for the shrinker when fds run out. */
static int pfs_open_retry(struct pfs *fs, const char *path, int flags)
{
	struct pfs_shrink_wait w = {0};

	for (;;) {
		int fd = open(path, flags);
		if (fd >= 0 || errno != EMFILE)
			return fd;
		if (!pfs_shrink_wait_fd(fs, &w)) {
			errno = EMFILE;
			return -1;
		}
	}
}

/* A regular file's fd becomes its data fd (see struct pfs_inode). From an fd
 * that a create has just opened on the object (from_fd >= 0), the record's
 * fd is opened through it, with no O_PATH fd on the way: a regular file's
 * read fd, or O_PATH if it cannot be read. */
static int pfs_inode_data_open(struct pfs *fs, struct pfs_inode *inode, int from_fd)
{
	char path[64];
	int fd;

	inode->data_fd = -1;
	inode->data_err = -EBADF;
	inode->write_fd = -1;
	if (from_fd >= 0)
		snprintf(path, sizeof(path), "/proc/self/fd/%d", from_fd);
	else
		pfs_inode_proc_path(inode, path, sizeof(path));
	if (inode->type == S_IFREG) {
		/* Read-only: writers open write_fd when they open the file. */
		fd = pfs_open_retry(fs, path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			inode->data_err = 0;
			if (from_fd < 0)
				close(inode->fd);
			inode->fd = fd;
			inode->data_fd = fd;
			return 0;
		}
		inode->data_err = -errno;
	}
	if (from_fd >= 0) {
		inode->fd = pfs_open_retry(fs, path, O_PATH | O_CLOEXEC);
		if (inode->fd < 0)
			return -errno;
	}
	return 0;
}

struct pfs_inode *pfs_inode_spare_alloc(struct pfs *fs)
{
	return alloc_malloc(fs->alloc, ALLOC_SITE_INODE, sizeof(struct pfs_inode), ALLOC_ZERO);
}

void pfs_inode_spare_free(struct pfs *fs, struct pfs_inode *spare)
{
	alloc_free(fs->alloc, spare);
}

/* A record made for a lookup that did not keep it: back to the caller's
 * spare (zeroed, as pfs_inode_spare_alloc gives it) or freed. */
static void pfs_inode_unused(struct pfs *fs, struct pfs_inode *fresh, struct pfs_inode **spare)
{
	if (spare) {
		memset(fresh, 0, sizeof(*fresh));
		*spare = fresh;
	} else {
		alloc_free(fs->alloc, fresh);
	}
}

int pfs_inode_lookup(struct pfs *fs, struct pfs_inode *parent, const char *name,
		     struct fuse_entry_param *e)
{
	return pfs_inode_lookup_spare(fs, parent, name, e, NULL);
}

int pfs_inode_lookup_spare(struct pfs *fs, struct pfs_inode *parent, const char *name,
			   struct fuse_entry_param *e, struct pfs_inode **spare)
{
	return pfs_inode_lookup_created(fs, parent, name, -1, e, spare);
}

int pfs_inode_lookup_created(struct pfs *fs, struct pfs_inode *parent, const char *name,
			     int from_fd, struct fuse_entry_param *e, struct pfs_inode **spare)
{
	struct pfs_inode_shard *s;
	struct pfs_inode *in, *fresh = NULL;
	struct stat st;
	bool wake = false;
	int fd = -1, r;

	memset(e, 0, sizeof(*e));
	if (from_fd >= 0) {
		/* The record's own fd is opened only if a new one is made. */
		if (fstat(from_fd, &st) < 0)
			return -errno;
		goto have_stat;
	}
	for (struct pfs_shrink_wait w = {0};;) {
		fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			break;
		if (errno != EMFILE)
			return -errno;
		if (!pfs_shrink_wait_fd(fs, &w))
			return -EMFILE;
	}
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
have_stat:
	if (st.st_dev == fs->inodes.root.dev && st.st_ino == fs->inodes.root.ino) {
		/* ".." of a top-level directory, or a bind loop: the root. */
		if (fd >= 0)
			close(fd);
		in = &fs->inodes.root;
		goto out_stat;
	}
	s = pfs_shard_of(fs, st.st_dev, st.st_ino);
	pthread_mutex_lock(&s->lock);
	in = pfs_shard_find(s, st.st_dev, st.st_ino);
	if (in) {
		in->nlookup++;
		pthread_mutex_unlock(&s->lock);
		if (fd >= 0)
			close(fd);
		goto out_hint;
	}
	pthread_mutex_unlock(&s->lock);

	/* Allocate with no lock held: the policy may make us wait here. */
	if (spare && *spare) {
		fresh = *spare;
		*spare = NULL;
	} else {
		fresh = pfs_inode_spare_alloc(fs);
	}
	if (!fresh) {
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	fresh->dev = st.st_dev;
	fresh->ino = st.st_ino;
	fresh->fd = fd;
	fresh->type = st.st_mode & S_IFMT;
	r = pfs_inode_data_open(fs, fresh, from_fd);
	if (r) {
		pfs_inode_unused(fs, fresh, spare);
		return r;
	}
	fresh->nlookup = 1;
	pthread_mutex_init(&fresh->open_lock, NULL);
	pthread_mutex_init(&fresh->append_lock, NULL);

	pthread_mutex_lock(&s->lock);
	in = pfs_shard_find(s, st.st_dev, st.st_ino);
	if (in) {
		/* Someone else got there first. */
		in->nlookup++;
		pthread_mutex_unlock(&s->lock);
		pthread_mutex_destroy(&fresh->open_lock);
		pthread_mutex_destroy(&fresh->append_lock);
		close(fresh->fd);
		pfs_inode_unused(fs, fresh, spare);
		goto out_hint;
	}
	in = fresh;
	{
		size_t k = pfs_bucket_of(s, in->dev, in->ino);
		in->hash_next = s->buckets[k];
		s->buckets[k] = in;
		if (++s->count > s->nbuckets * 2)
			pfs_shard_grow(fs, s);
		if (__atomic_add_fetch(&fs->inodes.count, 1, __ATOMIC_RELAXED) ==
		    fs->shrink.high + 1)
			wake = true;
	}
	pthread_mutex_unlock(&s->lock);
	if (wake && pfs_shrink_running(fs) && pthread_mutex_trylock(&fs->shrink.lock) == 0) {
		pthread_cond_signal(&fs->shrink.wake);
		pthread_mutex_unlock(&fs->shrink.lock);
	}

out_hint:
	pfs_inode_hint_set(fs, in, parent, name);
out_stat:
	e->ino = in == &fs->inodes.root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)in;
	if (in != fresh) {
		/* The cache may know a newer size and mtime. */
		r = pfs_inode_stat(fs, in, &st);
		if (r) {
			pfs_inode_forget(fs, in, 1);
			return r;
		}
	}
	e->attr = st;
	e->attr_timeout = fs->conn.attr_timeout;
	e->entry_timeout = fs->conn.timeout;
	return 0;
}

/* ---- the cache state of regular files ---- */

bool pfs_inode_cache_ready(struct pfs_inode *inode)
{
	return __atomic_load_n(&inode->cache_ready, __ATOMIC_ACQUIRE);
}

/* open_lock held, no writer: close write_fd if the cache can do without
 * it (no page unwritten; a read fd to go back to). */
static bool pfs_inode_write_fd_close(struct pfs *fs, struct pfs_inode *inode)
{
	if (inode->write_fd < 0)
		return true;
	if (inode->cache_ready &&
	    (inode->data_fd < 0 || pcache_file_set_fd(&inode->cache, inode->data_fd, true)))
		return false;
	close(inode->write_fd);
	__atomic_store_n(&inode->write_fd, -1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&fs->inodes.count, 1, __ATOMIC_RELAXED);
	return true;
}

/* open_lock held: is write_fd one for the shrinker to close later (kept
 * with no writer for unwritten pages; never when the cache has no read fd
 * to fall back to)? */
static void pfs_inode_write_fd_idle(struct pfs *fs, struct pfs_inode *inode, bool idle)
{
	idle = idle && inode->write_fd >= 0 && inode->data_fd >= 0;
	if (idle == inode->write_fd_idle)
		return;
	inode->write_fd_idle = idle;
	if (idle)
		__atomic_add_fetch(&fs->inodes.write_fds_idle, 1, __ATOMIC_RELAXED);
	else
		__atomic_sub_fetch(&fs->inodes.write_fds_idle, 1, __ATOMIC_RELAXED);
}

/* open_lock held: one writer less. The last one closes write_fd, or
 * leaves it to the shrinker while pages are unwritten. */
static void pfs_inode_writer_drop(struct pfs *fs, struct pfs_inode *inode)
{
	if (__atomic_sub_fetch(&inode->writers, 1, __ATOMIC_RELAXED) == 0 && inode->write_fd >= 0)
		pfs_inode_write_fd_idle(fs, inode, !pfs_inode_write_fd_close(fs, inode));
}

/* open_lock held: make sure write_fd is open. *create_fd, the creating
 * open's O_RDWR fd, is taken if the inode has none: the create made the
 * inode's record from that fd (pfs_inode_lookup_created), so it is this
 * very file. For a file created read-only by a daemon without
 * CAP_DAC_OVERRIDE it is the only fd that can write. */
static int pfs_inode_write_open(struct pfs *fs, struct pfs_inode *inode, int *create_fd)
{
	char path[64];
	int fd = -1;

	if (inode->write_fd >= 0) {
		/* The fd kept for dirty pages must not let a writer past the
		 * file's mode (root passes it anyway; with allow_other the
		 * kernel has checked already). */
		if (fs->owner.as_root || (create_fd && *create_fd >= 0))
			return 0;
		pfs_inode_proc_path(inode, path, sizeof(path));
		return faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) < 0 ? -errno : 0;
	}
	if (create_fd && *create_fd >= 0) {
		fd = *create_fd;
		*create_fd = -1;
	}
	if (fd < 0) {
		pfs_inode_proc_path(inode, path, sizeof(path));
		fd = pfs_open_retry(fs, path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return -errno;
	}
	if (inode->cache_ready)
		pcache_file_set_fd(&inode->cache, fd, false);
	__atomic_store_n(&inode->write_fd, fd, __ATOMIC_RELAXED);
	/* Counted with the records: the shrinker keeps fds, not records,
	 * under the limit. */
	if (__atomic_add_fetch(&fs->inodes.count, 1, __ATOMIC_RELAXED) == fs->shrink.high + 1 &&
	    pfs_shrink_running(fs) && pthread_mutex_trylock(&fs->shrink.lock) == 0) {
		pthread_cond_signal(&fs->shrink.wake);
		pthread_mutex_unlock(&fs->shrink.lock);
	}
	return 0;
}

int pfs_inode_cache_open(struct pfs *fs, struct pfs_inode *inode, bool want_write, int *create_fd)
{
	struct stat st;
	int r = 0, fd;

	if (inode->type != S_IFREG)
		return -EINVAL;
	if (!want_write && pfs_inode_cache_ready(inode))
		return 0;
	pthread_mutex_lock(&inode->open_lock);
	if (want_write) {
		r = pfs_inode_write_open(fs, inode, create_fd);
		if (r)
			goto out_unlock;
		pfs_inode_write_fd_idle(fs, inode, false);
		__atomic_add_fetch(&inode->writers, 1, __ATOMIC_RELAXED);
	}
	if (inode->cache_ready)
		goto out_unlock;
	fd = inode->write_fd >= 0 ? inode->write_fd : inode->data_fd;
	if (fd < 0) {
		r = inode->data_err;
		goto out_unlock;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		if (want_write)
			pfs_inode_writer_drop(fs, inode);
		goto out_unlock;
	}
	pcache_file_init(fs->cache, &inode->cache, fd, st.st_size, (uint64_t)(uintptr_t)inode);
	__atomic_store_n(&inode->cache_ready, true, __ATOMIC_RELEASE);
out_unlock:
	pthread_mutex_unlock(&inode->open_lock);
	return r;
}

bool pfs_inode_write_fd_release(struct pfs *fs, struct pfs_inode *inode)
{
	bool closed = false;

	pthread_mutex_lock(&inode->open_lock);
	if (inode->writers == 0) {
		closed = pfs_inode_write_fd_close(fs, inode);
		pfs_inode_write_fd_idle(fs, inode, !closed);
	}
	pthread_mutex_unlock(&inode->open_lock);
	return closed;
}

void pfs_inode_writer_done(struct pfs *fs, struct pfs_inode *inode)
{
	pthread_mutex_lock(&inode->open_lock);
	pfs_inode_writer_drop(fs, inode);
	pthread_mutex_unlock(&inode->open_lock);
}

void pfs_inode_meta_changed(struct pfs_inode *inode)
{
	struct stat st;
	int64_t ns, old;

	if (fstatat(inode->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return;
	ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
	old = __atomic_load_n(&inode->meta_ctime_ns, __ATOMIC_RELAXED);
	while (ns > old && !__atomic_compare_exchange_n(&inode->meta_ctime_ns, &old, ns, false,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

int pfs_inode_stat(struct pfs *fs, struct pfs_inode *inode, struct stat *st)
{
	if (fstatat(inode->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (pfs_inode_cache_ready(inode)) {
		struct timespec mtime;
		bool has_mtime = false;
		off_t size;

		pcache_file_attr(&inode->cache, &size, &mtime, &has_mtime);
		st->st_size = size;
		if (has_mtime) {
			int64_t meta = __atomic_load_n(&inode->meta_ctime_ns, __ATOMIC_RELAXED);

			/* Dirty data will take space: du and ls -s see it now.
			 * An estimate (whole pages), read without the lock. */
			uint64_t dirty =
				__atomic_load_n(&inode->cache.dirty_pages, __ATOMIC_RELAXED) *
				pcache_page_size(fs->cache);
			uint64_t bytes = dirty < (uint64_t)size ? dirty : (uint64_t)size;
			blkcnt_t blocks = (blkcnt_t)((bytes + 511) / 512);

			if (blocks > st->st_blocks)
				st->st_blocks = blocks;
			/* The backing ctime moves with every writeback (and the
			 * mtime stamp after it): the ctime is the last write's
			 * or the last change of metadata's, whichever is later. */
			st->st_mtim = mtime;
			st->st_ctim = mtime;
			if (meta > (int64_t)mtime.tv_sec * 1000000000 + mtime.tv_nsec) {
				st->st_ctim.tv_sec = (time_t)(meta / 1000000000);
				st->st_ctim.tv_nsec = (long)(meta % 1000000000);
			}
		}
	}
	return 0;
}

/*
 * The page cache keeps a dirty file alive through these. They carry no
 * daemon pointer, so the table's owner is remembered here (one daemon per
 * process): pfs_inode_owner, set by pfs_inode_table_init().
 */
static void pfs_inode_cache_get(struct pcache_file *f)
{
	pfs_inode_ref(pfs_inode_owner, (struct pfs_inode *)(uintptr_t)f->id);
}

static void pfs_inode_cache_put(struct pcache_file *f)
{
	pfs_inode_unref(pfs_inode_owner, (struct pfs_inode *)(uintptr_t)f->id);
}

const struct pcache_file_ops pfs_inode_cache_ops = {
	.get = pfs_inode_cache_get,
	.put = pfs_inode_cache_put,
};
