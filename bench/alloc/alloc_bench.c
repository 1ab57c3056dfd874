/*
 * alloc-bench: what the allocator's fast path costs against plain
 * malloc()+free(), as a ratio, in one run.
 *
 * For 64-byte and 4 KiB blocks, on 1 and 2 threads: nanoseconds per
 * malloc+free pair and per alloc_malloc+alloc_free pair (budget on with a
 * large mem_limit, injection off, default per-thread stock), measured in
 * interleaved repetitions (baseline, ours, baseline, ours, ...) so that
 * drift of a shared, noisy machine hits both alike; each cell reports the
 * median. The stock_bytes = 0 variant (every call charges the shared
 * counter) is printed too, for information.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"

enum variant { BASELINE, OURS, OURS_STOCK0, VARIANT_COUNT };

struct bench_opts {
	unsigned reps;
	unsigned long iters;
	bool json;
};

struct worker {
	pthread_t thread;
	pthread_barrier_t *start;
	struct alloc *a; /* NULL: plain malloc */
	size_t size;
	unsigned long iters;
	uint64_t ns;
};

/* Keep the compiler from pairing malloc with free and deleting both. */
static inline void escape(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void loop_malloc(size_t size, unsigned long iters)
{
	for (unsigned long i = 0; i < iters; i++) {
		void *p = malloc(size);

		escape(p);
		free(p);
	}
}

static void loop_alloc(struct alloc *a, size_t size, unsigned long iters)
{
	for (unsigned long i = 0; i < iters; i++) {
		void *p = alloc_malloc(a, ALLOC_SITE_CACHE_PAGE, size, 0);

		escape(p);
		alloc_free(a, p);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t t0;

	/* Warm up: the thread cache, malloc's per-thread arena. */
	if (w->a)
		loop_alloc(w->a, w->size, 1000);
	else
		loop_malloc(w->size, 1000);
	pthread_barrier_wait(w->start);
	t0 = now_ns();
	if (w->a)
		loop_alloc(w->a, w->size, w->iters);
	else
		loop_malloc(w->size, w->iters);
	w->ns = now_ns() - t0;
	return NULL;
}

/* One measurement: mean ns per pair over the threads. */
static double measure(struct alloc *a, size_t size, unsigned threads, unsigned long iters)
{
	struct worker w[2];
	pthread_barrier_t start;
	double sum = 0;

	pthread_barrier_init(&start, NULL, threads);
	for (unsigned i = 0; i < threads; i++) {
		w[i] = (struct worker){.start = &start, .a = a, .size = size, .iters = iters};
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i])) {
			fprintf(stderr, "alloc-bench: pthread_create failed\n");
			exit(1);
		}
	}
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(w[i].thread, NULL);
		sum += (double)w[i].ns / (double)iters;
	}
	pthread_barrier_destroy(&start);
	return sum / threads;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct cell {
	size_t size;
	unsigned threads;
	double ns[VARIANT_COUNT];    /* median */
	double best[VARIANT_COUNT];  /* minimum */
	double ratio[VARIANT_COUNT]; /* median of back-to-back ratios to BASELINE */
};

/*
 * Interleave the variants (baseline, ours, stock0, baseline, ...): each
 * repetition's ratio compares runs made moments apart, so a burst of load
 * from elsewhere tends to hit both sides of it. The medians of the ratios
 * are what the table reports; the minimums show the uncontended cost.
 */
static void run_cell(struct cell *c, struct alloc *ours, struct alloc *stock0,
		     const struct bench_opts *o)
{
	double *samples[VARIANT_COUNT], *ratios[VARIANT_COUNT];
	struct alloc *which[VARIANT_COUNT] = {NULL, ours, stock0};

	for (unsigned v = 0; v < VARIANT_COUNT; v++) {
		samples[v] = calloc(o->reps, sizeof(double));
		ratios[v] = calloc(o->reps, sizeof(double));
		if (!samples[v] || !ratios[v]) {
			fprintf(stderr, "alloc-bench: out of memory\n");
			exit(1);
		}
	}
	for (unsigned r = 0; r < o->reps; r++) {
		for (unsigned v = 0; v < VARIANT_COUNT; v++)
			samples[v][r] = measure(which[v], c->size, c->threads, o->iters);
		for (unsigned v = 0; v < VARIANT_COUNT; v++)
			ratios[v][r] = samples[v][r] / samples[BASELINE][r];
	}
	for (unsigned v = 0; v < VARIANT_COUNT; v++) {
		c->ratio[v] = median(ratios[v], o->reps);
		c->ns[v] = median(samples[v], o->reps); /* sorts: after the ratios */
		c->best[v] = samples[v][0];
		free(samples[v]);
		free(ratios[v]);
	}
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: alloc-bench [--json] [--reps N] [--iters N]\n"
		"\n"
		"Measures ns per malloc+free pair against alloc_malloc+alloc_free (budget on,\n"
		"injection off, default stock) for 64 B and 4 KiB blocks on 1 and 2 threads,\n"
		"in interleaved repetitions, and prints the medians and their ratio.\n"
		"\n"
		"  --json       print JSON instead of a Markdown table\n"
		"  --reps N     repetitions per cell (default 31)\n"
		"  --iters N    pairs per thread per repetition (default 300000)\n"
		"  --help       this text\n");
}

static int parse_number(const char *flag, const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v == 0 || v > max || *s == '-') {
		fprintf(stderr, "alloc-bench: %s wants a number in 1..%lu, not '%s'\n", flag, max,
			s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"reps", required_argument, NULL, 'r'},
		{"iters", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	unsigned long v;
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			o->json = true;
			break;
		case 'r':
			if (parse_number("--reps", optarg, 1001, &v))
				return 2;
			o->reps = (unsigned)v;
			break;
		case 'i':
			if (parse_number("--iters", optarg, 1000000000ul, &v))
				return 2;
			o->iters = v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			if (optopt)
				fprintf(stderr, "alloc-bench: option '%s' needs a value\n",
					argv[optind - 1]);
			else
				fprintf(stderr, "alloc-bench: unknown option '%s'\n",
					argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "alloc-bench: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	return -1;
}

static void print_markdown(const struct cell *cells, unsigned n, const struct bench_opts *o)
{
	printf("| size | threads | malloc+free ns | alloc ns | ratio | best-case ratio | "
	       "alloc stock=0 ns | stock=0 ratio |\n");
	printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (unsigned i = 0; i < n; i++) {
		const struct cell *c = &cells[i];

		printf("| %zu | %u | %.2f | %.2f | %.2fx | %.2fx | %.2f | %.2fx |\n", c->size,
		       c->threads, c->ns[BASELINE], c->ns[OURS], c->ratio[OURS],
		       c->best[OURS] / c->best[BASELINE], c->ns[OURS_STOCK0],
		       c->ratio[OURS_STOCK0]);
	}
	printf("\nns per pair: median of %u interleaved repetitions of %lu pairs per thread; "
	       "ratio: median of the\nback-to-back ratios; best-case: fastest run against "
	       "fastest run. Target: ratio <= 1.20x\n(budget on, injection off, default "
	       "stock); stock=0 is for information.\n",
	       o->reps, o->iters);
}

static void print_json(const struct cell *cells, unsigned n, const struct bench_opts *o)
{
	printf("{\"reps\":%u,\"iters\":%lu,\"cells\":[", o->reps, o->iters);
	for (unsigned i = 0; i < n; i++) {
		const struct cell *c = &cells[i];

		printf("%s{\"size\":%zu,\"threads\":%u,\"malloc_ns\":%.3f,\"alloc_ns\":%.3f,"
		       "\"ratio\":%.3f,\"best_ratio\":%.3f,\"stock0_ns\":%.3f,"
		       "\"stock0_ratio\":%.3f}",
		       i ? "," : "", c->size, c->threads, c->ns[BASELINE], c->ns[OURS],
		       c->ratio[OURS], c->best[OURS] / c->best[BASELINE], c->ns[OURS_STOCK0],
		       c->ratio[OURS_STOCK0]);
	}
	printf("]}\n");
}

int main(int argc, char **argv)
{
	struct bench_opts o = {.reps = 31, .iters = 300000};
	struct alloc_config cfg = {.mem_limit = 1ull << 40,
				   .stock_bytes = ALLOC_DEFAULT_STOCK_BYTES};
	struct alloc_config cfg0 = {.mem_limit = 1ull << 40, .stock_bytes = 0};
	struct cell cells[] = {{.size = 64, .threads = 1},
			       {.size = 4096, .threads = 1},
			       {.size = 64, .threads = 2},
			       {.size = 4096, .threads = 2}};
	unsigned ncells = sizeof(cells) / sizeof(cells[0]);
	struct alloc *ours, *stock0;
	int rc = parse_args(argc, argv, &o);

	if (rc >= 0)
		return rc;
	ours = alloc_create(&cfg);
	stock0 = alloc_create(&cfg0);
	if (!ours || !stock0) {
		fprintf(stderr, "alloc-bench: alloc_create: %s\n", strerror(errno));
		return 1;
	}
	for (unsigned i = 0; i < ncells; i++)
		run_cell(&cells[i], ours, stock0, &o);
	if (o.json)
		print_json(cells, ncells, &o);
	else
		print_markdown(cells, ncells, &o);
	alloc_destroy(stock0);
	alloc_destroy(ours);
	return 0;
}
