/*
 * The policy loader's argument parsing (policies/loader.c, policy_load):
 * the first byte picks a policy by name (or an unknown one, or a path), the
 * rest is "key=value" per line. Loading must either give an instance whose
 * arguments lie in the ranges the plugin declares, or NULL with a one-line
 * message; formatting the arguments of an instance must not overflow.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "loader.h"

#define FUZZ_POLICY_ARGS_MAX 32

static void fuzz_host_log(void *data, enum pfs_log_level level, const char *fmt, ...)
{
	(void)data;
	(void)level;
	(void)fmt;
}

static const struct pfs_policy_host fuzz_host = {.log = fuzz_host_log};

/* Names and paths the loader must cope with: its own plugins, a name that
 * is not one, a path that does not exist, a path to a non-plugin. */
static const char *const fuzz_specs[] = {
	"retry",       "nofail",   "enomem", "abort", "bogus", "../retry", "/nonexistent/x.so",
	"/etc/passwd", "retry.so", "",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *keys[FUZZ_POLICY_ARGS_MAX], *values[FUZZ_POLICY_ARGS_MAX];
	const char *spec;
	struct policy_handle *h;
	char **lines, err[512], shown[1024];
	size_t n, nargs = 0;

	if (size < 1 || size > 4096)
		return 0;
	spec = fuzz_specs[data[0] % (sizeof(fuzz_specs) / sizeof(fuzz_specs[0]))];
	n = fuzz_split_lines(data + 1, size - 1, FUZZ_POLICY_ARGS_MAX, &lines);
	if (!lines)
		return 0;
	fuzz_policies_pin();
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(lines[i], '=');

		if (!lines[i][0] && i == n - 1)
			break;
		if (eq)
			*eq = '\0';
		keys[nargs] = lines[i];
		values[nargs++] = eq ? eq + 1 : "";
	}
	err[0] = '\0';
	h = policy_load(spec, keys, values, (unsigned)nargs, &fuzz_host, err, sizeof(err));
	if (!h) {
		if (!err[0] || strchr(err, '\n'))
			fuzz_fail("a refused policy needs exactly one non-empty line", err);
	} else {
		const struct pfs_policy_param *p = h->ops->params;

		for (unsigned i = 0; p && i < h->nparams; i++)
			if (h->values[i] < p[i].min || h->values[i] > p[i].max)
				fuzz_fail("a policy argument outside its declared range",
					  p[i].name);
		policy_format_args(h, shown, sizeof(shown));
		policy_format_args(h, shown, 4); /* truncation must stay in bounds */
		policy_unload(h);
	}
	free(lines);
	return 0;
}
