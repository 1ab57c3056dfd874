/*
 * pfs-stress's command line (bench/stress/stress_cli.c, stress_main): one argument
 * per line after argv[0]. Must never crash, and any status is one the CLI
 * documents (0..4). Inputs are made harmless: after "run" or "verify",
 * --dir and --journal (and --summary for run) are appended again, pointing
 * into a directory that does not exist; the later occurrence wins, so a run
 * fails at set-up without touching any file and a verify never reads a file
 * the input named (/dev/zero, a FIFO...). What is fuzzed is the parsing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "stress_i.h"

#define FUZZ_ARGS_MAX 48

static char *const fuzz_run_tail[] = {
	"--dir",     "/nonexistent/pfs-fuzz/dir",     "--journal",  "/nonexistent/pfs-fuzz/journal",
	"--summary", "/nonexistent/pfs-fuzz/summary", "--duration", "1",
	NULL,
};
static char *const fuzz_verify_tail[] = {
	"--dir", "/nonexistent/pfs-fuzz/dir", "--journal", "/nonexistent/pfs-fuzz/journal", NULL,
};
#define FUZZ_TAIL_MAX 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char **lines, *argv[FUZZ_ARGS_MAX + FUZZ_TAIL_MAX + 2];
	char *const *tail = NULL;
	size_t n, argc = 0;
	int r;

	if (size > 4096)
		return 0;
	n = fuzz_split_lines(data, size, FUZZ_ARGS_MAX, &lines);
	if (!lines)
		return 0;
	argv[argc++] = (char *)"pfs-stress";
	/* "--" in the input turns the tail into plain arguments: a usage
	 * error before any file is opened, so that stays harmless too. */
	for (size_t i = 0; i < n; i++)
		argv[argc++] = lines[i];
	if (strcmp(lines[0], "run") == 0)
		tail = fuzz_run_tail;
	else if (strcmp(lines[0], "verify") == 0)
		tail = fuzz_verify_tail;
	for (size_t i = 0; tail && tail[i]; i++)
		argv[argc++] = tail[i];
	argv[argc] = NULL;
	r = stress_main((int)argc, argv);
	if (r < 0 || r > 4)
		fuzz_fail("pfs-stress returned a status it does not document", lines[0]);
	fflush(stdout);
	free(lines);
	return 0;
}
