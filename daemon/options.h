/*
 * The daemon's options (options.c): one table drives parsing, --help and
 * the control files. No FUSE, no daemon state.
 */
#ifndef PFS_OPTIONS_H
#define PFS_OPTIONS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum pfs_opt_type {
	PFS_OPT_SIZE,	/* bytes, K/M/G suffixes */
	PFS_OPT_UINT,	/* unsigned decimal in [min, max] */
	PFS_OPT_INT,	/* signed decimal in [min, max] */
	PFS_OPT_BOOL,	/* 0 or 1 */
	PFS_OPT_STRING, /* any non-empty text */
	PFS_OPT_WORD,	/* one of the desc's words; the value is its index */
	PFS_OPT_SITES,	/* site list, "all" or "none" */
	PFS_OPT_POLICY, /* NAME or PATH (arguments come as other options) */
};

/* How requests reach the daemon (transport/). */
enum pfs_transport_kind { PFS_TRANSPORT_AUTO, PFS_TRANSPORT_IO_URING, PFS_TRANSPORT_DEV_FUSE };
/* Whether a ring worker hands its CPU to the caller it answers (ring_handoff). */
enum pfs_handoff { PFS_HANDOFF_AUTO, PFS_HANDOFF_ON, PFS_HANDOFF_OFF };

/* Where a knob can be changed at run time through the control directory. */
enum pfs_opt_ctl {
	PFS_CTL_NONE, /* mount time only */
	PFS_CTL_RW,   /* a read-write control file of the same name */
};

#define PFS_OPTIONS(X)                                                                             \
	X(policy)                                                                                  \
	X(mem_limit)                                                                               \
	X(balloon)                                                                                 \
	X(fail_probability)                                                                        \
	X(fail_interval)                                                                           \
	X(fail_times)                                                                              \
	X(fail_space)                                                                              \
	X(fail_sites)                                                                              \
	X(fail_seed)                                                                               \
	X(fail_verbose)                                                                            \
	X(page_size)                                                                               \
	X(dirty_limit)                                                                             \
	X(clean_limit)                                                                             \
	X(writeback_ms)                                                                            \
	X(direct_writeback)                                                                        \
	X(ctldir)                                                                                  \
	X(stats_file)                                                                              \
	X(writeback_cache)                                                                         \
	X(killpriv)                                                                                \
	X(attr_timeout)                                                                            \
	X(transport)                                                                               \
	X(ring_spin_us)                                                                            \
	X(ring_handoff)                                                                            \
	X(dirty_throttle)                                                                          \
	X(writeback_delay_us)

enum pfs_opt_id {
#define PFS_OPT_ENUM(name) PFS_OPT_##name,
	PFS_OPTIONS(PFS_OPT_ENUM)
#undef PFS_OPT_ENUM
		PFS_OPT_COUNT
};

struct pfs_opt_desc {
	const char *name;
	enum pfs_opt_type type;
	const char *def;    /* default, as the user would write it */
	long long min, max; /* numeric range (SIZE, UINT, INT) */
	const char *help;
	enum pfs_opt_ctl ctl;
	const char *const *words; /* WORD: the accepted words, NULL-terminated */
};

enum pfs_ctldir { PFS_CTLDIR_HIDDEN, PFS_CTLDIR_VISIBLE, PFS_CTLDIR_NONE };

/* Every option's current value: numbers in num[], text in str[]. */
struct pfs_options {
	long long num[PFS_OPT_COUNT];
	char *str[PFS_OPT_COUNT]; /* malloc'd (parsed before the allocator exists) */
};

/* What the command line asked for, besides the -o table. */
struct pfs_cmdline {
	struct pfs_options opt;
	const char *backing;
	const char *mountpoint;
	bool foreground, debug, single_thread, help, version;
	bool no_default_permissions; /* allow_other without the kernel's mode checks */
	/* policy arguments, in the order given */
	char **policy_keys, **policy_values;
	unsigned npolicy_args;
	/* options handed to libfuse as "-o a,b" pieces */
	char *fuse_opts; /* malloc'd comma list, may be NULL */
};

const struct pfs_opt_desc *pfs_opt_desc(enum pfs_opt_id id);
/* Find an option by name; -1 if not in the table. */
int pfs_opt_find(const char *name);
/* Parse text for option id into *num or *str. 0, or -EINVAL with one line
 * (without the "pressurefs: " prefix) in err. */
int pfs_opt_parse_value(enum pfs_opt_id id, const char *text, long long *num, char **str, char *err,
			size_t errlen);
/* Format a value as the control file shows it (no newline). */
void pfs_opt_format_value(enum pfs_opt_id id, const struct pfs_options *o, char *buf, size_t len);
/* Format one line into err (printf-style), control bytes shown as '?', so
 * that whatever a user typed stays one line in the log. */
void pfs_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void pfs_verr(char *err, size_t errlen, const char *fmt, va_list ap);
/* Parse the whole command line. 0, or -EINVAL with one line in err. */
int pfs_cmdline_parse(int argc, char **argv, struct pfs_cmdline *cl, char *err, size_t errlen);
void pfs_cmdline_free(struct pfs_cmdline *cl);
void pfs_usage_print(FILE *out, const char *prog);

#endif /* PFS_OPTIONS_H */
