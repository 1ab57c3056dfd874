/*
 * policy_load_check SPEC [KEY=VALUE...]: load a policy through the loader
 * and say what happened: "loaded NAME abi N" (exit 0) or the loader's error
 * (exit 1). The out-of-tree test uses it on a plugin built against the
 * installed header only.
 * policy_load_check --dir: print policy_dir(), where names are looked up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"

#define CHECK_ARGS_MAX 16

int main(int argc, char **argv)
{
	const char *keys[CHECK_ARGS_MAX];
	const char *values[CHECK_ARGS_MAX];
	char args[CHECK_ARGS_MAX][256];
	struct policy_handle *h;
	char err[1024];
	unsigned nargs = 0;

	if (argc == 2 && strcmp(argv[1], "--dir") == 0) {
		printf("%s\n", policy_dir());
		return 0;
	}
	if (argc < 2 || argc - 2 > CHECK_ARGS_MAX) {
		fprintf(stderr, "usage: %s SPEC [KEY=VALUE...] (at most %d)\n", argv[0],
			CHECK_ARGS_MAX);
		return 2;
	}
	for (int i = 2; i < argc; i++, nargs++) {
		char *eq;

		snprintf(args[nargs], sizeof(args[nargs]), "%s", argv[i]);
		eq = strchr(args[nargs], '=');
		if (eq)
			*eq++ = '\0';
		keys[nargs] = args[nargs];
		values[nargs] = eq ? eq : "";
	}
	h = policy_load(argv[1], keys, values, nargs, NULL, err, sizeof(err));
	if (!h) {
		printf("%s\n", err);
		return 1;
	}
	printf("loaded %s abi %u\n", h->ops->name, h->ops->abi_version);
	policy_unload(h);
	return 0;
}
