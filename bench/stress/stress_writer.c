/* pfs-stress run: the writer threads and the application's error handling
 * (--on-error). Every call is bracketed for the watchdog in stress_run.c.
 *
 * Each thread owns files i with i % threads == its index, so the order of
 * writes to any block is the order of that thread's journal records. A
 * thread first writes every block of its files once (generation 1), then
 * loops: with probability overwrite_pct a random block of a random own file,
 * otherwise the next block of a sequential cursor over its own blocks, always
 * with the block's next generation. The choices come from a per-thread PRNG
 * seeded from --seed, so one seed gives one sequence of intended writes. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "stress_i.h"

#define STRESS_BACKOFF_MIN_US 1000u
#define STRESS_BACKOFF_MAX_US 100000u

static uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void run_journal(struct stress_run *run, int ret)
{
	int expected = STRESS_STOP_NONE;

	if (ret)
		atomic_compare_exchange_strong(&run->stop, &expected, STRESS_STOP_JOURNAL);
}

static bool thread_should_stop(const struct stress_thread *t)
{
	return t->dead || atomic_load(&t->run->stop) != STRESS_STOP_NONE ||
	       stress_run_now_us(t->run) >= t->run->end_us;
}

static uint64_t call_begin(struct stress_thread *t)
{
	uint64_t now = stress_run_now_us(t->run);

	pthread_mutex_lock(&t->lock);
	t->call_start_us = now;
	t->call_stall_counted = false;
	pthread_mutex_unlock(&t->lock);
	return now;
}

/* Ends the call begun at start; returns its latency. A stall is counted
 * once, by whoever sees it first: this thread or the watchdog. */
static uint64_t call_end(struct stress_thread *t, uint64_t start)
{
	uint64_t lat = stress_run_now_us(t->run) - start;
	bool counted;

	pthread_mutex_lock(&t->lock);
	t->call_start_us = 0;
	counted = t->call_stall_counted;
	pthread_mutex_unlock(&t->lock);
	if (lat > t->run->stall_us)
		stress_run_stall_note(t->run, lat, !counted);
	return lat;
}

/* A dead FUSE mount answers ENOTCONN (or ECONNABORTED after an abort). An
 * EIO, or an ECANCELED (FUSE over io_uring ends a request queued to a ring
 * that is being torn down with it), is a dead mount only if the mount's
 * root no longer answers either. The probe is a call on the mount too, so
 * the watchdog sees it. */
static bool mount_is_dead(struct stress_thread *t, int err)
{
	struct statfs st;
	uint64_t start;
	int ret, probe_err;

	if (err == ENOTCONN || err == ECONNABORTED)
		return true;
	if (err != EIO && err != ECANCELED)
		return false;
	start = call_begin(t);
	ret = statfs(t->run->cfg->dir, &st);
	probe_err = ret < 0 ? errno : 0;
	call_end(t, start);
	return probe_err == ENOTCONN || probe_err == ECONNABORTED;
}

/* Sleeps the retry backoff in slices so a stop is noticed quickly. */
static void backoff_sleep(struct stress_thread *t, unsigned *backoff_us)
{
	unsigned left = *backoff_us;

	while (left && !thread_should_stop(t)) {
		unsigned slice = left < 10000u ? left : 10000u;

		usleep(slice);
		left -= slice;
	}
	*backoff_us =
		*backoff_us * 2 > STRESS_BACKOFF_MAX_US ? STRESS_BACKOFF_MAX_US : *backoff_us * 2;
}

/* The error-handling decision shared by open, write and fsync: returns true
 * when the caller should try the same call again. */
static bool thread_error_retry(struct stress_thread *t, int err, unsigned *backoff_us)
{
	if (err && mount_is_dead(t, err)) {
		pthread_mutex_lock(&t->lock);
		t->counters.enotconn++;
		pthread_mutex_unlock(&t->lock);
		t->dead = true;
		return false;
	}
	switch (t->run->cfg->on_error) {
	case STRESS_ON_ERROR_SKIP:
		return false;
	case STRESS_ON_ERROR_EXIT: {
		int expected = STRESS_STOP_NONE;

		atomic_compare_exchange_strong(&t->run->stop, &expected, STRESS_STOP_ON_ERROR_EXIT);
		return false;
	}
	case STRESS_ON_ERROR_RETRY:
		if (thread_should_stop(t))
			return false;
		backoff_sleep(t, backoff_us);
		pthread_mutex_lock(&t->lock);
		t->counters.retries++;
		pthread_mutex_unlock(&t->lock);
		return !thread_should_stop(t);
	}
	return false;
}

static void file_fsync(struct stress_thread *t, struct stress_file *f)
{
	unsigned backoff = STRESS_BACKOFF_MIN_US;

	for (;;) {
		uint64_t start = call_begin(t);
		int ret = fsync(f->fd);
		int err = ret < 0 ? errno : 0;
		uint64_t lat = call_end(t, start);

		run_journal(t->run,
			    stress_journal_append(&t->run->journal,
						  "F %" PRIu32 " %d %d %" PRIu64 " %" PRIu64 "\n",
						  f->number, ret, err, start, lat));
		pthread_mutex_lock(&t->lock);
		stress_latency_add(&t->counters.fsync_lat, lat);
		if (ret == 0)
			t->counters.fsyncs_ok++;
		else
			t->counters.fsync_errors[err < STRESS_ERRNO_MAX ? err : 0]++;
		pthread_mutex_unlock(&t->lock);
		if (ret == 0 || !thread_error_retry(t, err, &backoff)) {
			f->acked_since_fsync = 0;
			return;
		}
	}
}

static void block_write(struct stress_thread *t, struct stress_file *f, uint64_t block)
{
	const struct stress_run_config *cfg = t->run->cfg;
	uint32_t bs = cfg->geo.block_size;
	struct stress_block_id id = {
		.seed = cfg->geo.seed,
		.file = f->number,
		.block_size = bs,
		.block = block,
		.gen = ++f->gen[block],
	};
	unsigned backoff = STRESS_BACKOFF_MIN_US;

	stress_block_fill(t->buf, &id);
	for (;;) {
		uint64_t start;
		ssize_t ret;
		int err;
		uint64_t lat;

		run_journal(t->run, stress_journal_append(
					    &t->run->journal,
					    "I %" PRIu32 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
					    f->number, block, id.gen, stress_run_now_us(t->run)));
		start = call_begin(t);
		ret = pwrite(f->fd, t->buf, bs, (off_t)(block * bs));
		err = ret < 0 ? errno : 0;
		lat = call_end(t, start);
		run_journal(t->run,
			    stress_journal_append(&t->run->journal,
						  "W %" PRIu32 " %" PRIu64 " %" PRIu64
						  " %zd %d %" PRIu64 " %" PRIu64 "\n",
						  f->number, block, id.gen, ret, err, start, lat));

		pthread_mutex_lock(&t->lock);
		stress_latency_add(&t->counters.write_lat, lat);
		if (ret == (ssize_t)bs) {
			t->counters.writes_ok++;
			t->counters.bytes_acked += bs;
		} else if (ret >= 0) {
			t->counters.short_writes++;
			t->counters.bytes_refused += bs - (uint64_t)ret;
		} else {
			t->counters.write_errors[err < STRESS_ERRNO_MAX ? err : 0]++;
			t->counters.bytes_refused += bs;
		}
		pthread_mutex_unlock(&t->lock);

		if (ret == (ssize_t)bs) {
			if (cfg->fsync_every && ++f->acked_since_fsync >= cfg->fsync_every)
				file_fsync(t, f);
			return;
		}
		/* A short count is an error to the application too: retry
		 * rewrites the whole block, skip drops the rest of it. */
		if (!thread_error_retry(t, err, &backoff))
			return;
	}
}

static int file_open(struct stress_thread *t, struct stress_file *f)
{
	char path[4096];
	unsigned backoff = STRESS_BACKOFF_MIN_US;

	snprintf(path, sizeof(path), "%s/f%04" PRIu32 ".dat", t->run->cfg->dir, f->number);
	for (;;) {
		uint64_t start = call_begin(t);
		int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int err = fd < 0 ? errno : 0;
		uint64_t lat = call_end(t, start);

		run_journal(t->run,
			    stress_journal_append(&t->run->journal,
						  "O %" PRIu32 " %d %d %" PRIu64 " %" PRIu64 "\n",
						  f->number, fd < 0 ? -1 : 0, err, start, lat));
		if (fd >= 0) {
			f->fd = fd;
			return 0;
		}
		pthread_mutex_lock(&t->lock);
		t->counters.open_errors++;
		pthread_mutex_unlock(&t->lock);
		if (!thread_error_retry(t, err, &backoff))
			return -err;
	}
}

/* The next target of the loop phase; NULL when every own file is dropped. */
static struct stress_file *thread_pick(struct stress_thread *t, uint64_t *block)
{
	bool random_pick = rng_next(&t->rng) % 100 < t->run->cfg->overwrite_pct;

	if (random_pick) {
		unsigned k = (unsigned)(rng_next(&t->rng) % t->nfiles);
		uint64_t r = rng_next(&t->rng);

		for (unsigned i = 0; i < t->nfiles; i++) {
			struct stress_file *f = &t->files[(k + i) % t->nfiles];

			if (f->fd >= 0) {
				*block = r % f->nblocks;
				return f;
			}
		}
		return NULL;
	}
	for (unsigned i = 0; i <= t->nfiles; i++) {
		struct stress_file *f = &t->files[t->cursor_file];

		if (f->fd >= 0 && t->cursor_block < f->nblocks) {
			*block = t->cursor_block++;
			return f;
		}
		t->cursor_file = (t->cursor_file + 1) % t->nfiles;
		t->cursor_block = 0;
	}
	return NULL;
}

void *stress_thread_main(void *arg)
{
	struct stress_thread *t = arg;
	bool any_open = false;

	for (unsigned i = 0; i < t->nfiles && !thread_should_stop(t); i++)
		any_open |= file_open(t, &t->files[i]) == 0;
	for (unsigned i = 0; i < t->nfiles; i++) {
		struct stress_file *f = &t->files[i];

		for (uint64_t b = 0; f->fd >= 0 && b < f->nblocks && !thread_should_stop(t); b++)
			block_write(t, f, b);
	}
	while (any_open && !thread_should_stop(t)) {
		uint64_t block;
		struct stress_file *f = thread_pick(t, &block);

		if (!f)
			break;
		block_write(t, f, block);
	}
	/* The closing fsync belongs to a run that ended normally. */
	if (t->run->cfg->fsync_every && !t->dead &&
	    atomic_load(&t->run->stop) == STRESS_STOP_NONE) {
		for (unsigned i = 0; i < t->nfiles && !t->dead; i++)
			if (t->files[i].fd >= 0)
				file_fsync(t, &t->files[i]);
	}
	for (unsigned i = 0; i < t->nfiles; i++) {
		/* close() sends a FUSE flush: it can block like any call. */
		if (t->files[i].fd >= 0) {
			uint64_t start = call_begin(t);

			close(t->files[i].fd);
			call_end(t, start);
		}
	}
	atomic_store(&t->finished, true);
	return NULL;
}

int stress_thread_setup(struct stress_run *run, struct stress_thread *t, unsigned index)
{
	const struct stress_run_config *cfg = run->cfg;
	uint64_t nblocks = cfg->geo.file_size / cfg->geo.block_size;

	t->run = run;
	t->index = index;
	t->rng = cfg->geo.seed ^ (UINT64_C(0xd1b54a32d192ed03) * (index + 1));
	pthread_mutex_init(&t->lock, NULL);
	atomic_init(&t->finished, false);
	for (uint32_t n = index; n < cfg->geo.files; n += cfg->threads)
		t->nfiles++;
	t->files = calloc(t->nfiles, sizeof(*t->files));
	if (posix_memalign((void **)&t->buf, 4096, cfg->geo.block_size))
		t->buf = NULL;
	if (!t->files || !t->buf)
		return -ENOMEM;
	for (unsigned i = 0; i < t->nfiles; i++) {
		struct stress_file *f = &t->files[i];

		f->number = index + i * cfg->threads;
		f->fd = -1;
		f->nblocks = nblocks;
		f->gen = calloc(nblocks, sizeof(*f->gen));
		if (!f->gen)
			return -ENOMEM;
	}
	return 0;
}

void stress_thread_free(struct stress_thread *t)
{
	for (unsigned i = 0; t->files && i < t->nfiles; i++)
		free(t->files[i].gen);
	free(t->files);
	free(t->buf);
	pthread_mutex_destroy(&t->lock);
}
