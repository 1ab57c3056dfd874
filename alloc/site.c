/*
 * Allocation site names: one table (ALLOC_SITES in alloc.h) gives the enum,
 * the stable lowercase names and their help, so options, statistics and logs
 * cannot disagree.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

static const char *const site_names[ALLOC_SITE_COUNT] = {
#define SITE_NAME(upper, lower, help) [ALLOC_SITE_##upper] = #lower,
	ALLOC_SITES(SITE_NAME)
#undef SITE_NAME
};

static const char *const site_helps[ALLOC_SITE_COUNT] = {
#define SITE_HELP(upper, lower, help) [ALLOC_SITE_##upper] = help,
	ALLOC_SITES(SITE_HELP)
#undef SITE_HELP
};

const char *alloc_site_name(enum alloc_site site)
{
	if ((unsigned)site >= ALLOC_SITE_COUNT)
		return "?";
	return site_names[site];
}

const char *alloc_site_help(enum alloc_site site)
{
	if ((unsigned)site >= ALLOC_SITE_COUNT)
		return "?";
	return site_helps[site];
}

/* Match the len bytes at name against the site names. */
static int site_parse_n(const char *name, size_t len, enum alloc_site *site)
{
	for (unsigned i = 0; i < ALLOC_SITE_COUNT; i++) {
		if (strlen(site_names[i]) == len && memcmp(site_names[i], name, len) == 0) {
			*site = (enum alloc_site)i;
			return 0;
		}
	}
	return -EINVAL;
}

int alloc_site_parse(const char *name, enum alloc_site *site)
{
	if (!name)
		return -EINVAL;
	return site_parse_n(name, strlen(name), site);
}

int alloc_site_mask_parse(const char *list, unsigned *mask, char *bad, size_t bad_len)
{
	unsigned out = 0;
	const char *p = list ? list : "";

	if (*p == '\0' || strcmp(p, "all") == 0) {
		*mask = ALLOC_SITES_ALL;
		return 0;
	}
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		enum alloc_site site;

		if (len == 3 && memcmp(p, "all", 3) == 0) {
			out |= ALLOC_SITES_ALL;
		} else if (site_parse_n(p, len, &site) == 0) {
			out |= 1u << site;
		} else {
			if (bad && bad_len > 0)
				snprintf(bad, bad_len, "%.*s", (int)len, p);
			return -EINVAL;
		}
		if (!end)
			break;
		p = end + 1;
	}
	*mask = out;
	return 0;
}

void alloc_site_mask_format(unsigned mask, char *buf, size_t len)
{
	size_t used = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	if ((mask & ALLOC_SITES_ALL) == ALLOC_SITES_ALL) {
		snprintf(buf, len, "all");
		return;
	}
	for (unsigned i = 0; i < ALLOC_SITE_COUNT; i++) {
		int n;

		if (!(mask & (1u << i)))
			continue;
		n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", site_names[i]);
		if (n < 0 || (size_t)n >= len - used)
			return; /* truncated, still NUL-terminated */
		used += (size_t)n;
	}
}
