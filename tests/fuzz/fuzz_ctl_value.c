/*
 * The values written to the control files and given as -o NAME=VALUE
 * (fs/options.c, pfs_opt_parse_value): the first byte picks the option, the
 * rest is the text. A value that parses must format back (as the control
 * file shows it) to text that parses to the same value, and a refused value
 * must come with a one-line message.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pfs_options o;
	enum pfs_opt_id id;
	char *text, err[512], shown[1024];
	long long v = 0, again = 0;
	int r;

	if (size < 1 || size > 8192)
		return 0;
	id = (enum pfs_opt_id)(data[0] % PFS_OPT_COUNT);
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	memset(&o, 0, sizeof(o));
	err[0] = '\0';
	r = pfs_opt_parse_value(id, text, &v, &o.str[id], err, sizeof(err));
	if (r != 0 && r != -EINVAL && r != -ENOMEM)
		fuzz_fail("pfs_opt_parse_value returned an unexpected errno", text);
	/* The message echoes the value, with control bytes shown as '?'. */
	if (r != 0 && (!err[0] || strchr(err, '\n')))
		fuzz_fail("a refused value needs exactly one non-empty line", err);
	if (r == 0) {
		const struct pfs_opt_desc *d = pfs_opt_desc(id);

		if ((d->type == PFS_OPT_SIZE || d->type == PFS_OPT_UINT || d->type == PFS_OPT_INT ||
		     d->type == PFS_OPT_BOOL) &&
		    (v < d->min || v > d->max))
			fuzz_fail("a parsed number lies outside the option's range", text);
		o.num[id] = v;
		pfs_opt_format_value(id, &o, shown, sizeof(shown));
		r = pfs_opt_parse_value(id, shown, &again, NULL, err, sizeof(err));
		if (r != 0)
			fuzz_fail("the value as the control file shows it does not parse", shown);
		if (d->type != PFS_OPT_STRING && d->type != PFS_OPT_POLICY && again != v)
			fuzz_fail("the value as shown parses to another value", shown);
	}
	free(o.str[id]);
	free(text);
	return 0;
}
