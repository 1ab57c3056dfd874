/*
 * alloc/budget.c: mem_limit, the balloon, per-thread stock, waiting for
 * memory.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "alloc_test.h"

static struct alloc *make(uint64_t limit, size_t stock)
{
	struct alloc_config cfg = {.mem_limit = limit, .stock_bytes = stock};
	struct alloc *a = alloc_create(&cfg);

	assert_non_null(a);
	return a;
}

/* Fill the budget with blocks of `size`, then prove the next byte is refused. */
static void refuses_past_limit(size_t stock)
{
	enum { LIMIT = 100000 };
	struct alloc *a = make(LIMIT, stock);
	void *blocks[100];
	void *last, *over;

	for (unsigned i = 0; i < 99; i++) {
		blocks[i] = alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, 1000, 0);
		assert_non_null(blocks[i]);
	}
	/* 99,000 used: 1000 more fit, 1001 do not. */
	errno = 0;
	assert_null(alloc_malloc(a, ALLOC_SITE_INODE, 1001, 0));
	assert_int_equal(errno, ENOMEM);
	last = alloc_malloc(a, ALLOC_SITE_INODE, 1000, 0);
	assert_non_null(last);
	over = alloc_malloc(a, ALLOC_SITE_INODE, 1, 0);
	assert_null(over);
	/* Zero bytes still fit at the limit. */
	over = alloc_malloc(a, ALLOC_SITE_INODE, 0, 0);
	assert_non_null(over);
	alloc_free(a, over);

	assert_int_equal(alloc_live(a), LIMIT);
	assert_int_equal(alloc_charged(a), LIMIT);
	assert_int_equal(test_stat(a, ALLOC_SITE_INODE, ALLOC_STAT_budget_failures), 2);
	assert_int_equal(test_stat(a, ALLOC_SITE_INODE, ALLOC_STAT_enomem), 2);

	/* A free makes exactly its size available again. */
	alloc_free(a, blocks[0]);
	assert_null(alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, 1001, 0));
	blocks[0] = alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, 1000, 0);
	assert_non_null(blocks[0]);
	assert_null(alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, 1, 0));

	alloc_free(a, last);
	for (unsigned i = 0; i < 99; i++)
		alloc_free(a, blocks[i]);
	assert_int_equal(alloc_live(a), 0);
	alloc_destroy(a);
}

static void test_budget_refuses_past_limit_to_the_byte_default_stock(void **state)
{
	refuses_past_limit(ALLOC_DEFAULT_STOCK_BYTES);
}

static void test_budget_refuses_past_limit_to_the_byte_stock0(void **state)
{
	refuses_past_limit(0);
	/* And with stock 0 nothing is ever pre-charged. */
	struct alloc *a = make(1000, 0);
	void *p = alloc_malloc(a, ALLOC_SITE_OTHER, 10, 0);

	assert_int_equal(alloc_charged(a), 10);
	alloc_free(a, p);
	assert_int_equal(alloc_charged(a), 0);
	alloc_destroy(a);
}

static void test_budget_no_limit_never_refuses(void **state)
{
	struct alloc *a = make(0, ALLOC_DEFAULT_STOCK_BYTES);
	void *p = alloc_malloc(a, ALLOC_SITE_OTHER, 1u << 20, 0);

	assert_non_null(p);
	assert_true(alloc_charged(a) >= (1u << 20));
	alloc_free(a, p);
	assert_int_equal(test_stat(a, -1, ALLOC_STAT_budget_failures), 0);
	alloc_destroy(a);
}

static void test_budget_balloon_squeezes_and_releases(void **state)
{
	struct alloc *a = make(100000, ALLOC_DEFAULT_STOCK_BYTES);
	void *held = alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, 50000, 0);
	void *p;

	assert_non_null(held);
	alloc_set_balloon(a, 60000);
	assert_int_equal(alloc_balloon(a), 60000);
	/* 50,000 live > 100,000 - 60,000: nothing fits. */
	assert_null(alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, 1, 0));
	/* A balloon larger than the limit leaves no room at all. */
	alloc_set_balloon(a, 200000);
	assert_null(alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, 1, 0));
	alloc_set_balloon(a, 0);
	p = alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, 50000, 0);
	assert_non_null(p);
	assert_int_equal(test_stat(a, ALLOC_SITE_CACHE_PAGE, ALLOC_STAT_budget_failures), 2);
	alloc_free(a, p);
	alloc_free(a, held);
	alloc_destroy(a);
}

static void test_budget_lowering_limit_below_use_refuses_until_freed(void **state)
{
	struct alloc *a = make(100000, 0);
	void *p = alloc_malloc(a, ALLOC_SITE_OTHER, 80000, 0);

	assert_non_null(p);
	alloc_set_mem_limit(a, 50000);
	assert_int_equal(alloc_mem_limit(a), 50000);
	assert_null(alloc_malloc(a, ALLOC_SITE_OTHER, 1, 0));
	alloc_free(a, p);
	p = alloc_malloc(a, ALLOC_SITE_OTHER, 50000, 0);
	assert_non_null(p);
	alloc_free(a, p);
	alloc_destroy(a);
}

struct waiter {
	struct alloc *a;
	int rc;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	/* Bounded: the test fails rather than hangs if no wake comes. */
	w->rc = alloc_wait_for_memory(w->a, 10ull * 1000000000u);
	return NULL;
}

/*
 * Memory freed into a thread's stock must not be handed out again once the
 * balloon has squeezed the budget below what is in use (a bug the squeeze
 * mount test found: a retrying writer kept re-using its own freed pages).
 */
static void test_budget_balloon_squeeze_stops_reuse_of_freed_stock(void **state)
{
	enum { LIMIT = 1 << 20, BLOCK = 4096 };
	struct alloc *a = make(LIMIT, ALLOC_DEFAULT_STOCK_BYTES);
	void *held = alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, 8 * BLOCK, 0);
	void *p = alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, BLOCK, 0);

	assert_non_null(held);
	assert_non_null(p);
	alloc_free(a, p); /* back into this thread's stock */
	alloc_set_balloon(a, LIMIT);
	for (unsigned i = 0; i < 4; i++)
		assert_null(alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, BLOCK, 0));
	assert_true(alloc_charged(a) <= 8 * BLOCK);

	/* Deflate: room again, and the stock comes back into use. */
	alloc_set_balloon(a, 0);
	p = alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, BLOCK, 0);
	assert_non_null(p);
	alloc_free(a, p);
	alloc_free(a, held);
	assert_int_equal(alloc_live(a), 0);
	alloc_destroy(a);
}

/* The limit lowered below what is free in the stock works the same way. */
static void test_budget_limit_drop_stops_reuse_of_freed_stock(void **state)
{
	enum { BLOCK = 4096 };
	struct alloc *a = make(1 << 20, ALLOC_DEFAULT_STOCK_BYTES);
	void *held = alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, 2 * BLOCK, 0);
	void *p = alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, BLOCK, 0);

	assert_non_null(held);
	assert_non_null(p);
	alloc_free(a, p);
	alloc_set_mem_limit(a, 2 * BLOCK + 100);
	assert_null(alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, BLOCK, 0));
	p = alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, 100, 0); /* exactly what is left */
	assert_non_null(p);
	assert_null(alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, 1, 0));
	assert_int_equal(alloc_charged(a), 2 * BLOCK + 100);
	alloc_free(a, p);
	alloc_free(a, held);
	alloc_destroy(a);
}

static void test_budget_limit_raise_wakes_waiter(void **state)
{
	struct alloc *a = make(1000, ALLOC_DEFAULT_STOCK_BYTES);
	struct waiter w = {.a = a, .rc = 1};
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
	assert_int_equal(test_wait_for_waiter(a), 0);
	alloc_set_mem_limit(a, 2000);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, 0);
	alloc_destroy(a);
}

/*
 * A wake that comes after the waiter is seen registered is never lost.  The
 * test holds wait_lock so that a waiter which registers without it (the old
 * order: register, then read the generation under the lock) is caught in
 * between; a wake delivered there (the generation moved) must still wake it.
 */
static void test_budget_wake_right_after_registering_is_not_lost(void **state)
{
	struct alloc *a = make(1000, ALLOC_DEFAULT_STOCK_BYTES);
	struct waiter w = {.a = a, .rc = 1};
	pthread_t t;
	bool seen = false;

	pthread_mutex_lock(&a->wait_lock);
	assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
	for (unsigned i = 0; i < 300 && !seen; i++) {
		seen = _alloc_waiters(a) > 0;
		if (!seen)
			test_sleep_ms(1);
	}
	if (seen) {
		/* What alloc_set_mem_limit() would do, in the window. */
		a->wake_gen++;
		pthread_cond_broadcast(&a->wait_cond);
		pthread_mutex_unlock(&a->wait_lock);
	} else {
		pthread_mutex_unlock(&a->wait_lock);
		assert_int_equal(test_wait_for_waiter(a), 0);
		alloc_set_mem_limit(a, 2000);
	}
	pthread_join(t, NULL);
	assert_int_equal(w.rc, 0);
	alloc_destroy(a);
}

static void test_budget_balloon_deflate_wakes_waiter(void **state)
{
	struct alloc *a = make(1000, ALLOC_DEFAULT_STOCK_BYTES);
	struct waiter w = {.a = a, .rc = 1};
	pthread_t t;

	alloc_set_balloon(a, 500);
	assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
	assert_int_equal(test_wait_for_waiter(a), 0);
	alloc_set_balloon(a, 0);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, 0);
	alloc_destroy(a);
}

static void free_wakes_waiter(size_t stock)
{
	struct alloc *a = make(1000, stock);
	struct waiter w = {.a = a, .rc = 1};
	void *p = alloc_malloc(a, ALLOC_SITE_OTHER, 10, 0);
	pthread_t t;

	assert_non_null(p);
	assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
	assert_int_equal(test_wait_for_waiter(a), 0);
	alloc_free(a, p);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, 0);
	alloc_destroy(a);
}

static void test_budget_free_wakes_waiter(void **state)
{
	free_wakes_waiter(ALLOC_DEFAULT_STOCK_BYTES);
	free_wakes_waiter(0);
}

static void test_budget_wait_times_out_when_nothing_happens(void **state)
{
	struct alloc *a = make(1000, ALLOC_DEFAULT_STOCK_BYTES);

	assert_int_equal(alloc_wait_for_memory(a, 20u * 1000000u), -ETIMEDOUT);
	assert_int_equal(alloc_wait_for_memory(a, 0), -ETIMEDOUT);
	assert_int_equal(_alloc_waiters(a), 0);
	alloc_destroy(a);
}

struct stocker {
	struct alloc *a;
	pthread_barrier_t *held;   /* the thread holds stock */
	pthread_barrier_t *resume; /* main refused once: call again */
	bool ok;
};

static void *stocker_main(void *arg)
{
	struct stocker *s = arg;
	void *p = alloc_malloc(s->a, ALLOC_SITE_OTHER, 100, 0);
	void *q = alloc_malloc(s->a, ALLOC_SITE_OTHER, 100, 0);

	s->ok = p && q;
	alloc_free(s->a, p);
	if (s->held) {
		pthread_barrier_wait(s->held);
		pthread_barrier_wait(s->resume);
		/* The next call sees the drain epoch and returns its stock. */
		alloc_free(s->a, q);
		pthread_barrier_wait(s->held);
		pthread_barrier_wait(s->resume);
	} else {
		alloc_free(s->a, q);
	}
	return NULL;
}

static void test_budget_thread_exit_returns_its_stock(void **state)
{
	enum { LIMIT = 200000 };
	struct alloc *a = make(LIMIT, ALLOC_DEFAULT_STOCK_BYTES);
	struct stocker s = {.a = a};
	pthread_t t;
	void *p;

	assert_int_equal(pthread_create(&t, NULL, stocker_main, &s), 0);
	pthread_join(t, NULL);
	assert_true(s.ok);
	/* The exited thread's stock is back: the whole limit fits. */
	assert_int_equal(alloc_charged(a), 0);
	p = alloc_malloc(a, ALLOC_SITE_OTHER, LIMIT, 0);
	assert_non_null(p);
	alloc_free(a, p);
	alloc_destroy(a);
}

static void test_budget_refusal_drains_other_threads_stock(void **state)
{
	enum { LIMIT = 200000 };
	struct alloc *a = make(LIMIT, ALLOC_DEFAULT_STOCK_BYTES);
	pthread_barrier_t held, resume;
	struct stocker s = {.a = a, .held = &held, .resume = &resume};
	pthread_t t;
	void *p;

	pthread_barrier_init(&held, NULL, 2);
	pthread_barrier_init(&resume, NULL, 2);
	assert_int_equal(pthread_create(&t, NULL, stocker_main, &s), 0);
	pthread_barrier_wait(&held);
	/* The other thread holds stock: the whole limit does not fit now. */
	assert_true(alloc_charged(a) > 0);
	assert_null(alloc_malloc(a, ALLOC_SITE_OTHER, LIMIT, ALLOC_NORETRY));
	pthread_barrier_wait(&resume);
	pthread_barrier_wait(&held);
	/* After its next call the other thread's stock came home. */
	assert_int_equal(alloc_charged(a), 0);
	p = alloc_malloc(a, ALLOC_SITE_OTHER, LIMIT, 0);
	assert_non_null(p);
	alloc_free(a, p);
	pthread_barrier_wait(&resume);
	pthread_join(t, NULL);
	pthread_barrier_destroy(&held);
	pthread_barrier_destroy(&resume);
	alloc_destroy(a);
}

struct hammer {
	struct alloc *a;
	uint64_t limit;
	unsigned refused;
	bool over;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	void *held[64] = {0};

	for (unsigned i = 0; i < 20000; i++) {
		unsigned slot = i % 64;

		alloc_free(h->a, held[slot]);
		held[slot] = alloc_malloc(h->a, ALLOC_SITE_CACHE_PAGE, 100 + (i * 37) % 4000,
					  ALLOC_NORETRY);
		if (!held[slot])
			h->refused++;
		if (alloc_charged(h->a) > h->limit)
			h->over = true;
	}
	for (unsigned i = 0; i < 64; i++)
		alloc_free(h->a, held[i]);
	return NULL;
}

static void test_budget_two_threads_never_pass_limit(void **state)
{
	enum { LIMIT = 150000 };
	struct alloc *a = make(LIMIT, ALLOC_DEFAULT_STOCK_BYTES);
	struct hammer h[2] = {{.a = a, .limit = LIMIT}, {.a = a, .limit = LIMIT}};
	pthread_t t[2];

	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
	for (unsigned i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_false(h[0].over);
	assert_false(h[1].over);
	/* 64 blocks of ~2 KB each per thread do not fit: refusals happened. */
	assert_true(h[0].refused + h[1].refused > 0);
	assert_int_equal(alloc_live(a), 0);
	assert_true(test_stat(a, -1, ALLOC_STAT_peak) <= LIMIT);
	alloc_destroy(a);
}

/* A thread that used one instance, then waits, then uses the next one. */
struct reuser {
	struct alloc *a;
	pthread_barrier_t *step;
	void *block;
};

static void *reuser_main(void *arg)
{
	struct reuser *r = arg;

	alloc_free(r->a, alloc_malloc(r->a, ALLOC_SITE_INODE, 100, 0));
	pthread_barrier_wait(r->step); /* its thread-local copy names r->a now */
	pthread_barrier_wait(r->step); /* r->a destroyed, r->a is the next one */
	r->block = alloc_malloc(r->a, ALLOC_SITE_INODE, 100, 0);
	pthread_barrier_wait(r->step);
	pthread_barrier_wait(r->step); /* checked */
	alloc_free(r->a, r->block);
	return NULL;
}

static void test_budget_reused_id_never_meets_a_stale_cache(void **state)
{
	struct alloc *first = make(1000000, ALLOC_DEFAULT_STOCK_BYTES);
	uint64_t first_id = first->hot.id;
	pthread_barrier_t step;
	struct reuser r = {.a = first, .step = &step};
	struct alloc *next;
	pthread_t t;

	pthread_barrier_init(&step, NULL, 2);
	assert_int_equal(pthread_create(&t, NULL, reuser_main, &r), 0);
	pthread_barrier_wait(&step);
	alloc_destroy(first);
	next = make(1000000, ALLOC_DEFAULT_STOCK_BYTES);
	assert_int_equal(next->hot.id, first_id); /* the id came back */
	r.a = next;
	pthread_barrier_wait(&step);
	pthread_barrier_wait(&step);
	/* The call was charged and counted here, not in the dead instance's
	 * cache that the thread's copy of the gate once named. */
	assert_non_null(r.block);
	assert_int_equal(test_stat(next, ALLOC_SITE_INODE, ALLOC_STAT_calls), 1);
	assert_int_equal(alloc_live(next), 100);
	assert_true(alloc_charged(next) >= 100);
	pthread_barrier_wait(&step);
	pthread_join(t, NULL);
	assert_int_equal(alloc_live(next), 0);
	assert_int_equal(alloc_charged(next), 0);
	pthread_barrier_destroy(&step);
	alloc_destroy(next);
}

/* A thread's stock share scales with the budget, and a share granted under
 * a bigger budget comes back at the owner's next call after it shrinks. */
static void test_budget_stock_share_follows_the_limit(void **state)
{
	enum { BIG = 64 << 20, SMALL = 1 << 20 };
	struct alloc *a = make(BIG, ALLOC_DEFAULT_STOCK_BYTES);
	void *p;

	alloc_free(a, alloc_malloc(a, ALLOC_SITE_OTHER, 100, 0));
	/* 1/16 of 64 MiB leaves room for a full share: 2 * stock_bytes. */
	assert_int_equal(atomic_load(&a->stock_granted), 2 * ALLOC_DEFAULT_STOCK_BYTES);
	assert_int_equal(alloc_charged(a), ALLOC_DEFAULT_STOCK_BYTES + 100);

	alloc_set_mem_limit(a, SMALL);
	p = alloc_malloc(a, ALLOC_SITE_OTHER, 100, 0);
	assert_non_null(p);
	/* A share is 1/16 of the allowance, which is 1/16 of the limit. */
	assert_int_equal(atomic_load(&a->stock_granted), SMALL / 16 / 16);
	assert_true(alloc_charged(a) - alloc_live(a) <= SMALL / 16 / 16);
	alloc_free(a, p);
	assert_true(alloc_charged(a) <= SMALL / 16 / 16);
	alloc_destroy(a);
}

/*
 * 64 threads against a tight limit. The budget a thread may be refused for
 * must not sit idle in the others' stocks: all stocks together hold at most
 * 1/16 of the limit, whatever the thread count, and when every block is
 * freed the accounting is exact again.
 */
enum {
	CROWD_THREADS = 64,
	CROWD_LIMIT = 3 << 20,
	CROWD_IDLE_MAX = CROWD_LIMIT / 16,
	CROWD_SLOTS = 16,
	CROWD_KEPT = 2, /* blocks each thread keeps live while it idles */
};

struct crowd {
	struct alloc *a;
	pthread_barrier_t *step;
	unsigned seed;
	unsigned refused;
	unsigned stock_over_share; /* its stock seen above its share */
	unsigned failed;	   /* a call that should have succeeded did not */
};

/* This thread's stock must never pass its share of the allowance. */
static void crowd_check_own_stock(struct crowd *c)
{
	struct alloc_tcache *tc = atomic_load_explicit(&_alloc_tls.tc, memory_order_relaxed);

	if (tc && tc->stock > tc->stock_max)
		c->stock_over_share++;
}

static void *crowd_main(void *arg)
{
	struct crowd *c = arg;
	void *held[CROWD_SLOTS] = {0};
	unsigned r = c->seed;

	/* Everyone at once, far past the limit: refusals on every thread. */
	for (unsigned i = 0; i < 3000; i++) {
		unsigned slot;

		r = r * 1103515245u + 12345u;
		slot = (r >> 16) % CROWD_SLOTS;
		alloc_free(c->a, held[slot]);
		held[slot] = alloc_malloc(c->a, ALLOC_SITE_CACHE_PAGE, 64 + (r >> 8) % 16384,
					  ALLOC_NORETRY);
		if (!held[slot])
			c->refused++;
		crowd_check_own_stock(c);
	}
	pthread_barrier_wait(c->step);
	/* Keep a little live, then work as an ordinary thread would (filling
	 * its stock), and go idle with whatever stock it has. */
	for (unsigned i = CROWD_KEPT; i < CROWD_SLOTS; i++) {
		alloc_free(c->a, held[i]);
		held[i] = NULL;
	}
	pthread_barrier_wait(c->step); /* room for everyone now */
	for (unsigned i = 0; i < 200; i++) {
		void *p = alloc_malloc(c->a, ALLOC_SITE_INODE, 64 + i * 13 % 4096, ALLOC_NORETRY);

		if (!p)
			c->failed++;
		alloc_free(c->a, p);
		crowd_check_own_stock(c);
	}
	pthread_barrier_wait(c->step); /* idle: main is refused now */
	pthread_barrier_wait(c->step);
	for (unsigned i = 0; i < CROWD_SLOTS; i++)
		alloc_free(c->a, held[i]);
	crowd_check_own_stock(c);
	pthread_barrier_wait(c->step); /* all freed, still alive */
	pthread_barrier_wait(c->step);
	return NULL;
}

static void test_budget_64_threads_never_leave_more_than_a_sixteenth_idle(void **state)
{
	struct alloc *a = make(CROWD_LIMIT, ALLOC_DEFAULT_STOCK_BYTES);
	struct crowd c[CROWD_THREADS];
	pthread_t t[CROWD_THREADS];
	pthread_barrier_t step;
	void *mine[CROWD_LIMIT / 4096 + 1];
	unsigned refused = 0, n = 0;
	uint64_t live, charged;

	pthread_barrier_init(&step, NULL, CROWD_THREADS + 1);
	for (unsigned i = 0; i < CROWD_THREADS; i++) {
		c[i] = (struct crowd){.a = a, .step = &step, .seed = i + 1};
		assert_int_equal(pthread_create(&t[i], NULL, crowd_main, &c[i]), 0);
	}
	pthread_barrier_wait(&step);
	pthread_barrier_wait(&step);
	pthread_barrier_wait(&step);

	/* All 64 idle, holding stock: another thread is refused only once the
	 * stocks hold no more than 1/16 of the limit. */
	live = alloc_live(a);
	charged = alloc_charged(a);
	assert_true(charged >= live);
	assert_true(charged - live <= CROWD_IDLE_MAX);
	assert_true(atomic_load(&a->stock_granted) <= CROWD_IDLE_MAX);
	assert_true(CROWD_LIMIT - live > CROWD_IDLE_MAX + 4096);
	for (;;) {
		void *p = alloc_malloc(a, ALLOC_SITE_OTHER, 4096, ALLOC_NORETRY);

		if (p) {
			mine[n++] = p;
			continue;
		}
		refused++;
		live = alloc_live(a);
		charged = alloc_charged(a);
		assert_true(charged - live <= CROWD_IDLE_MAX);
		assert_true(charged + 4096 > CROWD_LIMIT);
		/* What is left fits to the byte. */
		if (charged < CROWD_LIMIT) {
			mine[n] = alloc_malloc(a, ALLOC_SITE_OTHER, CROWD_LIMIT - charged,
					       ALLOC_NORETRY);
			assert_non_null(mine[n]);
			n++;
		}
		break;
	}
	assert_int_equal(alloc_charged(a), CROWD_LIMIT);
	assert_null(alloc_malloc(a, ALLOC_SITE_OTHER, 1, ALLOC_NORETRY));
	while (n > 0)
		alloc_free(a, mine[--n]);
	pthread_barrier_wait(&step);

	/* Every block freed, the threads alive: only stock is charged. */
	pthread_barrier_wait(&step);
	assert_int_equal(alloc_live(a), 0);
	assert_true(alloc_charged(a) <= CROWD_IDLE_MAX);
	pthread_barrier_wait(&step);
	for (unsigned i = 0; i < CROWD_THREADS; i++)
		pthread_join(t[i], NULL);
	/* Gone: every stock and every share came back. */
	assert_int_equal(alloc_charged(a), 0);
	assert_int_equal(atomic_load(&a->stock_granted), 0);
	for (unsigned i = 0; i < CROWD_THREADS; i++) {
		refused += c[i].refused;
		assert_int_equal(c[i].stock_over_share, 0);
		assert_int_equal(c[i].failed, 0);
	}
	/* The crowd really pressed on the limit. */
	assert_true(refused > CROWD_THREADS);
	assert_true(test_stat(a, -1, ALLOC_STAT_peak) <= CROWD_LIMIT);
	pthread_barrier_destroy(&step);
	alloc_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_refuses_past_limit_to_the_byte_default_stock),
		cmocka_unit_test(test_budget_refuses_past_limit_to_the_byte_stock0),
		cmocka_unit_test(test_budget_no_limit_never_refuses),
		cmocka_unit_test(test_budget_balloon_squeezes_and_releases),
		cmocka_unit_test(test_budget_lowering_limit_below_use_refuses_until_freed),
		cmocka_unit_test(test_budget_balloon_squeeze_stops_reuse_of_freed_stock),
		cmocka_unit_test(test_budget_limit_drop_stops_reuse_of_freed_stock),
		cmocka_unit_test(test_budget_limit_raise_wakes_waiter),
		cmocka_unit_test(test_budget_wake_right_after_registering_is_not_lost),
		cmocka_unit_test(test_budget_balloon_deflate_wakes_waiter),
		cmocka_unit_test(test_budget_free_wakes_waiter),
		cmocka_unit_test(test_budget_wait_times_out_when_nothing_happens),
		cmocka_unit_test(test_budget_thread_exit_returns_its_stock),
		cmocka_unit_test(test_budget_refusal_drains_other_threads_stock),
		cmocka_unit_test(test_budget_two_threads_never_pass_limit),
		cmocka_unit_test(test_budget_reused_id_never_meets_a_stale_cache),
		cmocka_unit_test(test_budget_stock_share_follows_the_limit),
		cmocka_unit_test(test_budget_64_threads_never_leave_more_than_a_sixteenth_idle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
