/*
 * What a write to a control file means, without doing it: the table of
 * control files (built from the option table) and pfs_ctl_parse_write(),
 * which turns the bytes of one write() into a command or a one-line error.
 * No FUSE and no daemon state here, so the unit tests and the fuzz harness
 * call it directly; ctl.c applies the command.
 *
 * The rules of one write, in the order they are checked:
 *   1. stats and dirty are read-only (EBADF);
 *   2. a value comes whole, in one write at offset 0: a write at another
 *      offset is the rest of a value split across writes, and applying it
 *      alone would set a wrong value ("6" then "4M" is not 64M);
 *   3. at most PFS_CTL_WRITE_MAX bytes;
 *   4. trailing newlines, blanks, tabs and CRs are dropped (echo adds one),
 *      and something must remain;
 *   5. no NUL byte anywhere in what remains;
 *   6. an option file takes what -o NAME=VALUE takes (pfs_opt_parse_value);
 *      policy takes NAME[,arg=value...] (commas, blanks, tabs, CRs or
 *      newlines between the pieces); drop_caches, sync and crash take
 *      exactly "1"; fail_nth takes N (the Nth allocation attempt from now
 *      fails, once), N+ (that one and every later one), N+M (that one and
 *      M more) or 0 (disarm), in decimal.
 * Every refusal but rule 1 is EINVAL.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "daemon_i.h"
#include "ctl/ctl.h"

#define PFS_CTL_MAX_FILES (PFS_OPT_COUNT + 6)
/* Between a policy's name and its arguments, and between arguments: the
 * blanks a write may end with, so CRLF lines split like LF lines. */
#define PFS_CTL_POLICY_SEPARATORS ", \t\r\n"

/* Written once by pfs_ctl_table_init() before the session starts; read-only after. */
static struct pfs_ctl_file pfs_ctl_files[PFS_CTL_MAX_FILES];
static unsigned pfs_ctl_nfiles;

static void pfs_ctl_table_add(const char *name, enum pfs_ctl_kind kind, enum pfs_opt_id opt,
			      mode_t mode)
{
	pfs_ctl_files[pfs_ctl_nfiles++] =
		(struct pfs_ctl_file){.name = name, .kind = kind, .opt = opt, .mode = mode};
}

void pfs_ctl_table_init(void)
{
	pfs_ctl_nfiles = 0;
	pfs_ctl_table_add("stats", PFS_CTL_STATS, 0, 0444);
	for (int i = 0; i < PFS_OPT_COUNT; i++)
		if (pfs_opt_desc((enum pfs_opt_id)i)->ctl == PFS_CTL_RW)
			pfs_ctl_table_add(pfs_opt_desc((enum pfs_opt_id)i)->name, PFS_CTL_OPTION,
					  (enum pfs_opt_id)i, 0644);
	pfs_ctl_table_add("dirty", PFS_CTL_DIRTY, 0, 0444);
	pfs_ctl_table_add("drop_caches", PFS_CTL_DROP_CACHES, 0, 0200);
	pfs_ctl_table_add("sync", PFS_CTL_SYNC, 0, 0200);
	pfs_ctl_table_add("crash", PFS_CTL_CRASH, 0, 0200);
	pfs_ctl_table_add("fail_nth", PFS_CTL_FAIL_NTH, 0, 0644);
}

unsigned pfs_ctl_file_count(void)
{
	return pfs_ctl_nfiles;
}

const struct pfs_ctl_file *pfs_ctl_file_at(unsigned i)
{
	return i < pfs_ctl_nfiles ? &pfs_ctl_files[i] : NULL;
}

int pfs_ctl_policy_split(char *spec, struct pfs_ctl_policy *out, char *err, size_t errlen)
{
	char *save = NULL, *tok;

	out->nargs = 0;
	out->name = strtok_r(spec, PFS_CTL_POLICY_SEPARATORS, &save);
	if (!out->name) {
		pfs_err(err, errlen, "policy: empty (expected NAME[,arg=value...])");
		return -EINVAL;
	}
	while ((tok = strtok_r(NULL, PFS_CTL_POLICY_SEPARATORS, &save))) {
		char *eq = strchr(tok, '=');

		if (!eq || eq == tok) {
			pfs_err(err, errlen, "policy: '%.64s' is not arg=value", tok);
			return -EINVAL;
		}
		if (out->nargs == PFS_CTL_POLICY_ARGS_MAX) {
			pfs_err(err, errlen, "policy: more than %d arguments",
				PFS_CTL_POLICY_ARGS_MAX);
			return -EINVAL;
		}
		*eq = '\0';
		out->keys[out->nargs] = tok;
		out->values[out->nargs++] = eq + 1;
	}
	return 0;
}

static bool pfs_ctl_is_trailing_blank(char c)
{
	return c == '\n' || c == ' ' || c == '\t' || c == '\r';
}

/* The text of a write to a file that takes "1" (drop_caches, sync, crash). */
static int pfs_ctl_parse_trigger(const struct pfs_ctl_file *file, struct pfs_ctl_cmd *cmd,
				 char *err, size_t errlen)
{
	if (strcmp(cmd->text, "1") != 0) {
		pfs_err(err, errlen, "%s: '%.64s' is not 1 (write 1 to %s)", file->name, cmd->text,
			file->name);
		return -EINVAL;
	}
	switch (file->kind) {
	case PFS_CTL_DROP_CACHES:
		cmd->kind = PFS_CTL_CMD_DROP_CACHES;
		break;
	case PFS_CTL_SYNC:
		cmd->kind = PFS_CTL_CMD_SYNC;
		break;
	default:
		cmd->kind = PFS_CTL_CMD_CRASH;
		break;
	}
	return 0;
}

/* Decimal digits only, below UINT64_MAX; *end past them. */
static int pfs_ctl_parse_u64(const char *s, uint64_t *out, const char **end)
{
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - 1 - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	*end = s;
	return 0;
}

/* The text of a write to fail_nth: N, N+, N+M or 0. */
static int pfs_ctl_parse_fail_nth(struct pfs_ctl_cmd *cmd, char *err, size_t errlen)
{
	const char *p;

	cmd->kind = PFS_CTL_CMD_FAIL_NTH;
	cmd->nth_more = 0;
	if (pfs_ctl_parse_u64(cmd->text, &cmd->nth, &p))
		goto bad;
	if (*p == '+' && cmd->nth > 0) {
		if (p[1] == '\0') {
			cmd->nth_more = UINT64_MAX;
			return 0;
		}
		if (pfs_ctl_parse_u64(p + 1, &cmd->nth_more, &p))
			goto bad;
	}
	if (*p == '\0')
		return 0;
bad:
	pfs_err(err, errlen,
		"fail_nth: '%.64s' is not N, N+, N+M or 0 (N >= 1: the Nth allocation attempt "
		"from now fails; + : every later one too; +M: M more)",
		cmd->text);
	return -EINVAL;
}

int pfs_ctl_parse_write(const struct pfs_ctl_file *file, const char *buf, size_t len, off_t off,
			struct pfs_ctl_cmd *cmd, char *err, size_t errlen)
{
	size_t n = len;

	if (err && errlen)
		err[0] = '\0';
	cmd->kind = PFS_CTL_CMD_SET_OPTION;
	cmd->opt = 0;
	cmd->value = 0;
	cmd->policy.name = NULL;
	cmd->policy.nargs = 0;
	cmd->nth = cmd->nth_more = 0;
	cmd->text[0] = cmd->spec[0] = '\0';
	if (!file) {
		pfs_err(err, errlen, "no such control file");
		return -EBADF;
	}
	if (file->kind == PFS_CTL_STATS || file->kind == PFS_CTL_DIRTY) {
		pfs_err(err, errlen, "%s is read-only", file->name);
		return -EBADF;
	}
	if (off != 0) {
		pfs_err(err, errlen,
			"%s: write at offset %lld: a value must come whole in one write at "
			"offset 0",
			file->name, (long long)off);
		return -EINVAL;
	}
	if (len > PFS_CTL_WRITE_MAX) {
		pfs_err(err, errlen, "%s: a write of %zu bytes is over the limit of %d", file->name,
			len, PFS_CTL_WRITE_MAX);
		return -EINVAL;
	}
	while (n && pfs_ctl_is_trailing_blank(buf[n - 1]))
		n--;
	if (n == 0) {
		pfs_err(err, errlen, "%s: empty write", file->name);
		return -EINVAL;
	}
	if (memchr(buf, '\0', n)) {
		pfs_err(err, errlen, "%s: the write holds a NUL byte", file->name);
		return -EINVAL;
	}
	memcpy(cmd->text, buf, n);
	cmd->text[n] = '\0';

	switch (file->kind) {
	case PFS_CTL_OPTION:
		if (file->opt == PFS_OPT_policy) {
			cmd->kind = PFS_CTL_CMD_SET_POLICY;
			memcpy(cmd->spec, cmd->text, n + 1);
			return pfs_ctl_policy_split(cmd->spec, &cmd->policy, err, errlen);
		}
		cmd->kind = PFS_CTL_CMD_SET_OPTION;
		cmd->opt = file->opt;
		/* No string out: every run-time option is a number. */
		if (pfs_opt_parse_value(file->opt, cmd->text, &cmd->value, NULL, err, errlen))
			return -EINVAL;
		return 0;
	case PFS_CTL_DROP_CACHES:
	case PFS_CTL_SYNC:
	case PFS_CTL_CRASH:
		return pfs_ctl_parse_trigger(file, cmd, err, errlen);
	case PFS_CTL_FAIL_NTH:
		return pfs_ctl_parse_fail_nth(cmd, err, errlen);
	default:
		pfs_err(err, errlen, "%s is read-only", file->name);
		return -EBADF;
	}
}
