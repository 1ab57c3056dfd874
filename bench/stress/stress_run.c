/* pfs-stress run: set up the journal and the writer threads, then the main
 * thread is the watchdog (stalled calls, a hung mount) and the progress
 * meter, and finally writes the JSON summary and the end record. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stress_i.h"

#define STRESS_WATCH_PERIOD_US 50000u
#define STRESS_GRACE_EXTRA_US  UINT64_C(5000000)

const char *stress_on_error_name(enum stress_on_error mode)
{
	switch (mode) {
	case STRESS_ON_ERROR_RETRY:
		return "retry";
	case STRESS_ON_ERROR_SKIP:
		return "skip";
	case STRESS_ON_ERROR_EXIT:
		return "exit";
	}
	return "?";
}

/* Microseconds since the run started, never 0 (0 means "idle" below). */
uint64_t stress_run_now_us(const struct stress_run *run)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - run->t0.tv_sec) * 1000000u +
	       (uint64_t)((now.tv_nsec - run->t0.tv_nsec) / 1000) + 1;
}

void stress_run_stall_note(struct stress_run *run, uint64_t us, bool count)
{
	pthread_mutex_lock(&run->stall_lock);
	if (count)
		run->stalls++;
	if (us > run->longest_stall_us)
		run->longest_stall_us = us;
	pthread_mutex_unlock(&run->stall_lock);
}

static void run_summary_collect(struct stress_run *run, struct stress_summary *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (unsigned i = 0; i < run->started; i++) {
		struct stress_thread *t = &run->threads[i];

		pthread_mutex_lock(&t->lock);
		stress_counters_merge(&sum->total, &t->counters);
		pthread_mutex_unlock(&t->lock);
	}
	pthread_mutex_lock(&run->stall_lock);
	sum->stalls = run->stalls;
	sum->longest_stall_ms = run->longest_stall_us / 1000;
	pthread_mutex_unlock(&run->stall_lock);
	sum->duration_s = (double)stress_run_now_us(run) / 1e6;
}

static void run_summary_emit(struct stress_run *run, struct stress_summary *sum)
{
	FILE *f;

	stress_summary_print_json(stdout, sum);
	if (!run->cfg->summary_path)
		return;
	f = fopen(run->cfg->summary_path, "w");
	if (!f) {
		fprintf(stderr, "pfs-stress: cannot write --summary %s: %s\n",
			run->cfg->summary_path, strerror(errno));
		return;
	}
	stress_summary_print_json(f, sum);
	fclose(f);
}

/* One \r line on the terminal: totals and the rates of the last second. */
static void run_progress(struct stress_run *run, uint64_t now_us)
{
	struct stress_summary sum;
	uint64_t errors = 0;
	uint64_t ops, span_us = now_us - run->progress_us;

	run_summary_collect(run, &sum);
	for (int i = 0; i < STRESS_ERRNO_MAX; i++)
		errors += sum.total.write_errors[i] + sum.total.fsync_errors[i];
	errors += sum.total.short_writes + sum.total.open_errors;
	ops = sum.total.writes_ok + sum.total.fsyncs_ok;
	fprintf(stderr,
		"\r%7.1fs %10.1f MiB %8.1f MiB/s %9.0f ops/s  errors %-8" PRIu64
		" stalls %-4" PRIu64,
		(double)now_us / 1e6, (double)sum.total.bytes_acked / 1048576.0,
		(double)(sum.total.bytes_acked - run->progress_bytes) / 1048576.0 /
			((double)span_us / 1e6),
		(double)(ops - run->progress_ops) / ((double)span_us / 1e6), errors, sum.stalls);
	run->progress_us = now_us;
	run->progress_bytes = sum.total.bytes_acked;
	run->progress_ops = ops;
}

/* Counts calls that passed --stall-secs; returns true when, past the
 * duration and its grace, a thread is still stuck in one call for longer
 * than the grace: the mount is hung. */
static bool run_watch(struct stress_run *run, uint64_t now, uint64_t grace_us)
{
	bool hung = false;

	for (unsigned i = 0; i < run->started; i++) {
		struct stress_thread *t = &run->threads[i];
		uint64_t age = 0;
		bool count = false;

		pthread_mutex_lock(&t->lock);
		if (t->call_start_us && now > t->call_start_us)
			age = now - t->call_start_us;
		if (age > run->stall_us && !t->call_stall_counted) {
			t->call_stall_counted = true;
			count = true;
		}
		pthread_mutex_unlock(&t->lock);
		if (age > run->stall_us)
			stress_run_stall_note(run, age, count);
		if (now >= run->end_us + grace_us && age > grace_us)
			hung = true;
	}
	return hung;
}

static bool run_all_finished(struct stress_run *run)
{
	for (unsigned i = 0; i < run->started; i++)
		if (!atomic_load(&run->threads[i].finished))
			return false;
	return true;
}

static int run_setup(struct stress_run *run, const struct stress_run_config *cfg)
{
	struct stat st;
	int ret;

	memset(run, 0, sizeof(*run));
	run->cfg = cfg;
	run->journal.fd = -1;
	if (stat(cfg->dir, &st) < 0) {
		fprintf(stderr, "pfs-stress: --dir %s: %s\n", cfg->dir, strerror(errno));
		return -ENOENT;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "pfs-stress: --dir %s: not a directory\n", cfg->dir);
		return -ENOTDIR;
	}
	ret = stress_journal_open(&run->journal, cfg->journal);
	if (ret) {
		fprintf(stderr, "pfs-stress: cannot create --journal %s: %s\n", cfg->journal,
			strerror(-ret));
		return ret;
	}
	clock_gettime(CLOCK_MONOTONIC, &run->t0);
	run->end_us = (uint64_t)cfg->duration_s * 1000000u;
	run->stall_us = (uint64_t)cfg->stall_secs * 1000000u;
	atomic_init(&run->stop, STRESS_STOP_NONE);
	pthread_mutex_init(&run->stall_lock, NULL);
	run->threads = calloc(cfg->threads, sizeof(*run->threads));
	if (!run->threads)
		return -ENOMEM;
	ret = stress_journal_append(
		&run->journal,
		"S start v=1 seed=%" PRIu64 " threads=%u files=%" PRIu32 " file_size=%" PRIu64
		" block=%" PRIu32 " fsync_every=%u on_error=%s overwrite_pct=%u t_us=%" PRIu64 "\n",
		cfg->geo.seed, cfg->threads, cfg->geo.files, cfg->geo.file_size,
		cfg->geo.block_size, cfg->fsync_every, stress_on_error_name(cfg->on_error),
		cfg->overwrite_pct, stress_run_now_us(run));
	if (ret)
		fprintf(stderr, "pfs-stress: cannot write --journal %s: %s\n", cfg->journal,
			strerror(-ret));
	return ret;
}

static const char *run_exit_reason(struct stress_run *run, int *status)
{
	bool all_dead = true;

	for (unsigned i = 0; i < run->cfg->threads; i++)
		all_dead &= run->threads[i].dead;
	switch (atomic_load(&run->stop)) {
	case STRESS_STOP_ON_ERROR_EXIT:
		*status = STRESS_EXIT_GAVE_UP;
		return "on_error_exit";
	case STRESS_STOP_JOURNAL:
		*status = STRESS_EXIT_FAILURE;
		return "journal_error";
	}
	*status = STRESS_EXIT_OK;
	return all_dead ? "dead_mount" : "duration";
}

int stress_run_execute(const struct stress_run_config *cfg)
{
	struct stress_run run;
	struct stress_summary sum;
	uint64_t grace_us = (uint64_t)cfg->stall_secs * 1000000u + STRESS_GRACE_EXTRA_US;
	bool tty = !cfg->quiet && isatty(STDERR_FILENO);
	uint64_t next_progress = 1000000u;
	int status = STRESS_EXIT_FAILURE;

	if (run_setup(&run, cfg))
		goto out_free;
	for (; run.started < cfg->threads; run.started++) {
		struct stress_thread *t = &run.threads[run.started];

		if (stress_thread_setup(&run, t, run.started) ||
		    pthread_create(&t->tid, NULL, stress_thread_main, t)) {
			fprintf(stderr, "pfs-stress: cannot start writer thread %u\n", run.started);
			atomic_store(&run.stop, STRESS_STOP_SETUP);
			stress_thread_free(t);
			break;
		}
	}
	/* Watch even a partly started run: its threads may hang too. */
	while (!run_all_finished(&run)) {
		uint64_t now = stress_run_now_us(&run);

		if (run_watch(&run, now, grace_us)) {
			/* Never wait forever on a hung mount: report and leave
			 * without joining the stuck threads. */
			run_summary_collect(&run, &sum);
			sum.hung = true;
			sum.exit_reason = "hung";
			if (tty)
				fputc('\n', stderr);
			stress_journal_append(&run.journal, "E end reason=hung t_us=%" PRIu64 "\n",
					      now);
			run_summary_emit(&run, &sum);
			_exit(STRESS_EXIT_HUNG);
		}
		if (tty && now >= next_progress) {
			run_progress(&run, now);
			next_progress += 1000000u;
		}
		usleep(STRESS_WATCH_PERIOD_US);
	}
	for (unsigned i = 0; i < run.started; i++)
		pthread_join(run.threads[i].tid, NULL);
	if (tty)
		fputc('\n', stderr);
	if (run.started < cfg->threads)
		goto out_threads;
	run_summary_collect(&run, &sum);
	sum.exit_reason = run_exit_reason(&run, &status);
	if (stress_journal_append(&run.journal, "E end reason=%s t_us=%" PRIu64 "\n",
				  sum.exit_reason, stress_run_now_us(&run))) {
		sum.exit_reason = "journal_error";
		status = STRESS_EXIT_FAILURE;
	}
	run_summary_emit(&run, &sum);
out_threads:
	for (unsigned i = 0; i < run.started; i++)
		stress_thread_free(&run.threads[i]);
out_free:
	free(run.threads);
	stress_journal_close(&run.journal);
	if (run.threads)
		pthread_mutex_destroy(&run.stall_lock);
	return status;
}
