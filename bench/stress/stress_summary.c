/* Latency histograms, errno names and the JSON summary of a run. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "stress_i.h"

/* Log-linear buckets: exact below 64 us, then 32 sub-buckets per power of
 * two (about 3% resolution), up to 2^31 us; larger values share the last. */
static unsigned latency_bucket(uint64_t us)
{
	unsigned e;
	unsigned idx;

	if (us < 64)
		return (unsigned)us;
	if (us >= (UINT64_C(1) << 31))
		us = (UINT64_C(1) << 31) - 1;
	e = 63u - (unsigned)__builtin_clzll(us);
	idx = 64u + (e - 6u) * 32u + (unsigned)((us >> (e - 5u)) & 31u);
	return idx < STRESS_LAT_BUCKETS ? idx : STRESS_LAT_BUCKETS - 1;
}

/* The largest value that falls in bucket idx. */
static uint64_t latency_bucket_top(unsigned idx)
{
	unsigned e, sub;

	if (idx < 64)
		return idx;
	e = (idx - 64u) / 32u + 6u;
	sub = (idx - 64u) % 32u;
	return ((UINT64_C(32) + sub) << (e - 5u)) + (UINT64_C(1) << (e - 5u)) - 1;
}

void stress_latency_add(struct stress_latency *lat, uint64_t us)
{
	lat->bucket[latency_bucket(us)]++;
	lat->count++;
	if (us > lat->max_us)
		lat->max_us = us;
}

void stress_latency_merge(struct stress_latency *into, const struct stress_latency *from)
{
	for (unsigned i = 0; i < STRESS_LAT_BUCKETS; i++)
		into->bucket[i] += from->bucket[i];
	into->count += from->count;
	if (from->max_us > into->max_us)
		into->max_us = from->max_us;
}

uint64_t stress_latency_percentile(const struct stress_latency *lat, double pct)
{
	uint64_t rank, seen = 0;

	if (!lat->count)
		return 0;
	rank = (uint64_t)(pct / 100.0 * (double)lat->count + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank >= lat->count)
		return lat->max_us; /* exact, even past the last bucket */
	for (unsigned i = 0; i < STRESS_LAT_BUCKETS; i++) {
		seen += lat->bucket[i];
		if (seen >= rank) {
			uint64_t top = latency_bucket_top(i);

			return top < lat->max_us ? top : lat->max_us;
		}
	}
	return lat->max_us;
}

const char *stress_errno_name(int err, char *buf, size_t len)
{
	const char *name = err > 0 ? strerrorname_np(err) : NULL;

	if (name)
		return name;
	snprintf(buf, len, "E%d", err);
	return buf;
}

void stress_counters_merge(struct stress_counters *into, const struct stress_counters *from)
{
	into->writes_ok += from->writes_ok;
	into->short_writes += from->short_writes;
	into->fsyncs_ok += from->fsyncs_ok;
	into->retries += from->retries;
	into->bytes_acked += from->bytes_acked;
	into->bytes_refused += from->bytes_refused;
	into->open_errors += from->open_errors;
	into->enotconn += from->enotconn;
	for (unsigned i = 0; i < STRESS_ERRNO_MAX; i++) {
		into->write_errors[i] += from->write_errors[i];
		into->fsync_errors[i] += from->fsync_errors[i];
	}
	stress_latency_merge(&into->write_lat, &from->write_lat);
	stress_latency_merge(&into->fsync_lat, &from->fsync_lat);
}

static void print_errno_map(FILE *out, const char *key, const uint64_t *counts)
{
	const char *sep = "";
	char buf[16];

	fprintf(out, "  \"%s\": {", key);
	for (int i = 0; i < STRESS_ERRNO_MAX; i++) {
		if (!counts[i])
			continue;
		fprintf(out, "%s\"%s\": %" PRIu64, sep, stress_errno_name(i, buf, sizeof(buf)),
			counts[i]);
		sep = ", ";
	}
	fprintf(out, "},\n");
}

static void print_latency(FILE *out, const char *key, const struct stress_latency *lat)
{
	fprintf(out,
		"  \"%s\": {\"count\": %" PRIu64 ", \"p50\": %" PRIu64 ", \"p99\": %" PRIu64
		", \"max\": %" PRIu64 "},\n",
		key, lat->count, stress_latency_percentile(lat, 50.0),
		stress_latency_percentile(lat, 99.0), lat->max_us);
}

static uint64_t errno_total(const uint64_t *counts)
{
	uint64_t n = 0;

	for (int i = 0; i < STRESS_ERRNO_MAX; i++)
		n += counts[i];
	return n;
}

void stress_summary_print_json(FILE *out, const struct stress_summary *sum)
{
	const struct stress_counters *c = &sum->total;
	double secs = sum->duration_s > 0 ? sum->duration_s : 1e-9;

	fprintf(out, "{\n");
	fprintf(out, "  \"writes_ok\": %" PRIu64 ",\n", c->writes_ok);
	fprintf(out, "  \"write_errors_total\": %" PRIu64 ",\n", errno_total(c->write_errors));
	print_errno_map(out, "write_errors", c->write_errors);
	fprintf(out, "  \"short_writes\": %" PRIu64 ",\n", c->short_writes);
	fprintf(out, "  \"retries\": %" PRIu64 ",\n", c->retries);
	fprintf(out, "  \"fsyncs_ok\": %" PRIu64 ",\n", c->fsyncs_ok);
	fprintf(out, "  \"fsync_errors_total\": %" PRIu64 ",\n", errno_total(c->fsync_errors));
	print_errno_map(out, "fsync_errors", c->fsync_errors);
	fprintf(out, "  \"open_errors\": %" PRIu64 ",\n", c->open_errors);
	fprintf(out, "  \"bytes_acked\": %" PRIu64 ",\n", c->bytes_acked);
	fprintf(out, "  \"bytes_refused\": %" PRIu64 ",\n", c->bytes_refused);
	fprintf(out, "  \"duration_s\": %.3f,\n", sum->duration_s);
	fprintf(out, "  \"mb_per_s\": %.3f,\n", (double)c->bytes_acked / 1048576.0 / secs);
	print_latency(out, "write_latency_us", &c->write_lat);
	print_latency(out, "fsync_latency_us", &c->fsync_lat);
	fprintf(out, "  \"stalls\": %" PRIu64 ",\n", sum->stalls);
	fprintf(out, "  \"longest_stall_ms\": %" PRIu64 ",\n", sum->longest_stall_ms);
	fprintf(out, "  \"hung\": %s,\n", sum->hung ? "true" : "false");
	fprintf(out, "  \"enotconn\": %" PRIu64 ",\n", c->enotconn);
	fprintf(out, "  \"exit_reason\": \"%s\"\n", sum->exit_reason);
	fprintf(out, "}\n");
	fflush(out);
}
