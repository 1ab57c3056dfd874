/* pfs-stress command line: the run and verify subcommands, --help, and the
 * one-line "pfs-stress: ..." diagnostics (exit 2) for every bad flag. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "stress_i.h"

#define STRESS_THREADS_MAX     256u
#define STRESS_FILES_MAX       100000u
#define STRESS_FILE_SIZE_MAX   (UINT64_C(64) << 30)
#define STRESS_DURATION_MAX    86400u
#define STRESS_FSYNC_EVERY_MAX 1000000u
#define STRESS_STALL_MAX       3600u

static const char stress_help[] =
	"usage: pfs-stress run --dir MNT --journal FILE [options]\n"
	"       pfs-stress verify --dir BACKING_DIR --journal FILE [--json]\n"
	"                         [--fsync-promise strict|errseq]\n"
	"       pfs-stress --help\n"
	"\n"
	"run: writer threads write files f0000.dat... of self-describing blocks under\n"
	"MNT and journal every answer the application gets (outside the mount).\n"
	"  --dir DIR             directory to write in (required)\n"
	"  --journal FILE        journal to create, outside DIR (required)\n"
	"  --threads N           writer threads, 1..256, at most --files (4)\n"
	"  --files N             files; file i belongs to thread i % threads (8)\n"
	"  --file-size SIZE      size of each file, a multiple of --block (4M)\n"
	"  --block SIZE          block size, a multiple of 512 in 512..16M (4K)\n"
	"  --duration SECS       seconds of writing, 1..86400 (10)\n"
	"  --fsync-every N|never fsync a file after N acknowledged writes to it,\n"
	"                        and every file once at the end (32)\n"
	"  --on-error MODE       what the application does on an error or short count:\n"
	"                        retry (back off 1 ms doubling to 100 ms, write the same\n"
	"                        block again until the duration ends), skip (drop the\n"
	"                        data and go on), exit (stop every thread, status 3)\n"
	"                        (retry)\n"
	"  --seed S              seed of the block contents and of each thread's\n"
	"                        sequence of writes (1)\n"
	"  --overwrite-pct P     after the first pass, percent of writes that go to a\n"
	"                        random block; the rest follow a sequential cursor (30)\n"
	"  --stall-secs S        a call in flight longer than S is a stall (5); past the\n"
	"                        duration, a call stuck for S + 5 s makes the run hung\n"
	"  --summary FILE        also write the JSON summary to FILE\n"
	"  --quiet               no progress line (shown only on a terminal anyway)\n"
	"  SIZE takes a K, M or G suffix (powers of 1024).\n"
	"  Exit: 0 done (errors are data), 1 setup failure, 2 usage, 3 --on-error exit\n"
	"  triggered, 4 hung (summary written with \"hung\": true).\n"
	"  Journal: one line per write() (a cut last line is ignored): S start <params>,\n"
	"  O file ret errno t_us lat_us (open), I file block gen t_us (before pwrite),\n"
	"  W file block gen ret errno t_us lat_us, F file ret errno t_us lat_us,\n"
	"  E end reason=R. ret is what the call returned; W, F, O come after it did.\n"
	"\n"
	"verify: read the files under BACKING_DIR (after unmount, kill or crash) and\n"
	"put every block the journal mentions in exactly one class. First match wins:\n"
	"  torn_or_corrupt   bad checksum, mixed generations that no short write\n"
	"                    explains, a foreign block or a generation never written\n"
	"  lost_after_fsync  an fsync returned 0 after generation G was acknowledged\n"
	"                    and the block holds neither G nor a later generation\n"
	"  lost_after_write  acknowledged by write(), not covered by a good fsync,\n"
	"                    and older data (or a hole) is there\n"
	"  refused           never acknowledged, or the latest write was refused (error\n"
	"                    or short count) and the block holds the previous\n"
	"                    acknowledged generation or the refused data\n"
	"  intact            the latest acknowledged generation (or a newer one the\n"
	"                    run was writing when it stopped) is there\n"
	"  --fsync-promise strict (default, pressurefs' contract): an fsync that returns\n"
	"  0 covers every write acknowledged before it, even across an earlier failed\n"
	"  fsync (an EIO or ENOSPC is reported once per open descriptor and an ENOMEM\n"
	"  means the fsync got no memory, but pressurefs keeps the data dirty and\n"
	"  retries it).\n"
	"  errseq: only if no failed fsync of the file came in between (a failed fsync\n"
	"  consumes the error and the data may be gone, as on Linux's own page cache).\n"
	"  After a crash lost_after_write and torn blocks written since their last good\n"
	"  fsync may be non-zero; lost_after_fsync and torn fsynced blocks never may.\n"
	"  --json                print JSON instead of a table\n"
	"  Exit: 0 the fsync promise held, 1 it did not, 2 usage or unreadable input.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("pfs-stress: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return STRESS_EXIT_USAGE;
}

static int parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!text[0] || text[0] == '-' || text[0] == '+' || text[0] == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || *end || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int stress_parse_size(const char *text, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!text[0] || text[0] < '0' || text[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno)
		return -ERANGE;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	default:
		return -EINVAL;
	}
	if (*end && end[1])
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

enum {
	OPT_DIR = 256,
	OPT_JOURNAL,
	OPT_THREADS,
	OPT_FILES,
	OPT_FILE_SIZE,
	OPT_BLOCK,
	OPT_DURATION,
	OPT_FSYNC_EVERY,
	OPT_ON_ERROR,
	OPT_SEED,
	OPT_OVERWRITE_PCT,
	OPT_STALL_SECS,
	OPT_SUMMARY,
	OPT_QUIET,
	OPT_JSON,
	OPT_FSYNC_PROMISE,
	OPT_HELP,
};

static const struct option run_options[] = {
	{"dir", required_argument, NULL, OPT_DIR},
	{"journal", required_argument, NULL, OPT_JOURNAL},
	{"threads", required_argument, NULL, OPT_THREADS},
	{"files", required_argument, NULL, OPT_FILES},
	{"file-size", required_argument, NULL, OPT_FILE_SIZE},
	{"block", required_argument, NULL, OPT_BLOCK},
	{"duration", required_argument, NULL, OPT_DURATION},
	{"fsync-every", required_argument, NULL, OPT_FSYNC_EVERY},
	{"on-error", required_argument, NULL, OPT_ON_ERROR},
	{"seed", required_argument, NULL, OPT_SEED},
	{"overwrite-pct", required_argument, NULL, OPT_OVERWRITE_PCT},
	{"stall-secs", required_argument, NULL, OPT_STALL_SECS},
	{"summary", required_argument, NULL, OPT_SUMMARY},
	{"quiet", no_argument, NULL, OPT_QUIET},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

static const struct option verify_options[] = {
	{"dir", required_argument, NULL, OPT_DIR},
	{"journal", required_argument, NULL, OPT_JOURNAL},
	{"json", no_argument, NULL, OPT_JSON},
	{"fsync-promise", required_argument, NULL, OPT_FSYNC_PROMISE},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

/* getopt_long with its own messages off; every problem becomes one line. */
static int next_option(const char *cmd, int argc, char **argv, const struct option *opts)
{
	int c = getopt_long(argc, argv, ":", opts, NULL);

	if (c == '?') {
		const char *bad = argv[optind - 1];

		if (optopt)
			usage_error("%s: unknown option '-%c' (see pfs-stress --help)", cmd,
				    optopt);
		else
			usage_error("%s: unknown option '%s' (see pfs-stress --help)", cmd, bad);
		return -1 - STRESS_EXIT_USAGE;
	}
	if (c == ':') {
		usage_error("%s: option '%s' needs a value", cmd, argv[optind - 1]);
		return -1 - STRESS_EXIT_USAGE;
	}
	return c;
}

static int run_option_apply(struct stress_run_config *cfg, int c, const char *arg,
			    uint64_t *file_size, uint64_t *block)
{
	uint64_t v;

	switch (c) {
	case OPT_DIR:
		cfg->dir = arg;
		return 0;
	case OPT_JOURNAL:
		cfg->journal = arg;
		return 0;
	case OPT_SUMMARY:
		cfg->summary_path = arg;
		return 0;
	case OPT_QUIET:
		cfg->quiet = true;
		return 0;
	case OPT_THREADS:
		if (parse_uint(arg, 1, STRESS_THREADS_MAX, &v))
			return usage_error("--threads '%s': expected an integer 1..%u", arg,
					   STRESS_THREADS_MAX);
		cfg->threads = (unsigned)v;
		return 0;
	case OPT_FILES:
		if (parse_uint(arg, 1, STRESS_FILES_MAX, &v))
			return usage_error("--files '%s': expected an integer 1..%u", arg,
					   STRESS_FILES_MAX);
		cfg->geo.files = (uint32_t)v;
		return 0;
	case OPT_FILE_SIZE:
		if (stress_parse_size(arg, file_size) || *file_size == 0 ||
		    *file_size > STRESS_FILE_SIZE_MAX)
			return usage_error("--file-size '%s': expected a size 1..64G with an "
					   "optional K, M or G suffix",
					   arg);
		return 0;
	case OPT_BLOCK:
		if (stress_parse_size(arg, block) || *block < STRESS_BLOCK_MIN ||
		    *block > STRESS_BLOCK_MAX || *block % 512)
			return usage_error("--block '%s': expected a multiple of 512 in "
					   "512..16M (K, M suffixes accepted)",
					   arg);
		return 0;
	case OPT_DURATION:
		if (parse_uint(arg, 1, STRESS_DURATION_MAX, &v))
			return usage_error("--duration '%s': expected whole seconds 1..%u", arg,
					   STRESS_DURATION_MAX);
		cfg->duration_s = (unsigned)v;
		return 0;
	case OPT_FSYNC_EVERY:
		if (!strcmp(arg, "never")) {
			cfg->fsync_every = 0;
			return 0;
		}
		if (parse_uint(arg, 1, STRESS_FSYNC_EVERY_MAX, &v))
			return usage_error("--fsync-every '%s': expected an integer 1..%u or "
					   "'never'",
					   arg, STRESS_FSYNC_EVERY_MAX);
		cfg->fsync_every = (unsigned)v;
		return 0;
	case OPT_ON_ERROR:
		if (!strcmp(arg, "retry"))
			cfg->on_error = STRESS_ON_ERROR_RETRY;
		else if (!strcmp(arg, "skip"))
			cfg->on_error = STRESS_ON_ERROR_SKIP;
		else if (!strcmp(arg, "exit"))
			cfg->on_error = STRESS_ON_ERROR_EXIT;
		else
			return usage_error("--on-error '%s': expected retry, skip or exit", arg);
		return 0;
	case OPT_SEED:
		if (parse_uint(arg, 0, UINT64_MAX, &cfg->geo.seed))
			return usage_error("--seed '%s': expected an unsigned 64-bit integer", arg);
		return 0;
	case OPT_OVERWRITE_PCT:
		if (parse_uint(arg, 0, 100, &v))
			return usage_error("--overwrite-pct '%s': expected a percentage 0..100",
					   arg);
		cfg->overwrite_pct = (unsigned)v;
		return 0;
	case OPT_STALL_SECS:
		if (parse_uint(arg, 1, STRESS_STALL_MAX, &v))
			return usage_error("--stall-secs '%s': expected whole seconds 1..%u", arg,
					   STRESS_STALL_MAX);
		cfg->stall_secs = (unsigned)v;
		return 0;
	}
	return usage_error("run: unexpected option");
}

/* Is the journal's directory --dir or below it? Both resolved, so "." and
 * symlinks do not hide it; a journal whose directory does not exist yet is
 * left for the open to report. */
static bool journal_inside_dir(const char *journal, const char *dir)
{
	char *jcopy = strdup(journal);
	char *jdir = jcopy ? realpath(dirname(jcopy), NULL) : NULL;
	char *ddir = realpath(dir, NULL);
	bool inside = false;

	if (jdir && ddir) {
		size_t n = strlen(ddir);

		inside = !strncmp(jdir, ddir, n) &&
			 (jdir[n] == '\0' || jdir[n] == '/' || !strcmp(ddir, "/"));
	}
	free(jcopy);
	free(jdir);
	free(ddir);
	return inside;
}

static int stress_cmd_run(int argc, char **argv)
{
	struct stress_run_config cfg = {
		.threads = 4,
		.geo = {.seed = 1, .files = 8},
		.duration_s = 10,
		.fsync_every = 32,
		.on_error = STRESS_ON_ERROR_RETRY,
		.overwrite_pct = 30,
		.stall_secs = 5,
	};
	uint64_t file_size = 4u << 20, block = 4096;
	int c, ret;

	optind = 0;
	while ((c = next_option("run", argc, argv, run_options)) != -1) {
		if (c < -1)
			return -1 - c;
		if (c == OPT_HELP) {
			fputs(stress_help, stdout);
			return STRESS_EXIT_OK;
		}
		ret = run_option_apply(&cfg, c, optarg, &file_size, &block);
		if (ret)
			return ret;
	}
	if (optind < argc)
		return usage_error("run: unexpected argument '%s'", argv[optind]);
	if (!cfg.dir)
		return usage_error("run: --dir DIR is required");
	if (!cfg.journal)
		return usage_error("run: --journal FILE is required");
	if (file_size < block || file_size % block)
		return usage_error("--file-size %" PRIu64 " must be a non-zero multiple of "
				   "--block %" PRIu64,
				   file_size, block);
	if (cfg.threads > cfg.geo.files)
		return usage_error("--threads %u must not exceed --files %" PRIu32, cfg.threads,
				   cfg.geo.files);
	if (journal_inside_dir(cfg.journal, cfg.dir))
		return usage_error("--journal %s must live outside --dir %s (a crash of the "
				   "filesystem under test must not take the journal)",
				   cfg.journal, cfg.dir);
	cfg.geo.file_size = file_size;
	cfg.geo.block_size = (uint32_t)block;
	return stress_run_execute(&cfg);
}

static int stress_cmd_verify(int argc, char **argv)
{
	const char *dir = NULL, *journal = NULL;
	struct stress_verify_options vopts = {.promise = STRESS_FSYNC_STRICT};
	struct stress_verify_result *res;
	bool json = false;
	char why[512];
	int c, ret;

	optind = 0;
	while ((c = next_option("verify", argc, argv, verify_options)) != -1) {
		if (c < -1)
			return -1 - c;
		switch (c) {
		case OPT_HELP:
			fputs(stress_help, stdout);
			return STRESS_EXIT_OK;
		case OPT_DIR:
			dir = optarg;
			break;
		case OPT_JOURNAL:
			journal = optarg;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_FSYNC_PROMISE:
			if (!strcmp(optarg, "strict"))
				vopts.promise = STRESS_FSYNC_STRICT;
			else if (!strcmp(optarg, "errseq"))
				vopts.promise = STRESS_FSYNC_ERRSEQ;
			else
				return usage_error(
					"verify: --fsync-promise '%s': expected strict or errseq",
					optarg);
			break;
		}
	}
	if (optind < argc)
		return usage_error("verify: unexpected argument '%s'", argv[optind]);
	if (!dir)
		return usage_error("verify: --dir BACKING_DIR is required");
	if (!journal)
		return usage_error("verify: --journal FILE is required");
	res = calloc(1, sizeof(*res));
	if (!res)
		return usage_error("verify: out of memory");
	ret = stress_verify_run(dir, journal, &vopts, res, why, sizeof(why));
	if (ret) {
		free(res);
		return usage_error("verify: %s", why);
	}
	if (json)
		stress_verify_print_json(stdout, res);
	else
		stress_verify_print_table(stdout, res);
	fflush(stdout);
	ret = stress_verify_invariant_holds(res) ? STRESS_EXIT_OK : STRESS_EXIT_FAILURE;
	free(res);
	return ret;
}

int stress_main(int argc, char **argv)
{
	if (argc < 2)
		return usage_error("missing command: expected run, verify or --help");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		fputs(stress_help, stdout);
		return STRESS_EXIT_OK;
	}
	if (!strcmp(argv[1], "run"))
		return stress_cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "verify"))
		return stress_cmd_verify(argc - 1, argv + 1);
	return usage_error("unknown command '%s': expected run, verify or --help", argv[1]);
}
