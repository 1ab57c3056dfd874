/*
 * A policy's reserve: memory allocated and charged when the policy is
 * installed, handed out when an allocation cannot get memory otherwise
 * (the RESERVED verdict), and given back to the reserve when it is freed,
 * as the kernel's mempool_alloc()/mempool_free() do.
 *
 * Why real memory, not a charge: a reserve that only charged the budget
 * helped against the budget, but not when malloc() itself failed (an
 * address-space limit, a real shortage). Writeback, which waited on such
 * a reserve, then waited for memory the process could not get, and every
 * fsync with it. An element held here needs no malloc() to be handed out.
 *
 * Each element is one malloc() block: the element's own header, then an
 * ordinary block header, then elem_size bytes. A block handed out carries
 * the reserved tag, so that alloc_free() (whose slow branch for tags that
 * are not a live site's ends here) puts it back on the free list instead
 * of freeing it. The budget stays charged for every element, in or out,
 * until the reserve is destroyed and the element is back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_i.h"

struct reserve_elem {
	struct pfs_reserve *pool;  /* immutable */
	struct reserve_elem *next; /* on pool->free: pool->lock */
	struct alloc_header h;	   /* the block as the caller's free sees it */
};
_Static_assert(sizeof(struct reserve_elem) % 16 == 0, "blocks keep malloc's alignment");

/*
 * lock protects free, nfree and dead. Lock order: a reserve's lock is a
 * leaf (nothing is taken under it; the wake-up of waiters comes after).
 */
struct pfs_reserve {
	struct alloc *a;  /* immutable */
	size_t elem_size; /* immutable */
	unsigned count;	  /* immutable: elements made */
	pthread_mutex_t lock;
	struct reserve_elem *free;
	unsigned nfree;
	bool dead;		  /* destroyed: elements are freed as they come back */
	struct pfs_reserve *next; /* a->reserves, under a->lock; freed at destroy */
};

static struct reserve_elem *elem_of(const void *ptr)
{
	return (struct reserve_elem *)((const char *)ptr - offsetof(struct reserve_elem, h) -
				       sizeof(struct alloc_header));
}

/* The budget's share of one element. */
static uint64_t elem_charge(const struct pfs_reserve *r)
{
	return r->elem_size;
}

struct pfs_reserve *alloc_reserve_create(struct alloc *a, size_t elem_size, unsigned count)
{
	struct pfs_reserve *r;

	if (elem_size == 0 || count == 0 || elem_size > (1ull << 30) || count > (1u << 20)) {
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->a = a;
	r->elem_size = elem_size;
	pthread_mutex_init(&r->lock, NULL);
	if (_alloc_reserve_charge(a, (uint64_t)elem_size * count)) {
		pthread_mutex_destroy(&r->lock);
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	for (r->count = 0; r->count < count; r->count++) {
		struct reserve_elem *e = malloc(sizeof(*e) + elem_size);

		if (!e)
			break;
		e->pool = r;
		e->h.size = 0;
		e->h.tag = 0;
		e->next = r->free;
		r->free = e;
		r->nfree++;
	}
	if (r->count < count) {
		/* All or nothing: a reserve short of elements promises what it
		 * cannot keep. */
		while (r->free) {
			struct reserve_elem *e = r->free;

			r->free = e->next;
			free(e);
		}
		_alloc_reserve_uncharge(a, (uint64_t)elem_size * count);
		pthread_mutex_destroy(&r->lock);
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_lock(&a->lock);
	r->next = a->reserves;
	a->reserves = r;
	pthread_mutex_unlock(&a->lock);
	return r;
}

void alloc_reserve_destroy(struct alloc *a, struct pfs_reserve *r)
{
	struct reserve_elem *list;
	unsigned n = 0;

	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->dead = true;
	list = r->free;
	r->free = NULL;
	r->nfree = 0;
	pthread_mutex_unlock(&r->lock);
	while (list) {
		struct reserve_elem *e = list;

		list = e->next;
		free(e);
		n++;
	}
	/* Elements still out are freed, and uncharged, as they come back. */
	_alloc_reserve_uncharge(a, elem_charge(r) * n);
}

size_t alloc_reserve_elem_size(const struct pfs_reserve *r)
{
	return r ? r->elem_size : 0;
}

void *_alloc_reserve_take(struct alloc *a, struct alloc_tcache *tc, struct pfs_reserve *r,
			  unsigned site, size_t size, unsigned flags, enum alloc_reserve_miss *miss)
{
	struct reserve_elem *e;

	if (!r || r->a != a || size > r->elem_size) {
		*miss = ALLOC_RESERVE_NEVER;
		return NULL;
	}
	pthread_mutex_lock(&r->lock);
	if (r->dead) {
		pthread_mutex_unlock(&r->lock);
		*miss = ALLOC_RESERVE_NEVER;
		return NULL;
	}
	e = r->free;
	if (e) {
		r->free = e->next;
		r->nfree--;
	}
	pthread_mutex_unlock(&r->lock);
	if (!e) {
		*miss = ALLOC_RESERVE_EMPTY;
		return NULL;
	}
	e->next = NULL;
	if (flags & ALLOC_ZERO)
		memset(&e->h + 1, 0, size);
	e->h.size = size;
	e->h.tag = ALLOC_TAG_RESERVED(site);
	if (tc)
		_alloc_counter_add(&tc->count[site][ALLOC_TC_BYTES_IN], size);
	else
		atomic_fetch_add(&a->orphan.count[site][ALLOC_TC_BYTES_IN], size);
	return &e->h + 1;
}

bool _alloc_reserve_owns(const void *ptr)
{
	return ALLOC_TAG_RESERVED_CHECK(((const struct alloc_header *)ptr - 1)->tag) <
	       ALLOC_SITE_COUNT;
}

void _alloc_reserve_put(struct alloc *a, void *ptr)
{
	struct reserve_elem *e = elem_of(ptr);
	struct pfs_reserve *r = e->pool;
	unsigned site = (unsigned)ALLOC_TAG_RESERVED_CHECK(e->h.tag);
	uint64_t size = e->h.size;
	struct alloc_tcache *tc = _alloc_tcache(a);
	bool dead;

	e->h.tag = 0;
	if (tc) {
		_alloc_counter_add(&tc->count[site][ALLOC_TC_FREES], 1);
		_alloc_counter_add(&tc->count[site][ALLOC_TC_BYTES_OUT], size);
	} else {
		atomic_fetch_add(&a->orphan.count[site][ALLOC_TC_FREES], 1);
		atomic_fetch_add(&a->orphan.count[site][ALLOC_TC_BYTES_OUT], size);
	}
	pthread_mutex_lock(&r->lock);
	dead = r->dead;
	if (!dead) {
		e->next = r->free;
		r->free = e;
		r->nfree++;
	}
	pthread_mutex_unlock(&r->lock);
	if (dead) {
		free(e);
		_alloc_reserve_uncharge(a, elem_charge(r));
		return;
	}
	/* Someone may sleep for this element (mempool_free's wake_up). A
	 * waiter registers, then looks at the free list (see
	 * _alloc_reserve_has_free); the fence orders our push before our
	 * look at the waiter count, so one of the two sees the other. */
	atomic_thread_fence(memory_order_seq_cst);
	if (_alloc_gate(a) & ALLOC_GATE_WAITERS_MASK)
		_alloc_budget_wake(a);
}

bool _alloc_reserve_has_free(struct pfs_reserve *r)
{
	bool any;

	pthread_mutex_lock(&r->lock);
	any = r->free != NULL;
	pthread_mutex_unlock(&r->lock);
	return any;
}

void _alloc_reserves_free(struct alloc *a)
{
	struct pfs_reserve *r = a->reserves, *next;

	a->reserves = NULL;
	for (; r; r = next) {
		next = r->next;
		while (r->free) {
			struct reserve_elem *e = r->free;

			r->free = e->next;
			free(e);
		}
		pthread_mutex_destroy(&r->lock);
		free(r);
	}
}
