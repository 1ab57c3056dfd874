/*
 * Mount options: one table drives -o parsing, --help and the control files.
 *
 * Parsing runs before the allocator exists, so the strings it keeps come
 * from malloc and are freed by pfs_cmdline_free().
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "daemon_i.h"
#include "transport/transport.h"
#include "pfs_config.h"

#define KiB 1024LL
#define MiB (1024LL * 1024)

/* WORD options' words, in their enum's order (the value is the index). */
static const char *const pfs_ctldir_words[] = {"hidden", "visible", "none", NULL};
static const char *const pfs_transport_words[] = {"auto", "io_uring", "dev_fuse", NULL};
static const char *const pfs_handoff_words[] = {"auto", "on", "off", NULL};

static const struct pfs_opt_desc pfs_opt_table[PFS_OPT_COUNT] = {
	[PFS_OPT_policy] = {"policy", PFS_OPT_POLICY, "retry", 0, 0,
			    "what an allocation failure does: a policy below, or a plugin's path "
			    "(its arguments follow as further options)",
			    PFS_CTL_RW},
	[PFS_OPT_mem_limit] = {"mem_limit", PFS_OPT_SIZE, "0", 0, LLONG_MAX,
			       "budget for everything the daemon allocates (0 = none)", PFS_CTL_RW},
	[PFS_OPT_balloon] = {"balloon", PFS_OPT_SIZE, "0", 0, LLONG_MAX,
			     "memory held by a simulated competitor (squeezes the budget)",
			     PFS_CTL_RW},
	[PFS_OPT_fail_probability] = {"fail_probability", PFS_OPT_UINT, "0", 0, 100,
				      "percent (0..100) of eligible allocations that fail",
				      PFS_CTL_RW},
	[PFS_OPT_fail_interval] = {"fail_interval", PFS_OPT_UINT, "1", 1, LLONG_MAX,
				   "only every Nth eligible allocation may fail", PFS_CTL_RW},
	[PFS_OPT_fail_times] = {"fail_times", PFS_OPT_INT, "-1", -1, LLONG_MAX,
				"at most N injected failures (-1 = no limit)", PFS_CTL_RW},
	[PFS_OPT_fail_space] = {"fail_space", PFS_OPT_SIZE, "0", 0, LLONG_MAX,
				"bytes allocated before injection starts", PFS_CTL_RW},
	[PFS_OPT_fail_sites] = {"fail_sites", PFS_OPT_SITES, "all", 0, 0,
				"sites that may fail, joined with + or : (cache_page+writeback), "
				"all or none",
				PFS_CTL_RW},
	[PFS_OPT_fail_seed] = {"fail_seed", PFS_OPT_UINT, "1", 0, LLONG_MAX,
			       "seed for the injection sequence", PFS_CTL_RW},
	[PFS_OPT_fail_verbose] = {"fail_verbose", PFS_OPT_BOOL, "0", 0, 1,
				  "log each injected failure (0/1)", PFS_CTL_RW},
	[PFS_OPT_page_size] = {"page_size", PFS_OPT_SIZE, "64K", 4 * KiB, MiB,
			       "cache page size, a power of two from 4K to 1M", PFS_CTL_NONE},
	[PFS_OPT_dirty_limit] =
		{"dirty_limit", PFS_OPT_SIZE, "0", 0, LLONG_MAX,
		 "dirty bytes past which writeback starts at once (and goes on down "
		 "to half of them) and writers wait for it (0 = auto: mem_limit/2, "
		 "or 64M without a limit)",
		 PFS_CTL_RW},
	[PFS_OPT_clean_limit] = {"clean_limit", PFS_OPT_SIZE, "0", 0, LLONG_MAX,
				 "clean (written back) bytes kept cached; older ones are dropped "
				 "(0 = auto: 64M without a mem_limit, else the budget decides)",
				 PFS_CTL_RW},
	[PFS_OPT_writeback_ms] = {"writeback_ms", PFS_OPT_UINT, "5000", 1, UINT_MAX,
				  "dirty pages older than this many milliseconds are written back",
				  PFS_CTL_RW},
	[PFS_OPT_direct_writeback] =
		{"direct_writeback", PFS_OPT_BOOL, "1", 0, 1,
		 "write long runs of pages back with O_DIRECT where the backing "
		 "fs allows it (0/1; 0: always through its page cache)",
		 PFS_CTL_NONE},
	[PFS_OPT_ctldir] = {"ctldir", PFS_OPT_WORD, "hidden", 0, 0,
			    "the .pressurefs control directory: hidden (reachable by name), "
			    "visible, or none",
			    PFS_CTL_NONE, pfs_ctldir_words},
	[PFS_OPT_stats_file] = {"stats_file", PFS_OPT_STRING, "", 0, 0,
				"write the final statistics JSON to this file at unmount",
				PFS_CTL_NONE},
	[PFS_OPT_writeback_cache] = {"writeback_cache", PFS_OPT_BOOL, "0", 0, 1,
				     "use the kernel's own FUSE write-back cache (0/1; off: every "
				     "write() reaches the daemon)",
				     PFS_CTL_NONE},
	[PFS_OPT_killpriv] = {"killpriv", PFS_OPT_BOOL, "1", 0, 1,
			      "clear setuid/setgid/capabilities on write in the daemon "
			      "(FUSE_HANDLE_KILLPRIV_V2; 0: the kernel asks for "
			      "security.capability before every write())",
			      PFS_CTL_NONE},
	[PFS_OPT_attr_timeout] =
		{"attr_timeout", PFS_OPT_UINT, "1", 0, 3600,
		 "seconds the kernel keeps a file's attributes (size, times, mode) "
		 "before it asks again (0: every stat asks the daemon)",
		 PFS_CTL_NONE},
	[PFS_OPT_transport] = {"transport", PFS_OPT_WORD, "auto", 0, 0,
			       "how requests arrive: io_uring (FUSE over io_uring), dev_fuse "
			       "(read/write on /dev/fuse) or auto (io_uring when the kernel offers "
			       "it). Ring memory, charged to mem_limit at mount: CPUs x depth x "
			       "(max_write + 4K), depth 2..8 chosen to fit min(8M, mem_limit/8) "
			       "(max_write halved from 128K down to 32K first if depth 2 does not "
			       "fit) and, with the ring workers' 128K stacks, mem_limit/4 beyond "
			       "depth 2",
			       PFS_CTL_NONE, pfs_transport_words},
	[PFS_OPT_ring_spin_us] =
		{"ring_spin_us", PFS_OPT_UINT, "0", 0, 1000,
		 "io_uring: after an answer, a ring worker watches its entry this many "
		 "microseconds for the next request before it sleeps (0: it sleeps at once). With "
		 "every CPU kept busy, the scheduler leaves a lone synchronous writer on its own "
		 "CPU, where its next request finds a worker that needs no wake-up. The cost is "
		 "CPU time: every answer not followed by a request within the watch burns all of "
		 "it (stats: ring_spin_hits, ring_spin_misses)",
		 PFS_CTL_NONE},
	[PFS_OPT_ring_handoff] =
		{"ring_handoff", PFS_OPT_WORD, "auto", 0, 0,
		 "io_uring: ring workers answer at idle priority (SCHED_IDLE), so the caller a "
		 "worker wakes stays on its CPU instead of being moved to an idle one, where its "
		 "next request would wait for a sleeping worker. A worker stays at idle priority "
		 "while requests come; the main thread raises one that waits behind another "
		 "thread (stats: ring_handoffs, ring_handoff_stalls). on, off, or auto: while the "
		 "CPUs were at least half a CPU idle over the last 50 ms (/proc/stat). Needs "
		 "CAP_SYS_NICE or RLIMIT_NICE >= 20 to come back from idle priority: auto is off "
		 "without them, on refuses to mount. Not with ring_spin_us",
		 PFS_CTL_NONE, pfs_handoff_words},
	[PFS_OPT_dirty_throttle] = {"dirty_throttle", PFS_OPT_BOOL, "1", 0, 1,
				    "writers wait while dirty data is past dirty_limit until "
				    "writeback brings it under (0/1; 0: they run ahead, for "
				    "comparison)",
				    PFS_CTL_RW},
	[PFS_OPT_writeback_delay_us] = {"writeback_delay_us", PFS_OPT_UINT, "0", 0, 1000000,
					"for testing only: sleep this many microseconds per page "
					"written back, to stand for a slow backing store",
					PFS_CTL_RW},
};

/* Options libfuse handles; passed through unchanged. */
static const char *const pfs_fuse_passthrough[] = {
	"allow_other",	"allow_root", "default_permissions",
	"auto_unmount", "ro",	      "rw",
	"suid",		"nosuid",     "dev",
	"nodev",	"exec",	      "noexec",
	"async",	"sync",	      "dirsync",
	"noatime",	"nodiratime", NULL,
};
static const char *const pfs_fuse_passthrough_value[] = {"fsname", "subtype", NULL};

/* Generic mount(8)/fstab options that mean nothing to a FUSE filesystem. */
static const char *const pfs_mount_ignored[] = {
	"defaults", "atime",	"relatime",   "norelatime", "strictatime", "nostrictatime",
	"diratime", "lazytime", "nolazytime", "_netdev",    "nofail",	   "auto",
	"noauto",   "user",	"users",      "nouser",	    "owner",	   "group",
	"loud",	    "silent",	NULL,
};

const struct pfs_opt_desc *pfs_opt_desc(enum pfs_opt_id id)
{
	return &pfs_opt_table[id];
}

int pfs_opt_find(const char *name)
{
	for (int i = 0; i < PFS_OPT_COUNT; i++)
		if (strcmp(pfs_opt_table[i].name, name) == 0)
			return i;
	return -1;
}

static bool pfs_name_in(const char *name, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(*list, name) == 0)
			return true;
	return false;
}

void pfs_verr(char *err, size_t errlen, const char *fmt, va_list ap)
{
	if (!err || !errlen)
		return;
	vsnprintf(err, errlen, fmt, ap);
	/* One line, whatever the user typed: control bytes become '?'. */
	for (char *c = err; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
}

void pfs_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pfs_verr(err, errlen, fmt, ap);
	va_end(ap);
}

/* Decimal digits only, no sign, no overflow. */
static int pfs_parse_ull(const char *s, unsigned long long *out, const char **end)
{
	unsigned long long v = 0;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	while (isdigit((unsigned char)*s)) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
		s++;
	}
	*out = v;
	*end = s;
	return 0;
}

static int pfs_parse_size(const char *s, long long *out)
{
	unsigned long long v, mult = 1;
	const char *end;

	if (pfs_parse_ull(s, &v, &end))
		return -EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mult = 1ULL << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mult = 1ULL << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mult = 1ULL << 30;
		end++;
		break;
	default:
		return -EINVAL;
	}
	if (*end)
		return -EINVAL;
	if (v > (unsigned long long)LLONG_MAX / mult)
		return -ERANGE;
	*out = (long long)(v * mult);
	return 0;
}

static int pfs_parse_int(const char *s, long long *out)
{
	unsigned long long v;
	const char *end;
	bool neg = false;

	if (*s == '-') {
		neg = true;
		s++;
	}
	if (pfs_parse_ull(s, &v, &end) || *end)
		return -EINVAL;
	if (v > (unsigned long long)LLONG_MAX)
		return -ERANGE;
	*out = neg ? -(long long)v : (long long)v;
	return 0;
}

/* "cache_page+writeback" or "a:b" or "a,b" -> mask; "all", "none". */
static int pfs_parse_sites(const char *text, long long *out, char *bad, size_t badlen)
{
	char list[512];
	unsigned mask = 0;
	size_t n = strlen(text);

	if (strcmp(text, "none") == 0) {
		*out = 0;
		return 0;
	}
	if (n >= sizeof(list))
		return -EINVAL;
	for (size_t i = 0; i <= n; i++)
		list[i] = (text[i] == '+' || text[i] == ':') ? ',' : text[i];
	if (alloc_site_mask_parse(list, &mask, bad, badlen))
		return -EINVAL;
	*out = mask;
	return 0;
}

static void pfs_sites_expected(char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int s = 0; s < ALLOC_SITE_COUNT && used < len; s++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", s ? ", " : "",
					 alloc_site_name((enum alloc_site)s));
}

int pfs_opt_parse_value(enum pfs_opt_id id, const char *text, long long *num, char **str, char *err,
			size_t errlen)
{
	const struct pfs_opt_desc *d = &pfs_opt_table[id];
	long long v = 0;
	int r;

	switch (d->type) {
	case PFS_OPT_SIZE:
		r = *text ? pfs_parse_size(text, &v) : -EINVAL;
		if (r == 0 && id == PFS_OPT_page_size &&
		    (v < d->min || v > d->max || (v & (v - 1)) != 0)) {
			pfs_err(err, errlen, "%s='%s': expected a power of two from 4K to 1M",
				d->name, text);
			return -EINVAL;
		}
		if (r) {
			pfs_err(err, errlen,
				"%s='%s': expected a size such as 65536, 64K, 64M or 1G", d->name,
				text);
			return -EINVAL;
		}
		break;
	case PFS_OPT_UINT:
	case PFS_OPT_INT:
	case PFS_OPT_BOOL:
		r = *text ? pfs_parse_int(text, &v) : -EINVAL;
		if (r || v < d->min || v > d->max) {
			if (d->type == PFS_OPT_BOOL)
				pfs_err(err, errlen, "%s='%s': expected 0 or 1", d->name, text);
			else
				pfs_err(err, errlen, "%s='%s': expected an integer in %lld..%lld",
					d->name, text, d->min, d->max);
			return -EINVAL;
		}
		break;
	case PFS_OPT_WORD: {
		char expected[128] = "";
		size_t used = 0;

		for (v = 0; d->words[v]; v++)
			if (strcmp(text, d->words[v]) == 0)
				break;
		if (d->words[v])
			break;
		/* "a, b or c" */
		for (int i = 0; d->words[i] && used < sizeof(expected); i++)
			used += (size_t)snprintf(expected + used, sizeof(expected) - used, "%s%s",
						 i == 0		   ? ""
						 : d->words[i + 1] ? ", "
								   : " or ",
						 d->words[i]);
		pfs_err(err, errlen, "%s='%s': expected %s", d->name, text, expected);
		return -EINVAL;
	}
	case PFS_OPT_SITES: {
		char bad[64] = "", expected[256];

		if (!*text || pfs_parse_sites(text, &v, bad, sizeof(bad))) {
			pfs_sites_expected(expected, sizeof(expected));
			pfs_err(err, errlen,
				"%s='%s': expected site names joined with + or : (%s), all or none",
				d->name, text, expected);
			return -EINVAL;
		}
		break;
	}
	case PFS_OPT_STRING:
	case PFS_OPT_POLICY:
		if (!*text) {
			pfs_err(err, errlen, "%s='': empty value (expected %s)", d->name,
				d->type == PFS_OPT_POLICY ? "a policy name or plugin path"
							  : "a path");
			return -EINVAL;
		}
		if (str) {
			char *copy = strdup(text);
			if (!copy) {
				pfs_err(err, errlen, "out of memory");
				return -ENOMEM;
			}
			free(*str);
			*str = copy;
		}
		return 0;
	}
	if (num)
		*num = v;
	return 0;
}

void pfs_opt_format_value(enum pfs_opt_id id, const struct pfs_options *o, char *buf, size_t len)
{
	const struct pfs_opt_desc *d = &pfs_opt_table[id];
	long long v = o->num[id];

	switch (d->type) {
	case PFS_OPT_SIZE:
	case PFS_OPT_UINT:
	case PFS_OPT_INT:
	case PFS_OPT_BOOL:
		snprintf(buf, len, "%lld", v);
		break;
	case PFS_OPT_WORD:
		snprintf(buf, len, "%s", d->words[v]);
		break;
	case PFS_OPT_SITES:
		if (v == 0)
			snprintf(buf, len, "none");
		else
			alloc_site_mask_format((unsigned)v, buf, len);
		break;
	case PFS_OPT_STRING:
	case PFS_OPT_POLICY:
		snprintf(buf, len, "%s", o->str[id] ? o->str[id] : "");
		break;
	}
}

static int pfs_options_defaults(struct pfs_options *o)
{
	char err[256];

	memset(o, 0, sizeof(*o));
	for (int i = 0; i < PFS_OPT_COUNT; i++) {
		const struct pfs_opt_desc *d = &pfs_opt_table[i];
		if (!*d->def)
			continue; /* an empty default means "not set" */
		if (pfs_opt_parse_value((enum pfs_opt_id)i, d->def, &o->num[i], &o->str[i], err,
					sizeof(err)))
			return -ENOMEM;
	}
	return 0;
}

/* Append "item" to a malloc'd comma list. */
static int pfs_list_append(char **list, const char *item)
{
	size_t old = *list ? strlen(*list) : 0;
	char *n = realloc(*list, old + strlen(item) + 2);

	if (!n)
		return -ENOMEM;
	if (old)
		n[old++] = ',';
	strcpy(n + old, item);
	*list = n;
	return 0;
}

static int pfs_policy_arg_add(struct pfs_cmdline *cl, const char *key, const char *value)
{
	unsigned n = cl->npolicy_args;
	char **k = realloc(cl->policy_keys, (n + 1) * sizeof(*k));

	if (!k)
		return -ENOMEM;
	cl->policy_keys = k;
	char **v = realloc(cl->policy_values, (n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	cl->policy_values = v;
	k[n] = strdup(key);
	v[n] = value ? strdup(value) : NULL;
	if (!k[n] || (value && !v[n])) {
		free(k[n]);
		free(v[n]);
		return -ENOMEM;
	}
	cl->npolicy_args = n + 1;
	return 0;
}

/* One "key[=value]" item of a -o string. */
static int pfs_cmdline_item(struct pfs_cmdline *cl, char *item, char *err, size_t errlen)
{
	char *eq = strchr(item, '=');
	const char *value = eq ? eq + 1 : NULL;
	int id;

	if (eq)
		*eq = '\0';
	id = pfs_opt_find(item);
	if (id >= 0) {
		if (!value) {
			if (eq)
				*eq = '=';
			pfs_err(err, errlen,
				"option '%s' needs a value (%s=...; see pressurefs --help)", item,
				item);
			return -EINVAL;
		}
		return pfs_opt_parse_value((enum pfs_opt_id)id, value, &cl->opt.num[id],
					   &cl->opt.str[id], err, errlen);
	}
	if (strcmp(item, "no_default_permissions") == 0 && !value) {
		cl->no_default_permissions = true;
		return 0;
	}
	if (strcmp(item, "debug") == 0 && !value) {
		cl->debug = cl->foreground = true;
		return 0;
	}
	if ((!value && pfs_name_in(item, pfs_fuse_passthrough)) ||
	    (value && pfs_name_in(item, pfs_fuse_passthrough_value))) {
		if (eq)
			*eq = '=';
		if (value && !*value) {
			pfs_err(err, errlen, "%s: empty value", item);
			return -EINVAL;
		}
		return pfs_list_append(&cl->fuse_opts, item);
	}
	if ((!value && pfs_name_in(item, pfs_mount_ignored)) || strncmp(item, "x-", 2) == 0 ||
	    strcmp(item, "comment") == 0)
		return 0;
	/* Maybe an argument of the policy: checked once the policy is known. */
	return pfs_policy_arg_add(cl, item, value);
}

static int pfs_cmdline_o(struct pfs_cmdline *cl, const char *arg, char *err, size_t errlen)
{
	char *copy = strdup(arg), *save = NULL;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		r = pfs_cmdline_item(cl, item, err, errlen);
		if (r)
			break;
	}
	free(copy);
	return r;
}

/* Is key an argument of some available policy (not necessarily this one)? */
static bool pfs_any_policy_accepts(const char *key)
{
	char list[1024], *save = NULL;

	policy_list_available(list, sizeof(list));
	for (char *name = strtok_r(list, ", ", &save); name; name = strtok_r(NULL, ", ", &save))
		if (policy_accepts_arg(name, key) == 1)
			return true;
	return false;
}

/* Each candidate policy argument must be one the chosen policy takes. */
static int pfs_cmdline_check_policy_args(struct pfs_cmdline *cl, char *err, size_t errlen)
{
	const char *spec = cl->opt.str[PFS_OPT_policy];

	for (unsigned i = 0; i < cl->npolicy_args; i++) {
		const char *key = cl->policy_keys[i], *value = cl->policy_values[i];
		int r = policy_accepts_arg(spec, key);

		/* policy_load reports an unknown policy, and an argument of
		 * another policy with what this one accepts. */
		if (r < 0 || (r == 0 && pfs_any_policy_accepts(key)))
			return 0;
		if (r == 0) {
			if (value)
				pfs_err(err, errlen,
					"unknown option '%s=%s' (see pressurefs --help)", key,
					value);
			else
				pfs_err(err, errlen, "unknown option '%s' (see pressurefs --help)",
					key);
			return -EINVAL;
		}
		if (!value || !*value) {
			pfs_err(err, errlen, "policy argument '%s' needs a value (%s=N)", key, key);
			return -EINVAL;
		}
	}
	return 0;
}

int pfs_cmdline_parse(int argc, char **argv, struct pfs_cmdline *cl, char *err, size_t errlen)
{
	int r;

	memset(cl, 0, sizeof(*cl));
	/* --help and --version win over everything else on the line. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			cl->help = true;
			return 0;
		}
		if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
			cl->version = true;
			return 0;
		}
	}
	r = pfs_options_defaults(&cl->opt);
	if (r) {
		pfs_err(err, errlen, "out of memory");
		return r;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-o") == 0) {
			if (i + 1 >= argc) {
				pfs_err(err, errlen,
					"-o needs an argument (see pressurefs --help)");
				return -EINVAL;
			}
			r = pfs_cmdline_o(cl, argv[++i], err, errlen);
		} else if (strncmp(a, "-o", 2) == 0) {
			r = pfs_cmdline_o(cl, a + 2, err, errlen);
		} else if (strcmp(a, "-f") == 0) {
			cl->foreground = true;
		} else if (strcmp(a, "-d") == 0) {
			cl->debug = cl->foreground = true;
		} else if (strcmp(a, "-s") == 0) {
			cl->single_thread = true;
		} else if (strcmp(a, "-u") == 0) {
			pfs_err(err, errlen,
				"-u comes first and alone: pressurefs -u MOUNTPOINT (nothing was "
				"mounted)");
			return -EINVAL;
		} else if (a[0] == '-' && a[1]) {
			pfs_err(err, errlen, "unknown option '%s' (see pressurefs --help)", a);
			return -EINVAL;
		} else if (!cl->backing) {
			cl->backing = a;
		} else if (!cl->mountpoint) {
			cl->mountpoint = a;
		} else {
			pfs_err(err, errlen,
				"unexpected argument '%s' (usage: pressurefs [options] BACKING_DIR "
				"MOUNTPOINT)",
				a);
			return -EINVAL;
		}
		if (r == -ENOMEM)
			pfs_err(err, errlen, "out of memory");
		if (r)
			return r;
	}
	if (!cl->backing || !cl->mountpoint) {
		pfs_err(err, errlen,
			"missing %s (usage: pressurefs [options] BACKING_DIR MOUNTPOINT)",
			cl->backing ? "MOUNTPOINT" : "BACKING_DIR");
		return -EINVAL;
	}
	return pfs_cmdline_check_policy_args(cl, err, errlen);
}

void pfs_cmdline_free(struct pfs_cmdline *cl)
{
	for (int i = 0; i < PFS_OPT_COUNT; i++)
		free(cl->opt.str[i]);
	for (unsigned i = 0; i < cl->npolicy_args; i++) {
		free(cl->policy_keys[i]);
		free(cl->policy_values[i]);
	}
	free(cl->policy_keys);
	free(cl->policy_values);
	free(cl->fuse_opts);
	memset(cl, 0, sizeof(*cl));
}

/* Type name an option's value shows in --help. */
static const char *pfs_opt_metavar(const struct pfs_opt_desc *d)
{
	switch (d->type) {
	case PFS_OPT_SIZE:
		return "SIZE";
	case PFS_OPT_POLICY:
		return "NAME|PATH";
	case PFS_OPT_STRING:
		return "PATH";
	case PFS_OPT_SITES:
		return "LIST";
	case PFS_OPT_WORD:
		return "MODE";
	case PFS_OPT_BOOL:
		return "0|1";
	default:
		return "N";
	}
}

/* The words of a NULL-terminated list, comma-separated. */
static void pfs_help_list(FILE *out, const char *const *list, const char *suffix)
{
	for (const char *const *w = list; *w; w++)
		fprintf(out, "%s%s%s", w == list ? "" : ", ", *w, suffix);
}

/*
 * Fold every line of text longer than width at blanks. A continuation
 * starts at the line's description column: after its first gap of two or
 * more blanks that follows other text, else its indent (prose). So a
 * table row "    -o name=N      what it does ..." keeps its shape.
 */
static void pfs_help_fold(FILE *out, const char *text, int width)
{
	while (*text) {
		const char *nl = strchrnul(text, '\n');
		int len = (int)(nl - text), indent = 0, col = -1;

		while (indent < len && text[indent] == ' ')
			indent++;
		for (int i = indent; i + 1 < len && col < 0; i++)
			if (text[i] == ' ' && text[i + 1] == ' ') {
				int j = i;

				while (j < len && text[j] == ' ')
					j++;
				col = j;
			}
		if (col < 0 || col > width / 2)
			col = indent;
		for (int start = 0, first = 1; start < len; first = 0) {
			int room = width - (first ? 0 : col), take = len - start, cut;

			if (take > room) {
				for (cut = start + room; cut > start && text[cut] != ' '; cut--)
					;
				take = cut > start ? cut - start : room;
			}
			fprintf(out, "%*s%.*s\n", first ? 0 : col, "", take, text + start);
			start += take;
			while (start < len && text[start] == ' ')
				start++;
		}
		if (len == 0)
			fputc('\n', out);
		text = *nl ? nl + 1 : nl;
	}
}

void pfs_usage_print(FILE *out, const char *prog)
{
	char *text = NULL;
	size_t size = 0;
	FILE *m = open_memstream(&text, &size);

	if (!m) {
		fprintf(out, "usage: %s [options] BACKING_DIR MOUNTPOINT\n", prog);
		return;
	}
	fprintf(m,
		"usage: %s [options] BACKING_DIR MOUNTPOINT\n"
		"       %s -u MOUNTPOINT\n"
		"\n"
		"Mount a passthrough of BACKING_DIR with its own write-back cache, whose every "
		"allocation goes through a budget and a failure policy.\n"
		"\n"
		"general options:\n"
		"    -h, --help         print this help and exit\n"
		"    -V, --version      print the version and exit\n"
		"    -f                 stay in the foreground\n"
		"    -d                 debug output (implies -f)\n"
		"    -s                 single-threaded\n"
		"    -o OPT[,OPT...]    mount options (below); may be given several times\n"
		"    -u MOUNTPOINT      alone: unmount, and return only once the daemon has "
		"written "
		"everything back and exited; exit status 1 and one line saying why if it could not "
		"unmount or not write everything. A plain fusermount3 -u returns before that: what "
		"is not yet written back lands when the daemon exits.\n"
		"\n"
		"pressurefs options (sizes take K/M/G suffixes, powers of 1024; \"control file\": "
		"also changed at run time through the control directory):\n",
		prog, prog);
	for (int i = 0; i < PFS_OPT_COUNT; i++) {
		const struct pfs_opt_desc *d = &pfs_opt_table[i];
		char left[64];

		snprintf(left, sizeof(left), "%s=%s", d->name, pfs_opt_metavar(d));
		fprintf(m, "    -o %-22s  %s (default: %s%s)\n", left, d->help,
			*d->def ? d->def : "none", d->ctl == PFS_CTL_RW ? "; control file" : "");
	}
	fprintf(m, "\nallow_other brings default_permissions (the kernel checks file modes for "
		   "other users) unless -o no_default_permissions says otherwise.\n"
		   "passed to libfuse: ");
	pfs_help_list(m, pfs_fuse_passthrough, "");
	fprintf(m, ", ");
	pfs_help_list(m, pfs_fuse_passthrough_value, "=NAME");
	fprintf(m, ".\nignored (from mount(8) and fstab): ");
	pfs_help_list(m, pfs_mount_ignored, "");
	fprintf(m,
		", comment=..., x-*.\n"
		"\n"
		"control directory MOUNTPOINT/" PFS_CTL_NAME "/ (it shadows a file of that name "
		"in BACKING_DIR unless ctldir=none):\n"
		"    stats          read: statistics as JSON (pressurefs-stat shows them as a "
		"table)\n"
		"    policy         read/write: NAME[,ARG=V...] switches the policy at run time\n"
		"    OPTION         read/write: every option marked \"control file\" above, under "
		"its own name\n"
		"    dirty          read: \"INO OFFSET LENGTH PATH\" per range not yet written "
		"back; PATH is relative to the mount, '?' if unknown, with \\, newline, tab and "
		"other control bytes escaped as \\\\, \\n, \\t, \\xHH\n"
		"    drop_caches    write 1: drop clean cached pages\n"
		"    sync           write 1: write back everything\n"
		"    crash          write 1: a daemon crash: abort() without writing back, so "
		"every dirty page is lost (what reached BACKING_DIR stays)\n"
		"    fail_nth       write N: the Nth allocation attempt from now fails (any "
		"site, any thread), N+: that one and every later one, N+M: that one and M more, "
		"0: disarm; read: what was written, then waiting, fired (since armed, also after "
		"disarming) or off. For fail-the-Nth-allocation tests\n"
		"Only the mount's owner may write; a malformed write fails with EINVAL.\n"
		"\n");
	fflush(m);
	policy_print_help(m);
	fprintf(m,
		"\nexamples:\n"
		"    pressurefs -o policy=enomem,mem_limit=64M /srv/data /mnt/pfs\n"
		"    echo 60M > /mnt/pfs/" PFS_CTL_NAME "/balloon; pressurefs-stat -w 1 /mnt/pfs\n"
		"\n"
		"exit status:\n"
		"    0   mounted (in the foreground: unmounted, everything written back)\n"
		"    1   bad options or directories, the policy failed to load, the mount "
		"failed, or data could not be written back at unmount\n"
		"    with -u: 0 once unmounted, everything written back and the daemon gone; 1 "
		"if not unmounted (nothing changed), or if not everything was written back\n"
		"\n"
		"See pressurefs(8).\n");
	fclose(m);
	pfs_help_fold(out, text, 80);
	free(text);
}
