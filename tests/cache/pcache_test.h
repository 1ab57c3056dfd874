/*
 * Helpers shared by the page cache's unit tests: a scratch directory of
 * real backing files, an allocator + cache per test, an in-memory model of
 * what each file must contain, and bounded polling.
 */
#ifndef PFS_PCACHE_TEST_H
#define PFS_PCACHE_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "pcache.h"

#define PT_MAX_FILE (64u * 1024u * 1024u)

/* ---- reference counting seen through pcache_file_ops ---- */

struct pt_counts {
	long gets, puts;
};
static struct pt_counts pt_refs;
static pthread_mutex_t pt_refs_lock = PTHREAD_MUTEX_INITIALIZER;

static inline void pt_get(struct pcache_file *f)
{
	(void)f;
	pthread_mutex_lock(&pt_refs_lock);
	pt_refs.gets++;
	pthread_mutex_unlock(&pt_refs_lock);
}

static inline void pt_put(struct pcache_file *f)
{
	(void)f;
	pthread_mutex_lock(&pt_refs_lock);
	pt_refs.puts++;
	pthread_mutex_unlock(&pt_refs_lock);
}

static inline long pt_refs_held(void)
{
	long held;

	pthread_mutex_lock(&pt_refs_lock);
	held = pt_refs.gets - pt_refs.puts;
	pthread_mutex_unlock(&pt_refs_lock);
	return held;
}

static const struct pcache_file_ops pt_ops = {.get = pt_get, .put = pt_put};

/* ---- the environment of one test ---- */

struct pt_env {
	char dir[64];
	struct alloc *a;
	struct pcache *pc;
	uint64_t live_baseline; /* allocator live bytes before the cache existed */
	unsigned nfiles;
};

/* The cache made with every field of cc (clean_limit, buffered_only...). */
static inline void pt_env_setup_config(struct pt_env *env, const struct pcache_config *cc,
				       uint64_t mem_limit)
{
	struct alloc_config ac = {.mem_limit = mem_limit, .stock_bytes = 0};
	static const char tmpl[] = "/tmp/pcache-test-XXXXXX";

	memset(env, 0, sizeof(*env));
	memcpy(env->dir, tmpl, sizeof(tmpl));
	assert_non_null(mkdtemp(env->dir));
	env->a = alloc_create(&ac);
	assert_non_null(env->a);
	env->live_baseline = alloc_live(env->a);
	env->pc = pcache_create(env->a, cc, &pt_ops);
	assert_non_null(env->pc);
	pt_refs.gets = pt_refs.puts = 0;
}

static inline void pt_env_setup(struct pt_env *env, size_t page_size, uint64_t mem_limit,
				uint64_t dirty_limit, unsigned writeback_ms)
{
	struct pcache_config cc = {
		.page_size = page_size, .dirty_limit = dirty_limit, .writeback_ms = writeback_ms};

	pt_env_setup_config(env, &cc, mem_limit);
}

/* Open (create) a backing file named name and attach f to it. */
static inline int pt_file_open(struct pt_env *env, struct pcache_file *f, const char *name)
{
	char path[128];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", env->dir, name);
	fd = open(path, O_RDWR | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	pcache_file_init(env->pc, f, fd, st.st_size, ++env->nfiles);
	return fd;
}

static inline void pt_file_close(struct pcache_file *f)
{
	int fd = f->fd;

	pcache_file_destroy(f);
	close(fd);
}

static inline void pt_rm_rf(const char *dir)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Tear down and prove nothing leaked: allocator live bytes back at the
 * baseline, every reference the cache took given back. */
static inline void pt_env_teardown(struct pt_env *env)
{
	pcache_destroy(env->pc);
	assert_int_equal(alloc_live(env->a), env->live_baseline);
	assert_int_equal(pt_refs_held(), 0);
	alloc_destroy(env->a);
	pt_rm_rf(env->dir);
}

/* ---- the model: what a file must contain ---- */

struct pt_model {
	unsigned char *data;
	size_t size;
};

static inline void pt_model_init(struct pt_model *m)
{
	m->data = calloc(1, PT_MAX_FILE);
	assert_non_null(m->data);
	m->size = 0;
}

static inline void pt_model_free(struct pt_model *m)
{
	free(m->data);
}

static inline void pt_model_write(struct pt_model *m, const void *buf, size_t len, off_t off)
{
	assert_true((size_t)off + len <= PT_MAX_FILE);
	memcpy(m->data + off, buf, len);
	if ((size_t)off + len > m->size)
		m->size = (size_t)off + len;
}

static inline void pt_model_truncate(struct pt_model *m, size_t size)
{
	if (size < m->size)
		memset(m->data + size, 0, m->size - size);
	m->size = size;
}

/* Deterministic bytes that say where they belong (catches misplaced data). */
static inline void pt_fill(unsigned char *buf, size_t len, off_t off, unsigned gen)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t x = (uint64_t)(off + (off_t)i) * 2654435761u + gen * 40503u;

		buf[i] = (unsigned char)(x >> 13) | 1; /* never zero: holes stand out */
	}
}

/* Write pt_fill bytes through the cache (all of them, or the test fails)
 * and into the model. */
static inline void pt_write(struct pcache_file *f, struct pt_model *m, size_t len, off_t off,
			    unsigned gen)
{
	unsigned char *buf = malloc(len);

	assert_non_null(buf);
	pt_fill(buf, len, off, gen);
	assert_int_equal(pcache_write(f, buf, len, off), (ssize_t)len);
	pt_model_write(m, buf, len, off);
	free(buf);
}

/* The backing file (read with plain pread) equals the model exactly. */
static inline void pt_assert_backing(int fd, const struct pt_model *m)
{
	struct stat st;
	unsigned char *buf;
	size_t done = 0;

	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal((size_t)st.st_size, m->size);
	buf = malloc(m->size + 1);
	assert_non_null(buf);
	while (done < m->size) {
		ssize_t n = pread(fd, buf + done, m->size - done, (off_t)done);

		assert_true(n > 0);
		done += (size_t)n;
	}
	assert_memory_equal(buf, m->data, m->size);
	free(buf);
}

/* The cache's view (pcache_read) equals the model. */
static inline void pt_assert_cached(struct pcache_file *f, const struct pt_model *m)
{
	unsigned char *buf = malloc(m->size + 4096);
	off_t size;

	assert_non_null(buf);
	pcache_file_attr(f, &size, NULL, NULL);
	assert_int_equal((size_t)size, m->size);
	assert_int_equal(pcache_read(f, buf, m->size + 4096, 0), (ssize_t)m->size);
	assert_memory_equal(buf, m->data, m->size);
	free(buf);
}

/* ---- time ---- */

static inline void pt_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Poll cond(data) every 5 ms for at most limit_ms; true if it held. */
static inline bool pt_wait_until(bool (*cond)(void *), void *data, unsigned limit_ms)
{
	for (unsigned waited = 0; waited <= limit_ms; waited += 5) {
		if (cond(data))
			return true;
		pt_sleep_ms(5);
	}
	return cond(data);
}

static inline uint64_t pt_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

#endif /* PFS_PCACHE_TEST_H */
