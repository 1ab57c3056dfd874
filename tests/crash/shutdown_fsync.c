/*
 * pfs-shutdown-fsync DIR DELAY_MS: can an fsync that is in flight when the
 * filesystem under DIR is shut down (FS_IOC_SHUTDOWN, NOLOGFLUSH) return 0
 * for data the shutdown loses? The ext4 half of the seed 7025 finding
 * (tests/crash/README.md); shutdown_fsync.sh runs it on a loop-mounted ext4
 * image again and again and checks every file after the journal replay.
 *
 * Four threads each append 64 KiB to a file of their own (DIR/f0..f3) and
 * fsync it, in a loop. After DELAY_MS the main thread shuts DIR's
 * filesystem down; the threads stop at their first error. For each thread
 * one line on stdout: "THREAD END AFTER": END is the file size its last
 * successful fsync covered, AFTER how many fsyncs returned 0 after the
 * shutdown had begun. A manual experiment, not a test: it needs root and
 * hits the window only now and then.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* Debian 12's headers lack these (as bench/comparison/pfs_godown.c). */
#ifndef FS_IOC_SHUTDOWN
#define FS_IOC_SHUTDOWN _IOR('X', 125, uint32_t)
#endif
#define SHUTDOWN_NOLOGFLUSH 0x2u

#define SF_THREADS 4
#define SF_CHUNK   (64 * 1024)

struct sf_thread {
	pthread_t tid;
	int id;
	off_t ok_end;	   /* the size the last successful fsync covered */
	unsigned ok_after; /* fsyncs that returned 0 after the shutdown began */
};

static const char *sf_dir;
static atomic_bool sf_stop;
static atomic_bool sf_shutdown_begun;

static void *sf_writer(void *arg)
{
	struct sf_thread *t = arg;
	static char buf[SF_THREADS][SF_CHUNK];
	char path[4096];
	off_t off = 0;
	int fd;

	memset(buf[t->id], 'a' + t->id, SF_CHUNK);
	snprintf(path, sizeof(path), "%s/f%d", sf_dir, t->id);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "pfs-shutdown-fsync: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	while (!atomic_load(&sf_stop)) {
		if (pwrite(fd, buf[t->id], SF_CHUNK, off) != SF_CHUNK)
			break;
		off += SF_CHUNK;
		if (fsync(fd) != 0)
			break;
		t->ok_end = off;
		if (atomic_load(&sf_shutdown_begun))
			t->ok_after++;
	}
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sf_thread threads[SF_THREADS];
	uint32_t flags = SHUTDOWN_NOLOGFLUSH;
	struct timespec ts;
	char *end;
	long ms;
	int dfd;

	if (argc != 3) {
		fprintf(stderr, "usage: pfs-shutdown-fsync DIR DELAY_MS (see the header of "
				"shutdown_fsync.c; it shuts DIR's filesystem down)\n");
		return 2;
	}
	sf_dir = argv[1];
	errno = 0;
	ms = strtol(argv[2], &end, 10);
	if (errno || *end || end == argv[2] || ms < 0 || ms > 60000) {
		fprintf(stderr, "pfs-shutdown-fsync: DELAY_MS '%s': expected 0..60000\n", argv[2]);
		return 2;
	}
	dfd = open(sf_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		fprintf(stderr, "pfs-shutdown-fsync: %s: %s\n", sf_dir, strerror(errno));
		return 1;
	}
	for (int i = 0; i < SF_THREADS; i++) {
		threads[i] = (struct sf_thread){.id = i};
		if (pthread_create(&threads[i].tid, NULL, sf_writer, &threads[i]) != 0) {
			fprintf(stderr, "pfs-shutdown-fsync: cannot start a writer thread\n");
			return 1;
		}
	}
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	/* Before the ioctl: an fsync counted as "after" may have begun before,
	 * which is the point; one that returned before this is never counted. */
	atomic_store(&sf_shutdown_begun, true);
	if (ioctl(dfd, FS_IOC_SHUTDOWN, &flags) != 0) {
		fprintf(stderr, "pfs-shutdown-fsync: FS_IOC_SHUTDOWN on %s: %s\n", sf_dir,
			strerror(errno));
		atomic_store(&sf_stop, true);
		for (int i = 0; i < SF_THREADS; i++)
			pthread_join(threads[i].tid, NULL);
		return 1;
	}
	atomic_store(&sf_stop, true);
	for (int i = 0; i < SF_THREADS; i++) {
		pthread_join(threads[i].tid, NULL);
		printf("%d %lld %u\n", i, (long long)threads[i].ok_end, threads[i].ok_after);
	}
	close(dfd);
	return 0;
}
