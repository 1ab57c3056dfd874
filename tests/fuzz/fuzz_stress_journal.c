/*
 * pfs-stress's journal parser (bench/stress/stress_journal.c): every line of the
 * input goes to stress_record_parse and stress_record_parse_start. A parsed
 * record must be of a known type, and a parsed start record must describe a
 * geometry the writer could have made; the whole input also goes to
 * stress_parse_size (the SIZE flags).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "stress_i.h"

#define FUZZ_LINES_MAX 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char **lines;
	size_t n;
	uint64_t bytes;

	if (size > 65536)
		return 0;
	n = fuzz_split_lines(data, size, FUZZ_LINES_MAX, &lines);
	if (!lines)
		return 0;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(lines[i]);
		struct stress_record rec;
		struct stress_geometry geo;

		/* An exact-size copy without a NUL: the parser gets a length
		 * and must not read past it. */
		char *exact = malloc(len ? len : 1);
		if (!exact)
			break;
		memcpy(exact, lines[i], len);
		memset(&rec, 0, sizeof(rec));
		if (stress_record_parse(exact, len, &rec) == 0 && !strchr("SOIWFE", rec.type))
			fuzz_fail("a parsed record of unknown type", lines[i]);
		memset(&geo, 0, sizeof(geo));
		if (stress_record_parse_start(exact, len, &geo) == 0 &&
		    (geo.block_size == 0 || geo.files == 0))
			fuzz_fail("a parsed start record with no block size or no files", lines[i]);
		free(exact);
	}
	stress_parse_size(lines[0], &bytes);
	free(lines);
	return 0;
}
