/*
 * The inode shrinker. Every inode the kernel holds costs the daemon one fd,
 * and the kernel lets go of inodes only when it is short of memory, so a
 * big tree can exhaust RLIMIT_NOFILE. Past half the limit, a thread asks the
 * kernel to drop dentries of unused, clean inodes with a known name
 * (fuse_lowlevel_notify_inval_entry); the kernel then forgets the inodes it
 * can, and their records and fds go. Open files, dirty files and busy
 * dentries stay. Lookups that hit EMFILE wake it and wait a little.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "fs_i.h"

#define PFS_SHRINK_BATCH 512

struct pfs_shrink_victim {
	fuse_ino_t parent;
	char name[NAME_MAX + 1];
};

/* Unused, clean records with a known name: what the kernel may drop. */
static unsigned pfs_shrink_collect(struct pfs *fs, struct pfs_shrink_victim *v, unsigned max)
{
	unsigned n = 0;

	pthread_rwlock_rdlock(&fs->hint_lock);
	for (int i = 0; i < PFS_INODE_SHARDS && n < max; i++) {
		struct pfs_inode_shard *s = &fs->shards[i];

		pthread_mutex_lock(&s->lock);
		for (size_t k = 0; k < s->nbuckets && n < max; k++)
			for (struct pfs_inode *in = s->buckets[k]; in && n < max;
			     in = in->hash_next) {
				if (!in->nlookup || in->refs || !in->hint_name ||
				    !in->hint_parent ||
				    __atomic_load_n(&in->opens, __ATOMIC_RELAXED) ||
				    strlen(in->hint_name) > NAME_MAX)
					continue;
				v[n].parent = in->hint_parent == &fs->root
						      ? FUSE_ROOT_ID
						      : (fuse_ino_t)(uintptr_t)in->hint_parent;
				strcpy(v[n].name, in->hint_name);
				n++;
			}
		pthread_mutex_unlock(&s->lock);
	}
	pthread_rwlock_unlock(&fs->hint_lock);
	return n;
}

static void *pfs_shrink_main(void *data)
{
	struct pfs *fs = data;
	struct pfs_shrink_victim *v = NULL;
	bool busy = false;

	pthread_mutex_lock(&fs->shrink_lock);
	while (!fs->shrink_stop) {
		struct timespec until;
		long n, want;
		unsigned got;

		/* Pace: a short nap while the kernel catches up with the last
		 * batch, a long one when there is nothing to do. */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += busy ? 20 * 1000 * 1000 : 0;
		until.tv_sec += busy ? 0 : 1;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&fs->shrink_wake, &fs->shrink_lock, &until);
		n = __atomic_load_n(&fs->ninodes, __ATOMIC_RELAXED);
		busy = false;
		if (fs->shrink_stop || n <= fs->shrink_high)
			continue;
		pthread_mutex_unlock(&fs->shrink_lock);
		if (!v)
			v = alloc_malloc(fs->alloc, ALLOC_SITE_OTHER, PFS_SHRINK_BATCH * sizeof(*v),
					 ALLOC_NORETRY);
		want = n - fs->shrink_high * 3 / 4;
		got = v ? pfs_shrink_collect(fs, v, want < PFS_SHRINK_BATCH
							    ? (unsigned)want : PFS_SHRINK_BATCH)
			: 0;
		/* The kernel forgets what it can drop; open or busy dentries stay. */
		for (unsigned i = 0; i < got; i++)
			fuse_lowlevel_notify_inval_entry(fs->se, v[i].parent, v[i].name,
							 strlen(v[i].name));
		busy = got > 0;
		pthread_mutex_lock(&fs->shrink_lock);
	}
	pthread_mutex_unlock(&fs->shrink_lock);
	alloc_free(fs->alloc, v);
	return NULL;
}

/* Lookup ran out of fds: wake the shrinker and give it a moment. */
void pfs_shrink_urgent(struct pfs *fs)
{
	struct timespec nap = {.tv_nsec = 10 * 1000 * 1000};

	if (fs->shrink_running && pthread_mutex_trylock(&fs->shrink_lock) == 0) {
		pthread_cond_signal(&fs->shrink_wake);
		pthread_mutex_unlock(&fs->shrink_lock);
	}
	nanosleep(&nap, NULL);
}

int pfs_inode_shrinker_start(struct pfs *fs)
{
	struct rlimit rl;
	int r;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		rl.rlim_cur = 1 << 20;
	fs->shrink_high = (long)(rl.rlim_cur / 2);
	fs->shrink_stop = false;
	pthread_mutex_init(&fs->shrink_lock, NULL);
	pthread_cond_init(&fs->shrink_wake, NULL);
	r = -pthread_create(&fs->shrink_thread, NULL, pfs_shrink_main, fs);
	fs->shrink_running = r == 0;
	return r;
}

void pfs_inode_shrinker_stop(struct pfs *fs)
{
	if (!fs->shrink_running)
		return;
	pthread_mutex_lock(&fs->shrink_lock);
	fs->shrink_stop = true;
	pthread_cond_signal(&fs->shrink_wake);
	pthread_mutex_unlock(&fs->shrink_lock);
	pthread_join(fs->shrink_thread, NULL);
	fs->shrink_running = false;
}
