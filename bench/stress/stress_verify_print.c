/* pfs-stress verify output: the table (default) and the JSON (--json). The
 * JSON is flat (CLASS_blocks, CLASS_bytes) so that scripts need no nesting. */
#include <inttypes.h>

#include "stress_i.h"

/* Table order: the good news first, the broken promise last. */
static const enum stress_class print_order[STRESS_CLASS_COUNT] = {
	STRESS_CLASS_INTACT,	       STRESS_CLASS_REFUSED,	     STRESS_CLASS_LOST_AFTER_WRITE,
	STRESS_CLASS_LOST_AFTER_FSYNC, STRESS_CLASS_TORN_OR_CORRUPT,
};

void stress_verify_print_table(FILE *out, const struct stress_verify_result *res)
{
	fprintf(out,
		"pfs-stress verify: %" PRIu64 " blocks of %" PRIu32 " bytes in %" PRIu32
		" files; journal: %" PRIu64 " records%s%s, %" PRIu64 " bad lines\n",
		res->blocks, res->geo.block_size, res->geo.files, res->journal_records,
		res->journal_ended ? ", run ended" : ", run did not end",
		res->journal_partial_tail ? ", partial last line ignored" : "",
		res->journal_bad_lines);
	fprintf(out, "%-18s %12s %16s\n", "class", "blocks", "bytes");
	for (int i = 0; i < STRESS_CLASS_COUNT; i++) {
		enum stress_class cls = print_order[i];

		fprintf(out, "%-18s %12" PRIu64 " %16" PRIu64, stress_class_name(cls),
			res->count[cls], res->bytes[cls]);
		if (cls == STRESS_CLASS_TORN_OR_CORRUPT)
			fprintf(out, "   (fsynced %" PRIu64 ", unfsynced %" PRIu64 ")",
				res->torn_fsynced, res->torn_unfsynced);
		fputc('\n', out);
	}
	for (unsigned i = 0; i < res->examples; i++) {
		const struct stress_verify_example *ex = &res->example[i];

		fprintf(out,
			"  %s: file %" PRIu32 " block %" PRIu64 " acked gen %" PRIu64
			", fsynced gen %" PRIu64 ", found %" PRId64 "\n",
			stress_class_name(ex->cls), ex->file, ex->block, ex->acked_gen,
			ex->fsynced_gen, ex->found_gen);
	}
	fprintf(out, "invariant: %s\n",
		stress_verify_invariant_holds(res)
			? "OK (nothing lost after fsync, no fsynced block torn)"
			: "BROKEN (data lost after a successful fsync, or an fsynced block torn)");
}

void stress_verify_print_json(FILE *out, const struct stress_verify_result *res)
{
	fprintf(out,
		"{\n  \"blocks\": %" PRIu64 ",\n  \"block_size\": %" PRIu32
		",\n  \"files\": %" PRIu32 ",\n",
		res->blocks, res->geo.block_size, res->geo.files);
	for (int i = 0; i < STRESS_CLASS_COUNT; i++) {
		enum stress_class cls = print_order[i];

		fprintf(out, "  \"%s_blocks\": %" PRIu64 ",\n  \"%s_bytes\": %" PRIu64 ",\n",
			stress_class_name(cls), res->count[cls], stress_class_name(cls),
			res->bytes[cls]);
	}
	fprintf(out, "  \"torn_fsynced\": %" PRIu64 ",\n  \"torn_unfsynced\": %" PRIu64 ",\n",
		res->torn_fsynced, res->torn_unfsynced);
	fprintf(out,
		"  \"journal_records\": %" PRIu64 ",\n  \"journal_bad_lines\": %" PRIu64
		",\n  \"journal_partial_tail\": %s,\n  \"run_ended\": %s,\n",
		res->journal_records, res->journal_bad_lines,
		res->journal_partial_tail ? "true" : "false",
		res->journal_ended ? "true" : "false");
	fprintf(out, "  \"examples\": [");
	for (unsigned i = 0; i < res->examples; i++) {
		const struct stress_verify_example *ex = &res->example[i];

		fprintf(out,
			"%s\n    {\"class\": \"%s\", \"file\": %" PRIu32 ", \"block\": %" PRIu64
			", \"acked_gen\": %" PRIu64 ", \"fsynced_gen\": %" PRIu64
			", \"found_gen\": %" PRId64 "}",
			i ? "," : "", stress_class_name(ex->cls), ex->file, ex->block,
			ex->acked_gen, ex->fsynced_gen, ex->found_gen);
	}
	fprintf(out, "%s],\n  \"invariant_ok\": %s\n}\n", res->examples ? "\n  " : "",
		stress_verify_invariant_holds(res) ? "true" : "false");
}
