/*
 * What the control files show: the stats JSON, option values, the `dirty`
 * listing. Readable files are rendered once at open into a handle, so every
 * read of one open file sees one snapshot. Rendering starts in a stack
 * buffer; the handle comes from the allocator without waiting or asking the
 * policy (ALLOC_NORETRY), with a few static emergency handles behind it, so
 * stats stay readable at the memory limit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon_i.h"
#include "ctl/ctl.h"
#include "transport/transport.h"

/* Emergency handles, for when the allocator says no (stats at the limit). */
#define PFS_CTL_SLOTS	     4
#define PFS_CTL_SLOT_WAIT_MS 200 /* for a slot the kernel has not released yet */
static _Alignas(16) char pfs_ctl_slot_mem[PFS_CTL_SLOTS]
					 [sizeof(struct pfs_ctl_handle) + PFS_CTL_RENDER_MAX];
static atomic_flag pfs_ctl_slot_busy[PFS_CTL_SLOTS];

/* Text rendered into a buffer that starts on the caller's stack and moves
 * to the allocator only if it must grow (a long `dirty` listing). */
struct pfs_buf {
	char *p;
	size_t len, cap;
	bool heap;
	struct alloc *alloc; /* NULL: fixed size, count what did not fit */
	int err;
};

static void pfs_buf_reserve(struct pfs_buf *b, size_t need)
{
	size_t cap;
	char *p;

	if (b->err || !b->alloc || b->len + need + 1 <= b->cap)
		return;
	cap = (b->len + need + 1) * 2;
	/* May run under a cache lock: never wait, never ask the policy. */
	p = alloc_malloc(b->alloc, ALLOC_SITE_OTHER, cap, ALLOC_NOFS | ALLOC_NORETRY);
	if (!p) {
		b->err = -ENOMEM;
		return;
	}
	memcpy(p, b->p, b->len);
	if (b->heap)
		alloc_free(b->alloc, b->p);
	b->p = p;
	b->cap = cap;
	b->heap = true;
}

static void pfs_buf_printf(struct pfs_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void pfs_buf_printf(struct pfs_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	pfs_buf_reserve(b, (size_t)n);
	if (b->err)
		return;
	va_start(ap, fmt);
	vsnprintf(b->len < b->cap ? b->p + b->len : NULL, b->len < b->cap ? b->cap - b->len : 0,
		  fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* "retry" and "retries=8,backoff_ms=2", under ctl_lock by the caller. */
static void pfs_policy_describe(struct pfs *fs, char *name, size_t namelen, char *args,
				size_t argslen)
{
	const struct policy_handle *h = fs->ctl.policy;

	snprintf(name, namelen, "%s", h && h->ops->name ? h->ops->name : "none");
	if (h)
		policy_format_args(h, args, argslen);
	else if (argslen)
		args[0] = '\0';
}

size_t pfs_stats_json(struct pfs *fs, char *out, size_t len)
{
	struct pfs_buf b = {.p = out, .cap = len};
	struct pcache_usage u;
	struct alloc_stats st;
	char name[64], args[512];
	size_t members;
	uint64_t spin_hits, spin_misses;
	struct pfs_handoff_stats handoff;

	pthread_mutex_lock(&fs->ctl.lock);
	pfs_policy_describe(fs, name, sizeof(name), args, sizeof(args));
	pthread_mutex_unlock(&fs->ctl.lock);
	alloc_stats_read(fs->alloc, &st);
	if (fs->cache)
		pcache_usage_read(fs->cache, &u);
	else
		u = fs->final_usage;
	/* Names and arguments are plain words (the loader checks): no escaping. */
	pfs_buf_printf(&b, "{\"policy\":\"%s\",\"policy_args\":\"%s\"", name, args);
	pfs_buf_printf(&b, ",\"shutdown\":%s", atomic_load(&fs->ctl.shutdown) ? "true" : "false");
	pfs_buf_printf(&b,
		       ",\"mem_limit\":%" PRIu64 ",\"balloon\":%" PRIu64 ",\"charged\":%" PRIu64
		       ",\"live\":%" PRIu64 ",\"peak\":%" PRIu64,
		       st.mem_limit, st.balloon, st.charged, st.total[ALLOC_STAT_live],
		       st.total[ALLOC_STAT_peak]);
	pfs_buf_printf(&b,
		       ",\"cached\":%" PRIu64 ",\"dirty\":%" PRIu64 ",\"writeback\":%" PRIu64
		       ",\"writeback_errors\":%" PRIu64 ",\"pages_written\":%" PRIu64
		       ",\"written_direct\":%" PRIu64,
		       u.cached_bytes, u.dirty_bytes, u.writeback_bytes, u.writeback_errors,
		       u.pages_written, u.direct_bytes);
	pfs_buf_printf(&b, ",\"throttled_writes\":%" PRIu64 ",\"throttled_us\":%" PRIu64,
		       u.throttled_writes, u.throttled_us);
	pfs_buf_printf(&b, ",\"fills\":%" PRIu64 ",\"fill_bytes\":%" PRIu64, u.fills, u.fill_bytes);
	/* What the kernel and we agreed in INIT, and what it costs (fuse_io.c). */
	pfs_buf_printf(&b,
		       ",\"kernel_wbcache\":%s,\"killpriv_v2\":%s,\"getxattr_requests\":%" PRIu64
		       ",\"flush_requests\":%" PRIu64,
		       fs->conn.kernel_wbcache ? "true" : "false",
		       __atomic_load_n(&fs->conn.killpriv_v2, __ATOMIC_ACQUIRE) ? "true" : "false",
		       __atomic_load_n(&fs->conn.getxattr_requests, __ATOMIC_RELAXED),
		       __atomic_load_n(&fs->conn.flush_requests, __ATOMIC_RELAXED));
	/* How requests arrive (transport/): io_uring, dev_fuse, or starting. */
	pfs_transport_spin_counts(fs, &spin_hits, &spin_misses);
	pfs_buf_printf(&b,
		       ",\"transport\":\"%s\",\"ring_spin_hits\":%" PRIu64
		       ",\"ring_spin_misses\":%" PRIu64,
		       pfs_transport_name(fs), spin_hits, spin_misses);
	pfs_transport_handoff_stats(fs, &handoff);
	pfs_buf_printf(&b,
		       ",\"ring_handoff\":\"%s\",\"ring_handoffs\":%" PRIu64
		       ",\"ring_handoff_stalls\":%" PRIu64 ",\"ring_idle_samples\":%" PRIu64
		       ",\"ring_idle_cpus\":%" PRIu64 ".%03" PRIu64,
		       handoff.mode, handoff.handoffs, handoff.stalls, handoff.samples,
		       handoff.idle_milli / 1000, handoff.idle_milli % 1000);
	/* The allocator's counters, per site and in total, from the same snapshot. */
	members = alloc_stats_json_members(&st, NULL, 0);
	pfs_buf_printf(&b, ",");
	pfs_buf_reserve(&b, members);
	if (!b.err) {
		alloc_stats_json_members(&st, b.len < b.cap ? b.p + b.len : NULL,
					 b.len < b.cap ? b.cap - b.len : 0);
		b.len += members;
	}
	pfs_buf_printf(&b, "}\n");
	return b.len;
}

/* One option's value as its control file shows it. */
static size_t pfs_ctl_render_option(struct pfs *fs, enum pfs_opt_id id, char *out, size_t len)
{
	char name[64], args[512], value[512];

	pthread_mutex_lock(&fs->ctl.lock);
	if (id == PFS_OPT_policy) {
		pfs_policy_describe(fs, name, sizeof(name), args, sizeof(args));
		pthread_mutex_unlock(&fs->ctl.lock);
		return (size_t)snprintf(out, len, "%s%s%s\n", name, args[0] ? "," : "", args);
	}
	pfs_opt_format_value(id, &fs->ctl.opt, value, sizeof(value));
	pthread_mutex_unlock(&fs->ctl.lock);
	return (size_t)snprintf(out, len, "%s\n", value);
}

struct pfs_dirty_ctx {
	struct pfs *fs;
	struct pfs_buf *b;
};

/*
 * A name must not forge a line of its own: backslash, newline, tab and the
 * other control characters come out C-style: \\ \n \t \xHH.
 * Spaces stay: PATH is last, a reader splits at the first three spaces.
 */
static void pfs_path_escape(const char *in, char *out, size_t len)
{
	size_t used = 0;

	for (const unsigned char *s = (const unsigned char *)in; *s && used + 5 < len; s++) {
		if (*s == '\\')
			used += (size_t)snprintf(out + used, len - used, "\\\\");
		else if (*s == '\n')
			used += (size_t)snprintf(out + used, len - used, "\\n");
		else if (*s == '\t')
			used += (size_t)snprintf(out + used, len - used, "\\t");
		else if (*s < 0x20 || *s == 0x7f)
			used += (size_t)snprintf(out + used, len - used, "\\x%02x", *s);
		else
			out[used++] = (char)*s;
	}
	out[used] = '\0';
}

/* Called under the file's pages_lock. */
static void pfs_ctl_dirty_line(void *data, uint64_t id, off_t off, off_t len)
{
	struct pfs_dirty_ctx *c = data;
	struct pfs_inode *inode = (struct pfs_inode *)(uintptr_t)id;
	char path[4096], escaped[4 * 4096];

	pfs_inode_path(c->fs, inode, path, sizeof(path));
	pfs_path_escape(path, escaped, sizeof(escaped));
	pfs_buf_printf(c->b, "%llu %lld %lld %s\n", (unsigned long long)inode->ino, (long long)off,
		       (long long)len, escaped);
}

/* Render a readable control file into a new handle. */
int pfs_ctl_render(struct pfs *fs, const struct pfs_ctl_file *file, struct pfs_ctl_handle **out)
{
	char stack[PFS_CTL_RENDER_MAX];
	struct pfs_buf b = {.p = stack, .cap = sizeof(stack)};
	struct pfs_ctl_handle *h;
	int r = 0;

	if (file->kind == PFS_CTL_DIRTY) {
		struct pfs_dirty_ctx c = {.fs = fs, .b = &b};
		b.alloc = fs->alloc;
		pcache_for_each_dirty(fs->cache, pfs_ctl_dirty_line, &c);
		r = b.err;
	} else if (file->kind == PFS_CTL_STATS) {
		b.len = pfs_stats_json(fs, stack, sizeof(stack));
	} else if (file->kind == PFS_CTL_FAIL_NTH) {
		b.len = pfs_ctl_fail_nth_show(fs, stack, sizeof(stack));
	} else {
		b.len = pfs_ctl_render_option(fs, file->opt, stack, sizeof(stack));
	}
	if (r)
		goto out;
	if (b.len >= b.cap)
		b.len = b.cap - 1; /* cannot happen for the fixed-size ones */
	h = alloc_malloc(fs->alloc, ALLOC_SITE_OTHER, sizeof(*h) + b.len + 1, ALLOC_NORETRY);
	if (h) {
		h->slot = -1;
	} else if (b.len <= PFS_CTL_RENDER_MAX) {
		/* A slot comes back with the kernel's RELEASE of the file that
		 * holds it, which is asynchronous: a reader that opens the next
		 * control file right after closing one can come first. So wait
		 * for one, a bounded time. */
		for (int ms = 0; !h && ms <= PFS_CTL_SLOT_WAIT_MS; ms++) {
			if (ms)
				usleep(1000);
			for (int i = 0; i < PFS_CTL_SLOTS && !h; i++)
				if (!atomic_flag_test_and_set(&pfs_ctl_slot_busy[i])) {
					h = (struct pfs_ctl_handle *)pfs_ctl_slot_mem[i];
					h->slot = i;
				}
		}
	}
	if (!h) {
		r = -ENOMEM;
		goto out;
	}
	h->len = b.len;
	memcpy(h->data, b.p, b.len);
	*out = h;
out:
	if (b.heap)
		alloc_free(fs->alloc, b.p);
	return r;
}

void pfs_ctl_handle_free(struct pfs *fs, struct pfs_ctl_handle *h)
{
	if (!h)
		return;
	if (h->slot >= 0)
		atomic_flag_clear(&pfs_ctl_slot_busy[h->slot]);
	else
		alloc_free(fs->alloc, h);
}
