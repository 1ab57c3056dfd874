/*
 * One write() to a control file (fs/ctl_parse.c, pfs_ctl_parse_write): what
 * the FUSE handler turns into a command before it applies it.
 *   byte 0: the file (index into the control directory, read-only ones too);
 *   byte 1: the shape of the write: bits 0-3 repeat the payload 1..16 times
 *           (to reach past the 4 KiB limit under -max_len=4096), bits 4-5
 *           the offset (0, 0, 1, 4096);
 *   the rest: the payload, copied into an exact-size buffer.
 * Checked: the errno is one the handler may reply; a refusal has one
 * printable line; an accepted write obeys every rule of ctl_parse.c, its
 * command agrees with the value parser, a policy spec survives being put
 * back together, and one more trailing newline or a nonzero offset give
 * what the rules say. Parsing the same write twice gives the same answer.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "fuzz.h"

static struct pfs_ctl_cmd fz_cmd, fz_again;

static bool fz_is_trailing_blank(char c)
{
	return c == '\n' || c == ' ' || c == '\t' || c == '\r';
}

static void fz_check_one_line(const char *err, const char *input)
{
	if (!err[0])
		fuzz_fail("a refused write needs a message", input);
	for (const char *c = err; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			fuzz_fail("a refusal message holds a control byte", err);
}

static bool fz_has_separator(const char *s)
{
	return strpbrk(s, ", \t\r\n") != NULL;
}

/* NAME,k=v,... put back together parses to the same pieces. */
static void fz_check_policy(const struct pfs_ctl_file *file, const struct pfs_ctl_cmd *c)
{
	static char joined[2 * PFS_CTL_WRITE_MAX];
	char err[512];
	size_t n;

	if (!c->policy.name || !c->policy.name[0] || fz_has_separator(c->policy.name))
		fuzz_fail("a policy name is empty or holds a separator", c->text);
	if (c->policy.nargs > PFS_CTL_POLICY_ARGS_MAX)
		fuzz_fail("more policy arguments than the limit", c->text);
	n = (size_t)snprintf(joined, sizeof(joined), "%s", c->policy.name);
	for (unsigned i = 0; i < c->policy.nargs; i++) {
		const char *k = c->policy.keys[i], *v = c->policy.values[i];

		if (!k[0] || strchr(k, '=') || fz_has_separator(k) || fz_has_separator(v))
			fuzz_fail("a policy argument is not a plain key=value", c->text);
		n += (size_t)snprintf(joined + n, sizeof(joined) - n, ",%s=%s", k, v);
	}
	if (n > PFS_CTL_WRITE_MAX)
		fuzz_fail("the policy spec put back together is longer than the write", c->text);
	if (pfs_ctl_parse_write(file, joined, n, 0, &fz_again, err, sizeof(err)) != 0)
		fuzz_fail("the policy spec put back together does not parse", joined);
	if (fz_again.policy.nargs != c->policy.nargs ||
	    strcmp(fz_again.policy.name, c->policy.name) != 0)
		fuzz_fail("the policy spec put back together parses differently", joined);
	for (unsigned i = 0; i < c->policy.nargs; i++)
		if (strcmp(fz_again.policy.keys[i], c->policy.keys[i]) != 0 ||
		    strcmp(fz_again.policy.values[i], c->policy.values[i]) != 0)
			fuzz_fail("a policy argument changed when put back together", joined);
}

/* fail_nth takes N, N+, N+M (N >= 1) or 0; the command holds N and M (N+:
 * every later one, M = UINT64_MAX), read here with strtoull, not the
 * parser's own number reader. */
static void fz_check_fail_nth(const struct pfs_ctl_cmd *c)
{
	const char *p = c->text;
	char *end;
	unsigned long long n, m;

	if (c->kind != PFS_CTL_CMD_FAIL_NTH)
		fuzz_fail("a fail_nth write gave another command", c->text);
	if (!isdigit((unsigned char)*p))
		fuzz_fail("fail_nth accepted a write that does not start with N", c->text);
	errno = 0;
	n = strtoull(p, &end, 10);
	if (errno == ERANGE || n != c->nth)
		fuzz_fail("fail_nth's N disagrees with the text", c->text);
	if (*end == '\0') {
		if (c->nth_more != 0)
			fuzz_fail("fail_nth N gave more than one failure", c->text);
		return;
	}
	if (*end != '+' || n == 0)
		fuzz_fail("fail_nth accepted text that is not N, N+, N+M or 0", c->text);
	if (end[1] == '\0') {
		if (c->nth_more != UINT64_MAX)
			fuzz_fail("fail_nth N+ did not arm every later failure", c->text);
		return;
	}
	if (!isdigit((unsigned char)end[1]))
		fuzz_fail("fail_nth accepted N+ followed by something but M", c->text);
	errno = 0;
	m = strtoull(end + 1, &end, 10);
	if (errno == ERANGE || m != c->nth_more || *end != '\0')
		fuzz_fail("fail_nth's M disagrees with the text", c->text);
}

/* Every rule of an accepted write (see the top of ctl_parse.c). */
static void fz_check_accepted(const struct pfs_ctl_file *file, const char *buf, size_t len,
			      off_t off, const struct pfs_ctl_cmd *c)
{
	size_t n = len;
	long long v = 0;
	char err[512];

	while (n && fz_is_trailing_blank(buf[n - 1]))
		n--;
	if (off != 0 || len > PFS_CTL_WRITE_MAX || n == 0 || memchr(buf, '\0', n))
		fuzz_fail("a write against the rules was accepted", c->text);
	if (strlen(c->text) != n || memcmp(c->text, buf, n) != 0)
		fuzz_fail("the command's text is not the write without trailing blanks", c->text);
	switch (file->kind) {
	case PFS_CTL_OPTION:
		if (file->opt == PFS_OPT_policy) {
			if (c->kind != PFS_CTL_CMD_SET_POLICY)
				fuzz_fail("a policy write gave another command", c->text);
			fz_check_policy(file, c);
			break;
		}
		if (c->kind != PFS_CTL_CMD_SET_OPTION || c->opt != file->opt)
			fuzz_fail("an option write gave another command", c->text);
		if (pfs_opt_parse_value(file->opt, c->text, &v, NULL, err, sizeof(err)) != 0 ||
		    v != c->value)
			fuzz_fail("the command's value disagrees with the value parser", c->text);
		break;
	case PFS_CTL_DROP_CACHES:
	case PFS_CTL_SYNC:
	case PFS_CTL_CRASH:
		if (strcmp(c->text, "1") != 0)
			fuzz_fail("a trigger file accepted something but 1", c->text);
		if ((file->kind == PFS_CTL_SYNC) != (c->kind == PFS_CTL_CMD_SYNC) ||
		    (file->kind == PFS_CTL_CRASH) != (c->kind == PFS_CTL_CMD_CRASH) ||
		    (file->kind == PFS_CTL_DROP_CACHES) != (c->kind == PFS_CTL_CMD_DROP_CACHES))
			fuzz_fail("a trigger file gave another file's command", c->text);
		break;
	case PFS_CTL_FAIL_NTH:
		fz_check_fail_nth(c);
		break;
	default:
		fuzz_fail("a read-only file accepted a write", c->text);
	}
}

/* The same write with one more newline, and at offset 1. */
static void fz_check_variants(const struct pfs_ctl_file *file, const char *buf, size_t len, int r,
			      const struct pfs_ctl_cmd *c)
{
	char err[512];
	char *more;
	int r2;

	if (r == -EBADF)
		return;
	if (pfs_ctl_parse_write(file, buf, len, 1, &fz_again, err, sizeof(err)) != -EINVAL)
		fuzz_fail("a write at offset 1 was not refused with EINVAL", c->text);
	if (len >= PFS_CTL_WRITE_MAX)
		return;
	more = malloc(len + 1);
	if (!more)
		return;
	memcpy(more, buf, len);
	more[len] = '\n';
	r2 = pfs_ctl_parse_write(file, more, len + 1, 0, &fz_again, err, sizeof(err));
	free(more);
	if (r2 != r)
		fuzz_fail("one more trailing newline changed the answer", c->text);
	if (r == 0 && (fz_again.kind != c->kind || fz_again.value != c->value ||
		       strcmp(fz_again.text, c->text) != 0))
		fuzz_fail("one more trailing newline changed the command", c->text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const off_t offsets[4] = {0, 0, 1, 4096};
	const struct pfs_ctl_file *file;
	char err[512], err2[512];
	size_t payload, len;
	unsigned repeat;
	off_t off;
	char *buf;
	int r, r2;

	if (size < 2)
		return 0;
	if (!pfs_ctl_file_count())
		pfs_ctl_table_init();
	file = pfs_ctl_file_at(data[0] % pfs_ctl_file_count());
	repeat = (data[1] & 15u) + 1;
	off = offsets[(data[1] >> 4) & 3u];
	payload = size - 2;
	len = payload * repeat;
	buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	for (unsigned i = 0; i < repeat; i++)
		memcpy(buf + i * payload, data + 2, payload);

	r = pfs_ctl_parse_write(file, buf, len, off, &fz_cmd, err, sizeof(err));
	if (r != 0 && r != -EINVAL && r != -EBADF)
		fuzz_fail("pfs_ctl_parse_write returned an errno the handler must not reply", err);
	if ((r == -EBADF) != (file->kind == PFS_CTL_STATS || file->kind == PFS_CTL_DIRTY))
		fuzz_fail("EBADF is for the read-only files, and only for them", file->name);
	if (r != 0)
		fz_check_one_line(err, file->name);
	else
		fz_check_accepted(file, buf, len, off, &fz_cmd);

	r2 = pfs_ctl_parse_write(file, buf, len, off, &fz_again, err2, sizeof(err2));
	if (r2 != r || (r != 0 && strcmp(err, err2) != 0) ||
	    (r == 0 && (fz_again.kind != fz_cmd.kind || fz_again.value != fz_cmd.value)))
		fuzz_fail("the same write parsed twice gave two answers", file->name);
	if (r == 0 || off == 0)
		fz_check_variants(file, buf, len, r, &fz_cmd);
	free(buf);
	return 0;
}
