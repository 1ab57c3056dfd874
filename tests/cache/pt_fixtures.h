/*
 * Fixtures shared by cache unit tests (include after pcache_test.h).
 *
 * pt_index_fixture: one file whose page index holds bare page records (no
 * page memory, no allocator charge), for the tests of index.c and dirty.c.
 * pt_model_fixture: one file of 64 KiB pages and the model of its bytes;
 * the teardown fsyncs and checks the backing file against the model, for
 * the tests of lru.c and reclaim.c.
 */
#ifndef PFS_PT_FIXTURES_H
#define PFS_PT_FIXTURES_H

#include "index_i.h"
#include "pcache_test.h"

struct pt_index_fixture {
	struct pt_env env;
	struct pcache_file f;
	struct pcache_page *pages;
};

static inline int pt_index_setup(void **state)
{
	struct pt_index_fixture *fx = calloc(1, sizeof(*fx));
	int err = 0;

	assert_non_null(fx);
	pt_env_setup(&fx->env, 64 * 1024, 0, 0, 60000);
	pt_file_open(&fx->env, &fx->f, "ix");
	fx->f.index = _pcache_index_create(fx->env.pc, 0, NULL, &err);
	assert_non_null(fx->f.index);
	*state = fx;
	return 0;
}

static inline void pt_index_remove_cb(struct pcache_file *f, struct pcache_page *p, void *data)
{
	_pcache_index_remove(f, p);
}

static inline int pt_index_teardown(void **state)
{
	struct pt_index_fixture *fx = *state;

	/* The bare pages are ours, not the allocator's: unlink them first. */
	pthread_mutex_lock(&fx->f.pages_lock);
	_pcache_index_for_each(fx->f.index, pt_index_remove_cb, &fx->f, NULL);
	_pcache_index_destroy(fx->env.pc, fx->f.index);
	fx->f.index = NULL;
	pthread_mutex_unlock(&fx->f.pages_lock);
	free(fx->pages);
	pt_file_close(&fx->f);
	pt_env_teardown(&fx->env);
	free(fx);
	return 0;
}

static inline void pt_index_insert_many(struct pt_index_fixture *fx, uint64_t n, uint64_t stride)
{
	fx->pages = calloc(n, sizeof(struct pcache_page));
	assert_non_null(fx->pages);
	for (uint64_t i = 0; i < n; i++) {
		fx->pages[i].index = i * stride;
		fx->pages[i].file = &fx->f;
		_pcache_index_reserve(&fx->f);
		pthread_mutex_lock(&fx->f.pages_lock);
		_pcache_index_insert(&fx->f, &fx->pages[i]);
		pthread_mutex_unlock(&fx->f.pages_lock);
	}
}

#define PT_MODEL_PAGE (64u * 1024u)

struct pt_model_fixture {
	struct pt_env env;
	struct pcache_file f;
	struct pt_model m;
	int fd;
};

static inline int pt_model_setup(void **state)
{
	struct pt_model_fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	pt_env_setup(&fx->env, PT_MODEL_PAGE, 0, 0, 60000);
	fx->fd = pt_file_open(&fx->env, &fx->f, "data");
	pt_model_init(&fx->m);
	*state = fx;
	return 0;
}

static inline int pt_model_teardown(void **state)
{
	struct pt_model_fixture *fx = *state;

	assert_int_equal(pcache_fsync(&fx->f, false), 0);
	pt_assert_backing(fx->fd, &fx->m);
	pt_file_close(&fx->f);
	pt_env_teardown(&fx->env);
	pt_model_free(&fx->m);
	free(fx);
	return 0;
}

#endif /* PFS_PT_FIXTURES_H */
