/*
 * The daemon's command line (fs/options.c, pfs_cmdline_parse): the input is
 * an argument vector, one argument per line, after argv[0]. Every input
 * must give 0 or -EINVAL/-ENOMEM with a one-line message, and a parsed line
 * must name both directories.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "fuzz.h"

#define FUZZ_ARGS_MAX 64

/*
 * A policy given as a path makes the parser dlopen() it (to ask which
 * arguments it takes), which runs that file's constructors: the fuzzer must
 * not pick arbitrary shared objects of this machine. Inputs whose policy=
 * value holds a '/' are skipped; names are looked up in the plugin dir only.
 */
static int fuzz_policy_is_path(const uint8_t *data, size_t size)
{
	static const char key[] = "policy=";
	size_t k = sizeof(key) - 1;

	for (size_t i = 0; i + k <= size; i++) {
		if (memcmp(data + i, key, k) != 0)
			continue;
		for (size_t j = i + k; j < size && data[j] != ',' && data[j] != '\n' && data[j];
		     j++)
			if (data[j] == '/')
				return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pfs_cmdline cl;
	char **lines, *argv[FUZZ_ARGS_MAX + 2], err[512];
	size_t n;
	int r;

	if (fuzz_policy_is_path(data, size))
		return 0;
	n = fuzz_split_lines(data, size, FUZZ_ARGS_MAX, &lines);
	if (!lines)
		return 0;
	fuzz_policies_pin();
	argv[0] = (char *)"pressurefs";
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = lines[i];
	argv[n + 1] = NULL;
	err[0] = '\0';
	r = pfs_cmdline_parse((int)n + 1, argv, &cl, err, sizeof(err));
	if (r != 0 && r != -EINVAL && r != -ENOMEM)
		fuzz_fail("pfs_cmdline_parse returned an unexpected errno", lines[0]);
	/* Only the last piece can hold a newline (past FUZZ_ARGS_MAX lines);
	 * a message echoing it has two lines: the known bug of
	 * known-bugs/README, tolerated here. */
	if (r != 0 && (!err[0] || (strchr(err, '\n') && !strchr(lines[n - 1], '\n'))))
		fuzz_fail("an error must be exactly one non-empty line", err);
	if (r == 0 && !cl.help && !cl.version && (!cl.backing || !cl.mountpoint))
		fuzz_fail("a parsed command line must name BACKING_DIR and MOUNTPOINT", lines[0]);
	if (r == 0 && !cl.help && !cl.version && !cl.opt.str[PFS_OPT_policy])
		fuzz_fail("a parsed command line must have a policy", lines[0]);
	pfs_cmdline_free(&cl);
	free(lines);
	return 0;
}
