/*
 * The allocator's site list (alloc_site_mask_parse): "cache_page,writeback",
 * "all". A list that parses must format back to a list that parses to the
 * same mask; a refused list must name the bad piece.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, bad[64], shown[512];
	unsigned mask = 0xdeadbeef, again = 0;
	int r;

	if (size > 4096)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	bad[0] = '\0';
	r = alloc_site_mask_parse(text, &mask, bad, sizeof(bad));
	if (r != 0 && r != -EINVAL)
		fuzz_fail("alloc_site_mask_parse returned an unexpected errno", text);
	if (r == 0) {
		if (mask & ~(unsigned)ALLOC_SITES_ALL)
			fuzz_fail("the mask has bits beyond the known sites", text);
		alloc_site_mask_format(mask, shown, sizeof(shown));
		/* An empty mask formats as "" which means "all": the
		 * daemon's control file shows it as "none" (options.c). */
		if (mask != 0) {
			if (alloc_site_mask_parse(shown, &again, NULL, 0) != 0)
				fuzz_fail("the formatted list does not parse", shown);
			if (again != mask)
				fuzz_fail("the formatted list parses to another mask", shown);
		}
	}
	free(text);
	return 0;
}
