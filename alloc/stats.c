/*
 * Statistics: one table (ALLOC_STATS in alloc.h) gives names, kinds and help;
 * the fast-path counters live in the per-thread caches (single writer, two
 * to a word and folded into wide ones every 2^15 calls, see alloc_fast.h;
 * summed here), the slow-path ones are shared atomics in the instance.
 *
 * Resetting cannot write another thread's counters, so it records a baseline
 * that reads subtract.
 *
 * Peaks: the total peak is the high-water mark of `charged` (exact with
 * stock_bytes = 0; otherwise it may include the threads' unused stock, see
 * alloc_charged()). Per-site peaks are exact with stock_bytes = 0 (shared per-site
 * counters); with a stock they are sampled whenever a thread's stock refills
 * and at every statistics read, so a short spike between two samples can be
 * missed (see alloc.h).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc_i.h"

static const char *const stat_names[ALLOC_STAT_COUNT] = {
#define STAT_NAME(name, kind, help) [ALLOC_STAT_##name] = #name,
	ALLOC_STATS(STAT_NAME)
#undef STAT_NAME
};

static const char *const stat_helps[ALLOC_STAT_COUNT] = {
#define STAT_HELP(name, kind, help) [ALLOC_STAT_##name] = help,
	ALLOC_STATS(STAT_HELP)
#undef STAT_HELP
};

enum stat_kind { SUM, MAX, GAUGE };

static const enum stat_kind stat_kinds[ALLOC_STAT_COUNT] = {
#define STAT_KIND(name, kind, help) [ALLOC_STAT_##name] = kind,
	ALLOC_STATS(STAT_KIND)
#undef STAT_KIND
};

const char *alloc_stat_name(enum alloc_stat stat)
{
	if ((unsigned)stat >= ALLOC_STAT_COUNT)
		return "?";
	return stat_names[stat];
}

const char *alloc_stat_help(enum alloc_stat stat)
{
	if ((unsigned)stat >= ALLOC_STAT_COUNT)
		return "?";
	return stat_helps[stat];
}

static uint64_t relaxed(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/*
 * A sequence count without fences (ThreadSanitizer does not model them):
 * the fold's stores are releases after the odd count, the reader's loads
 * acquires before it reads the count again, so a reader that sees any part
 * of a fold also sees the count move and retries.
 */
void _alloc_counters_fold(struct alloc_tcache *tc, unsigned site, unsigned half)
{
	uint64_t seq = relaxed(&tc->fold_seq);
	uint64_t p = relaxed(&tc->packed[site][half]);

	atomic_store_explicit(&tc->fold_seq, seq + 1, memory_order_relaxed);
	_alloc_counter_add(&tc->count[site][2 * half], p >> 48);
	_alloc_counter_add(&tc->count[site][2 * half + 1], p & ALLOC_PACKED_BYTES_MASK);
	atomic_store_explicit(&tc->packed[site][half], 0, memory_order_release);
	atomic_store_explicit(&tc->fold_seq, seq + 2, memory_order_release);
}

/* One thread's counter: what the slow paths and folds put in `count`
 * plus its half of the packed word, read between two folds. */
static uint64_t tc_counter(struct alloc_tcache *tc, unsigned site, enum alloc_tc_counter which)
{
	uint64_t seq, value, p;

	_Static_assert(ALLOC_TC_CALLS == 0 && ALLOC_TC_BYTES_IN == 1 && ALLOC_TC_FREES == 2 &&
			       ALLOC_TC_BYTES_OUT == 3,
		       "packed[site][which / 2] holds count `which & ~1` and bytes `which | 1`");
	do {
		seq = atomic_load_explicit(&tc->fold_seq, memory_order_acquire);
		value = atomic_load_explicit(&tc->count[site][which], memory_order_acquire);
		p = atomic_load_explicit(&tc->packed[site][which / 2], memory_order_acquire);
	} while ((seq & 1) || seq != relaxed(&tc->fold_seq));
	return value + (which % 2 ? p & ALLOC_PACKED_BYTES_MASK : p >> 48);
}

/* Sum one per-thread counter of one site over every thread cache. */
static uint64_t tc_sum(struct alloc *a, unsigned site, enum alloc_tc_counter which)
{
	uint64_t sum = 0;

	for (struct alloc_tcache *tc = atomic_load_explicit(&a->tcaches, memory_order_acquire); tc;
	     tc = tc->next)
		sum += tc_counter(tc, site, which);
	return sum;
}

uint64_t _alloc_site_live(struct alloc *a, unsigned site)
{
	/* Read frees first: a block freed between the two reads then shows
	 * as live rather than making the difference wrap below zero. */
	uint64_t out = tc_sum(a, site, ALLOC_TC_BYTES_OUT);
	uint64_t in = tc_sum(a, site, ALLOC_TC_BYTES_IN);

	return in > out ? in - out : 0;
}

uint64_t alloc_live(const struct alloc *a)
{
	uint64_t live = 0;

	for (unsigned s = 0; s < ALLOC_SITE_COUNT; s++)
		live += _alloc_site_live((struct alloc *)a, s);
	return live;
}

/* Fold the current per-site live into the per-site peaks (stock mode). */
static void stats_sample_peaks(struct alloc *a)
{
	for (unsigned s = 0; s < ALLOC_SITE_COUNT; s++)
		_alloc_max_raise(&a->site_peak[s], _alloc_site_live(a, s));
}

static unsigned stall_bucket(uint64_t ns)
{
	uint64_t ms = ns / 1000000u;
	unsigned b = 0;

	while (ms > 0 && b < ALLOC_STALL_BUCKETS - 1) {
		ms >>= 1;
		b++;
	}
	return b;
}

void _alloc_stats_stall(struct alloc *a, unsigned site, uint64_t stalled_ns)
{
	_alloc_stat_inc(a, site, ALLOC_STAT_stalls);
	atomic_fetch_add_explicit(&a->slow[site][ALLOC_STAT_stall_ns_total], stalled_ns,
				  memory_order_relaxed);
	_alloc_max_raise(&a->slow[site][ALLOC_STAT_stall_ns_max], stalled_ns);
	atomic_fetch_add_explicit(&a->stall_hist[stall_bucket(stalled_ns)], 1,
				  memory_order_relaxed);
}

void alloc_stats_read(struct alloc *a, struct alloc_stats *out)
{
	memset(out, 0, sizeof(*out));
	stats_sample_peaks(a);
	pthread_mutex_lock(&a->lock); /* for the baseline */
	for (unsigned s = 0; s < ALLOC_SITE_COUNT; s++) {
		uint64_t *row = out->site[s];

		for (unsigned i = 0; i < ALLOC_STAT_COUNT; i++)
			row[i] = relaxed(&a->slow[s][i]);
		row[ALLOC_STAT_live] = _alloc_site_live(a, s);
		row[ALLOC_STAT_calls] = tc_sum(a, s, ALLOC_TC_CALLS) - a->base[s][ALLOC_TC_CALLS];
		row[ALLOC_STAT_bytes] =
			tc_sum(a, s, ALLOC_TC_BYTES_IN) - a->base[s][ALLOC_TC_BYTES_IN];
		row[ALLOC_STAT_frees] = tc_sum(a, s, ALLOC_TC_FREES) - a->base[s][ALLOC_TC_FREES];
		row[ALLOC_STAT_peak] = relaxed(&a->site_peak[s]);
		if (row[ALLOC_STAT_peak] < row[ALLOC_STAT_live])
			row[ALLOC_STAT_peak] = row[ALLOC_STAT_live];
	}
	pthread_mutex_unlock(&a->lock);

	for (unsigned i = 0; i < ALLOC_STAT_COUNT; i++) {
		for (unsigned s = 0; s < ALLOC_SITE_COUNT; s++) {
			if (stat_kinds[i] == MAX) {
				if (out->site[s][i] > out->total[i])
					out->total[i] = out->site[s][i];
			} else {
				out->total[i] += out->site[s][i];
			}
		}
	}
	out->charged = atomic_load(&a->charged);
	out->total[ALLOC_STAT_peak] = relaxed(&a->peak);
	if (out->total[ALLOC_STAT_peak] < out->total[ALLOC_STAT_live])
		out->total[ALLOC_STAT_peak] = out->total[ALLOC_STAT_live];
	for (unsigned b = 0; b < ALLOC_STALL_BUCKETS; b++)
		out->stall_hist[b] = relaxed(&a->stall_hist[b]);
	out->mem_limit = alloc_mem_limit(a);
	out->balloon = alloc_balloon(a);
}

void alloc_stats_reset(struct alloc *a)
{
	pthread_mutex_lock(&a->lock);
	for (unsigned s = 0; s < ALLOC_SITE_COUNT; s++) {
		a->base[s][ALLOC_TC_CALLS] = tc_sum(a, s, ALLOC_TC_CALLS);
		a->base[s][ALLOC_TC_BYTES_IN] = tc_sum(a, s, ALLOC_TC_BYTES_IN);
		a->base[s][ALLOC_TC_FREES] = tc_sum(a, s, ALLOC_TC_FREES);
		for (unsigned i = 0; i < ALLOC_STAT_COUNT; i++)
			atomic_store(&a->slow[s][i], 0);
		atomic_store(&a->site_peak[s], a->hot.stock_bytes == 0
						       ? relaxed(&a->site_charged[s])
						       : _alloc_site_live(a, s));
	}
	for (unsigned b = 0; b < ALLOC_STALL_BUCKETS; b++)
		atomic_store(&a->stall_hist[b], 0);
	atomic_store(&a->peak, atomic_load(&a->charged));
	pthread_mutex_unlock(&a->lock);
}

/* snprintf that keeps counting past the end of the buffer. */
struct json_out {
	char *buf;
	size_t len;
	size_t used;
};

static void json_put(struct json_out *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void json_put(struct json_out *j, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(j->used < j->len ? j->buf + j->used : NULL,
		      j->used < j->len ? j->len - j->used : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		j->used += (size_t)n;
}

static void json_counters(struct json_out *j, const uint64_t *row)
{
	json_put(j, "{");
	for (unsigned i = 0; i < ALLOC_STAT_COUNT; i++)
		json_put(j, "%s\"%s\":%" PRIu64, i ? "," : "", stat_names[i], row[i]);
	json_put(j, "}");
}

size_t alloc_stats_json_members(const struct alloc_stats *st, char *buf, size_t len)
{
	struct json_out j = {.buf = buf, .len = len, .used = 0};

	if (len > 0)
		buf[0] = '\0';
	json_put(&j, "\"total\":");
	json_counters(&j, st->total);
	json_put(&j, ",\"sites\":{");
	for (unsigned s = 0; s < ALLOC_SITE_COUNT; s++) {
		json_put(&j, "%s\"%s\":", s ? "," : "", alloc_site_name((enum alloc_site)s));
		json_counters(&j, st->site[s]);
	}
	json_put(&j, "},\"stall_histogram_ms\":{");
	for (unsigned b = 0; b < ALLOC_STALL_BUCKETS; b++) {
		if (b < ALLOC_STALL_BUCKETS - 1)
			json_put(&j, "%s\"<%llu\":%" PRIu64, b ? "," : "", 1ull << b,
				 st->stall_hist[b]);
		else
			json_put(&j, ",\">=%llu\":%" PRIu64, 1ull << (b - 1), st->stall_hist[b]);
	}
	json_put(&j, "}");
	return j.used;
}

size_t alloc_stats_json(struct alloc *a, char *buf, size_t len)
{
	struct json_out j = {.buf = buf, .len = len, .used = 0};
	const struct pfs_policy *policy = alloc_policy(a);
	struct alloc_stats st;
	size_t members;

	if (len > 0)
		buf[0] = '\0';
	alloc_stats_read(a, &st);
	json_put(&j, "{\"mem_limit\":%" PRIu64 ",\"balloon\":%" PRIu64 ",\"charged\":%" PRIu64,
		 st.mem_limit, st.balloon, st.charged);
	/* Policy names are short lowercase words (the loader checks), no escaping. */
	json_put(&j, ",\"policy\":\"%s\",", policy && policy->name ? policy->name : "none");
	members = alloc_stats_json_members(&st, j.used < j.len ? j.buf + j.used : NULL,
					   j.used < j.len ? j.len - j.used : 0);
	j.used += members;
	json_put(&j, "}");
	return j.used;
}
