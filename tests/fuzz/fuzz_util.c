/* Helpers shared by the fuzz harnesses (see fuzz.h). */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "loader.h"

size_t fuzz_split_lines(const uint8_t *data, size_t size, size_t max, char ***out)
{
	size_t n = 1, i;
	char **v, *text;

	for (i = 0; i < size && n < max; i++)
		if (data[i] == '\n' || data[i] == '\0')
			n++;
	/* The pointer array, then a NUL-terminated copy of the text. */
	v = malloc(n * sizeof(*v) + size + 1);
	if (!v) {
		*out = NULL;
		return 0;
	}
	text = (char *)(v + n);
	memcpy(text, data, size);
	text[size] = '\0';
	v[0] = text;
	n = 1;
	for (i = 0; i < size && n < max; i++) {
		if (text[i] == '\n' || text[i] == '\0') {
			text[i] = '\0';
			v[n++] = text + i + 1;
		}
	}
	*out = v;
	return n;
}

void fuzz_fail(const char *what, const char *input)
{
	fprintf(stderr, "fuzz: invariant broken: %s (input '%s')\n", what, input ? input : "");
	abort();
}

void fuzz_policies_pin(void)
{
	static bool pinned;
	char list[1024], path[4096], *save = NULL;

	if (pinned)
		return;
	pinned = true;
	policy_list_available(list, sizeof(list));
	for (char *name = strtok_r(list, ", ", &save); name; name = strtok_r(NULL, ", ", &save)) {
		snprintf(path, sizeof(path), "%s/%s.so", policy_dir(), name);
		/* Leaked on purpose: the reference is the point. */
		if (!dlopen(path, RTLD_NOW | RTLD_NODELETE))
			fprintf(stderr, "fuzz: cannot pin %s: %s\n", path, dlerror());
	}
}
