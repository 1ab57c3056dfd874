/*
 * Policy plugin loader: name or path -> dlopen -> ABI checks -> arguments ->
 * init(). Every refusal is one line in the caller's buffer, never a crash:
 * the daemon prints it and exits, the option parser shows it to the user.
 */
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pfs_config.h"
#include "loader.h"

#define POLICY_NAME_MAX	     64 /* longest policy name, without ".so" */
#define POLICY_PARAMS_MAX    64 /* a plugin with more parameters is refused */
#define POLICY_LIST_MAX	     64 /* plugins listed from one directory */
#define POLICY_AVAILABLE_LEN 512

/*
 * The default directory is decided once per process; the override is for
 * tests, which set it before any other thread uses the loader.
 */
static pthread_once_t policy_dir_once = PTHREAD_ONCE_INIT;
static const char *policy_dir_default;
static char policy_dir_override[PATH_MAX];
static bool policy_dir_overridden;

/* A plugin that is open and has passed every check, before init(). */
struct policy_open {
	void *dl;
	const struct pfs_policy *ops;
	unsigned nparams;
	char path[PATH_MAX];
};

static bool policy_path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return n > 0 && strncmp(path, dir, n) == 0 && path[n] == '/';
}

static void policy_dir_resolve(void)
{
	char exe[PATH_MAX];
	char root[PATH_MAX];

	policy_dir_default = PFS_POLICY_DIR;
	if (!realpath("/proc/self/exe", exe))
		return;
	/* The build root as configured, or as it resolves through symlinks. */
	if (policy_path_under(exe, PFS_BUILD_ROOT) ||
	    (realpath(PFS_BUILD_ROOT, root) && policy_path_under(exe, root)))
		policy_dir_default = PFS_BUILD_POLICY_DIR;
}

const char *policy_dir(void)
{
	if (policy_dir_overridden)
		return policy_dir_override;
	pthread_once(&policy_dir_once, policy_dir_resolve);
	return policy_dir_default;
}

void policy_dir_set(const char *dir)
{
	if (!dir) {
		policy_dir_overridden = false;
		return;
	}
	snprintf(policy_dir_override, sizeof(policy_dir_override), "%s", dir);
	policy_dir_overridden = true;
}

static bool policy_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > POLICY_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* One line: a value given by the user must not break the message in two. */
static void policy_err_flatten(char *err)
{
	for (; *err; err++) {
		if (iscntrl((unsigned char)*err))
			*err = ' ';
	}
}

/* Format the error; with `list`, append the policies available. */
__attribute__((format(printf, 4, 5))) static void policy_err(char *err, size_t errlen, bool list,
							     const char *fmt, ...)
{
	char available[POLICY_AVAILABLE_LEN];
	va_list ap;
	size_t used;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (list) {
		policy_list_available(available, sizeof(available));
		used = strlen(err);
		snprintf(err + used, errlen - used, " (available: %s)", available);
	}
	policy_err_flatten(err);
}

static int policy_names_compare(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The plugin names in policy_dir(), sorted. Returns how many. */
static unsigned policy_names_collect(char names[][POLICY_NAME_MAX + 1], unsigned max)
{
	const char *dir = policy_dir();
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	unsigned n = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return 0;
	while (n < max && (de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len < 4 || strcmp(de->d_name + len - 3, ".so") != 0)
			continue;
		len -= 3;
		if (!policy_name_valid(de->d_name, len))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
			continue;
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		memcpy(names[n], de->d_name, len);
		names[n][len] = '\0';
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), policy_names_compare);
	return n;
}

void policy_list_available(char *buf, size_t len)
{
	char names[POLICY_LIST_MAX][POLICY_NAME_MAX + 1];
	unsigned n = policy_names_collect(names, POLICY_LIST_MAX);
	size_t used = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (n == 0) {
		snprintf(buf, len, "none in %s", policy_dir());
		return;
	}
	for (unsigned i = 0; i < n && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
}

/* Where spec points: DIR/NAME.so for a name, the spec itself for a path. */
static int policy_path_resolve(const char *spec, char *path, size_t len, char *err, size_t errlen)
{
	if (!spec || !*spec) {
		policy_err(err, errlen, true, "no policy given");
		return -EINVAL;
	}
	if (strchr(spec, '/')) {
		if ((size_t)snprintf(path, len, "%s", spec) >= len) {
			policy_err(err, errlen, true, "policy path too long: %.64s...", spec);
			return -ENAMETOOLONG;
		}
		return 0;
	}
	if (!policy_name_valid(spec, strlen(spec))) {
		policy_err(
			err, errlen, true,
			"invalid policy name '%.80s': a name is [a-z0-9_-]+, a path contains '/'",
			spec);
		return -EINVAL;
	}
	if ((size_t)snprintf(path, len, "%s/%s.so", policy_dir(), spec) >= len) {
		policy_err(err, errlen, true, "policy path too long for '%s'", spec);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Checks the table a plugin exports; the ABI fields first, as they say
 * whether the rest of the struct can be read at all. */
static int policy_ops_check(const struct pfs_policy *ops, struct policy_open *po, char *err,
			    size_t errlen)
{
	const struct pfs_policy_param *p;
	unsigned n;

	if (ops->abi_version != PFS_POLICY_ABI_VERSION) {
		policy_err(err, errlen, true,
			   "%s was built for policy ABI %u, this pressurefs needs %u; rebuild it "
			   "against pressurefs/policy.h",
			   po->path, ops->abi_version, PFS_POLICY_ABI_VERSION);
		return -EPROTO;
	}
	if (ops->struct_size < sizeof(struct pfs_policy)) {
		policy_err(err, errlen, true,
			   "%s has a struct pfs_policy of %u bytes, this pressurefs needs at least "
			   "%zu; rebuild it against pressurefs/policy.h",
			   po->path, ops->struct_size, sizeof(struct pfs_policy));
		return -EPROTO;
	}
	if (!ops->name || !ops->decide) {
		policy_err(err, errlen, true, "%s is a broken pressurefs policy (no %s)", po->path,
			   ops->name ? "decide function" : "name");
		return -EPROTO;
	}
	for (n = 0, p = ops->params; p && p->name; n++, p++) {
		if (n >= POLICY_PARAMS_MAX) {
			policy_err(err, errlen, true, "%s: more than %d parameters", po->path,
				   POLICY_PARAMS_MAX);
			return -EPROTO;
		}
		if (!policy_name_valid(p->name, strlen(p->name))) {
			policy_err(err, errlen, true,
				   "%s: parameter name '%.80s' is not [a-z0-9_-]+", po->path,
				   p->name);
			return -EPROTO;
		}
		if (p->type != PFS_PARAM_INT && p->type != PFS_PARAM_STRING) {
			policy_err(err, errlen, true, "%s: parameter %s has unknown type %d",
				   po->path, p->name, (int)p->type);
			return -EPROTO;
		}
		if (p->type == PFS_PARAM_INT &&
		    (p->min > p->max || p->def < p->min || p->def > p->max)) {
			policy_err(err, errlen, true,
				   "%s: parameter %s has default %lld outside %lld..%lld", po->path,
				   p->name, p->def, p->min, p->max);
			return -EPROTO;
		}
	}
	po->ops = ops;
	po->nparams = n;
	return 0;
}

/* Find, dlopen and check a plugin. On success the caller dlclose()s po->dl. */
static int policy_open(const char *spec, struct policy_open *po, char *err, size_t errlen)
{
	const struct pfs_policy *ops;
	struct stat st;
	const char *why;
	int rc;

	memset(po, 0, sizeof(*po));
	rc = policy_path_resolve(spec, po->path, sizeof(po->path), err, errlen);
	if (rc)
		return rc;
	if (stat(po->path, &st) != 0) {
		rc = -errno;
		if (!strchr(spec, '/') && rc == -ENOENT)
			policy_err(err, errlen, true, "unknown policy '%s'", spec);
		else
			policy_err(err, errlen, true, "cannot open policy %s: %s", po->path,
				   strerror(-rc));
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		policy_err(err, errlen, true, "%s is not a pressurefs policy (not a file)",
			   po->path);
		return -ENOEXEC;
	}
	dlerror();
	po->dl = dlopen(po->path, RTLD_NOW | RTLD_LOCAL);
	if (!po->dl) {
		why = dlerror();
		policy_err(err, errlen, true, "%s is not a pressurefs policy (cannot load it: %s)",
			   po->path, why ? why : "unknown error");
		return -ENOEXEC;
	}
	ops = dlsym(po->dl, PFS_POLICY_SYMBOL);
	if (!ops) {
		policy_err(err, errlen, true, "%s is not a pressurefs policy (no symbol %s)",
			   po->path, PFS_POLICY_SYMBOL);
		rc = -ENOEXEC;
		goto out_close;
	}
	rc = policy_ops_check(ops, po, err, errlen);
	if (rc)
		goto out_close;
	return 0;

out_close:
	dlclose(po->dl);
	po->dl = NULL;
	return rc;
}

static void policy_params_format(const struct pfs_policy *ops, char *buf, size_t len)
{
	size_t used = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (unsigned i = 0; ops->params && ops->params[i].name && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
					 ops->params[i].name);
	if (!ops->params || !ops->params[0].name)
		snprintf(buf, len, "none");
}

static int policy_param_find(const struct policy_open *po, const char *key)
{
	for (unsigned i = 0; i < po->nparams; i++) {
		if (strcmp(po->ops->params[i].name, key) == 0)
			return (int)i;
	}
	return -1;
}

/* A decimal integer, the whole string, in min..max. */
static int policy_int_parse(const char *s, long long min, long long max, long long *out)
{
	const char *digits = s;
	char *end;
	long long v;

	if (*digits == '-' || *digits == '+')
		digits++;
	if (!isdigit((unsigned char)*digits))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end != '\0')
		return errno ? -errno : -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* A string argument: non-empty, one option (no comma, no blank), and safe
 * to show anywhere unquoted (no control byte, quote or backslash). */
static bool policy_str_valid(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		if (!isgraph((unsigned char)*s) || *s == ',' || *s == '"' || *s == '\\')
			return false;
	}
	return true;
}

static int policy_args_parse(const struct policy_open *po, const char *const *keys,
			     const char *const *values, unsigned nargs, long long *out,
			     const char **strs, char *err, size_t errlen)
{
	const struct pfs_policy_param *params = po->ops->params;
	bool seen[POLICY_PARAMS_MAX] = {false};
	char accepted[POLICY_AVAILABLE_LEN];
	const char *name = po->ops->name;

	for (unsigned i = 0; i < po->nparams; i++) {
		bool is_str = params[i].type == PFS_PARAM_STRING;

		out[i] = is_str ? 0 : params[i].def;
		strs[i] = is_str ? (params[i].def_str ? params[i].def_str : "") : NULL;
	}
	for (unsigned i = 0; i < nargs; i++) {
		const char *key = keys[i] ? keys[i] : "";
		const char *value = values && values[i] ? values[i] : "";
		int idx = policy_param_find(po, key);

		if (idx < 0) {
			policy_params_format(po->ops, accepted, sizeof(accepted));
			policy_err(err, errlen, false, "%s has no argument '%.80s' (accepted: %s)",
				   name, key, accepted);
			return -EINVAL;
		}
		if (seen[idx]) {
			policy_err(err, errlen, false, "%s: argument '%s' given twice", name, key);
			return -EINVAL;
		}
		seen[idx] = true;
		if (params[idx].type == PFS_PARAM_STRING) {
			if (!policy_str_valid(value)) {
				policy_err(err, errlen, false,
					   "%s: %s='%.80s' must be non-empty text without commas, "
					   "blanks or quotes "
					   "(%s)",
					   name, key, value,
					   params[idx].help ? params[idx].help : "");
				return -EINVAL;
			}
			strs[idx] = value;
			continue;
		}
		if (policy_int_parse(value, params[idx].min, params[idx].max, &out[idx]) != 0) {
			policy_err(err, errlen, false,
				   "%s: %s=%.80s is not an integer in %lld..%lld", name, key, value,
				   params[idx].min, params[idx].max);
			return -EINVAL;
		}
	}
	return 0;
}

static void policy_strings_free(char **strings, unsigned n)
{
	if (!strings)
		return;
	for (unsigned i = 0; i < n; i++)
		free(strings[i]);
	free(strings);
}

struct policy_handle *policy_load(const char *spec, const char *const *keys,
				  const char *const *values, unsigned nargs,
				  const struct pfs_policy_host *host, char *err, size_t errlen)
{
	const char *strs[POLICY_PARAMS_MAX] = {NULL};
	struct policy_handle *h = NULL;
	struct policy_open po;
	char why[256];
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (policy_open(spec, &po, err, errlen))
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		goto out_nomem;
	/* One slot even without parameters, so that values is never NULL. */
	h->values = calloc(po.nparams ? po.nparams : 1, sizeof(*h->values));
	h->strings = calloc(po.nparams ? po.nparams : 1, sizeof(*h->strings));
	h->path = strdup(po.path);
	if (!h->values || !h->strings || !h->path)
		goto out_nomem;
	if (policy_args_parse(&po, keys, values, nargs, h->values, strs, err, errlen))
		goto out_free;
	/* Kept for policy_format_args(); init() gets the same text. */
	for (unsigned i = 0; i < po.nparams; i++) {
		if (strs[i] && !(h->strings[i] = strdup(strs[i])))
			goto out_nomem;
	}
	if (po.ops->init) {
		why[0] = '\0';
		rc = po.ops->init(&h->state, h->values, (const char *const *)h->strings, host, why,
				  sizeof(why));
		if (rc) {
			if (!why[0])
				snprintf(why, sizeof(why), "init failed: %s",
					 rc < 0 ? strerror(-rc) : "error");
			policy_err(err, errlen, false, "%s: %s", po.ops->name, why);
			goto out_free;
		}
	}
	h->dl = po.dl;
	h->ops = po.ops;
	h->nparams = po.nparams;
	return h;

out_nomem:
	policy_err(err, errlen, false, "cannot load policy %s: out of memory", po.path);
out_free:
	if (h) {
		policy_strings_free(h->strings, po.nparams);
		free(h->values);
		free(h->path);
		free(h);
	}
	dlclose(po.dl);
	return NULL;
}

void policy_unload(struct policy_handle *h)
{
	if (!h)
		return;
	if (h->ops->fini)
		h->ops->fini(h->state);
	dlclose(h->dl);
	policy_strings_free(h->strings, h->nparams);
	free(h->values);
	free(h->path);
	free(h);
}

int policy_accepts_arg(const char *spec, const char *key)
{
	struct policy_open po;
	int rc;

	rc = policy_open(spec, &po, NULL, 0);
	if (rc)
		return rc;
	rc = key && policy_param_find(&po, key) >= 0;
	dlclose(po.dl);
	return rc;
}

void policy_format_args(const struct policy_handle *h, char *buf, size_t len)
{
	size_t used = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (unsigned i = 0; i < h->nparams && used < len; i++) {
		if (h->strings[i])
			used += (size_t)snprintf(buf + used, len - used, "%s%s=%s", i ? "," : "",
						 h->ops->params[i].name, h->strings[i]);
		else
			used += (size_t)snprintf(buf + used, len - used, "%s%s=%lld", i ? "," : "",
						 h->ops->params[i].name, h->values[i]);
	}
}

void policy_print_help(FILE *out)
{
	char names[POLICY_LIST_MAX][POLICY_NAME_MAX + 1];
	unsigned n = policy_names_collect(names, POLICY_LIST_MAX);
	char err[PATH_MAX + 256];
	struct policy_open po;

	fprintf(out,
		"Policies (-o policy=NAME[,ARG=N...] or policy=/path/to/plugin.so), from %s:\n",
		policy_dir());
	if (n == 0)
		fprintf(out, "    (none found)\n");
	for (unsigned i = 0; i < n; i++) {
		if (policy_open(names[i], &po, err, sizeof(err))) {
			fprintf(out, "    %-17s  (broken: %s)\n", names[i], err);
			continue;
		}
		fprintf(out, "    %-17s  %s\n", po.ops->name,
			po.ops->summary ? po.ops->summary : "(no summary)");
		for (unsigned j = 0; j < po.nparams; j++) {
			const struct pfs_policy_param *p = &po.ops->params[j];
			char arg[POLICY_NAME_MAX + 4];

			if (p->type == PFS_PARAM_STRING) {
				snprintf(arg, sizeof(arg), "%s=TEXT", p->name);
				fprintf(out, "        %-18s %s (default '%s')\n", arg,
					p->help ? p->help : "", p->def_str ? p->def_str : "");
				continue;
			}
			snprintf(arg, sizeof(arg), "%s=N", p->name);
			fprintf(out, "        %-18s %s (default %lld, %lld..%lld)\n", arg,
				p->help ? p->help : "", p->def, p->min, p->max);
		}
		dlclose(po.dl);
	}
}
