/*
 * Policy plugin loader: find a policy by name or path, check its ABI, parse
 * its arguments, make an instance. Used by the daemon and the tests; the
 * plugins themselves see only pressurefs/policy.h.
 */
#ifndef PFS_POLICY_LOADER_H
#define PFS_POLICY_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <pressurefs/policy.h>

/* A loaded, initialised policy instance. */
struct policy_handle {
	void *dl;		      /* dlopen() handle */
	const struct pfs_policy *ops; /* the plugin's table */
	void *state;		      /* what ops->init made */
	long long *values;	      /* one per ops->params entry */
	char **strings;		      /* one per entry: the text of a string parameter, else NULL */
	unsigned nparams;
	char *path; /* the file it came from */
};

/*
 * The directory searched for policies given by name:
 * the build tree's policies/ when the running program lives in the build
 * tree (so the uninstalled build works), else the installed plugin
 * directory. The environment never adds a directory: a plugin is loaded
 * only from there or from an explicit path.
 */
const char *policy_dir(void);

/* Override the directory (tests). NULL restores the default. */
void policy_dir_set(const char *dir);

/*
 * Load a policy. `spec` is a name ("retry": looked up as DIR/retry.so) or a
 * path (contains '/'). `args` are its arguments as parallel arrays of keys
 * and values (strings), nargs of them; unknown keys and bad values are
 * errors. On failure returns NULL and writes one line to err (if errlen > 0)
 * that says what was wrong and lists the policies available, e.g.
 *   unknown policy 'foo' (available: abort, enomem, nofail, retry)
 *   /tmp/x.so is not a pressurefs policy (no symbol pfs_policy_v1) ...
 *   /tmp/old.so was built for policy ABI 0, this pressurefs needs 1 ...
 *   retry: retries=abc is not an integer in 0..1000000
 *   mempool: reserve=foo: ... (init()'s own line for a string it refused)
 */
struct policy_handle *policy_load(const char *spec, const char *const *keys,
				  const char *const *values, unsigned nargs,
				  const struct pfs_policy_host *host, char *err, size_t errlen);

/* fini() the instance and dlclose(). NULL is a no-op. */
void policy_unload(struct policy_handle *h);

/*
 * Does the policy named by spec accept argument `key`? Lets an option parser
 * tell a policy argument from an unknown option before loading. Returns 1,
 * 0, or a negative errno if the policy cannot be found.
 */
int policy_accepts_arg(const char *spec, const char *key);

/* "abort, enomem, nofail, retry": the policies in policy_dir(). */
void policy_list_available(char *buf, size_t len);

/* The instance's arguments as "retries=8,backoff_ms=2" (empty if none;
 * string arguments as given, or their default). */
void policy_format_args(const struct policy_handle *h, char *buf, size_t len);

/* Usage text for every available policy and its arguments, for --help. */
void policy_print_help(FILE *out);

#endif /* PFS_POLICY_LOADER_H */
