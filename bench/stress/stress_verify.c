/* pfs-stress verify: replay the journal, read every block it mentions from
 * the backing files, and put each block in exactly one class.
 *
 * Per block the journal gives:
 *   A   the latest acknowledged generation (a W record with ret == block
 *       size); 0 if none;
 *   FG  the latest generation an fsync covers: an acknowledged generation g
 *       is covered when an fsync of its file recorded after g's ack
 *       returned 0 (STRICT, the default: the fsync contract of pressurefs'
 *       README, since a failed writeback keeps the data dirty), or — with STRESS_FSYNC_ERRSEQ —
 *       only when the FIRST fsync after the ack returned 0: a failed fsync
 *       consumes the error the way Linux does, and the writes before it
 *       stay uncovered even if a later fsync returns 0;
 *   the latest attempt: acknowledged, refused (error or short count), or in
 *       flight (an I record with no W after it: the run died in the call);
 *   the short writes (generation, count) the application was told about.
 *
 * The block on disk (bytes past the end of file read as zeros) shows a
 * generation P:
 *   a hole (all zeros)                          P = 0
 *   a valid block of generation g <= the highest generation journaled for
 *       it (acked, refused or in flight)        P = g
 *   the first c bytes of generation s followed by bytes of a hole or of an
 *       older generation p, for a short write (s, c) in the journal: P = p
 *   anything else: bad checksum, mixed generations no short write explains,
 *       a foreign block, a generation never written, a read error.
 *
 * Classes, in precedence order (the first that applies wins):
 *   1. torn_or_corrupt   anything else, above;
 *   2. lost_after_fsync  P < FG: an fsync returned 0 and the block holds
 *                        neither that generation nor a later one;
 *   3. lost_after_write  P < A: acknowledged by write() and gone;
 *   4. refused           A == 0 (never acknowledged), or the latest attempt
 *                        was refused and the block holds A or the refused
 *                        data (whole, or the short count's prefix over A);
 *   5. intact            P >= A > 0 and the latest attempt was not refused.
 * After a crash lost_after_write and torn_or_corrupt of blocks written
 * after their last good fsync may be non-zero. lost_after_fsync, and torn
 * blocks whose last write an fsync covered (torn_fsynced), never may: the
 * verifier exits 1 when either is non-zero. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stress_i.h"

/* How far back a short write's untouched tail is searched for the
 * generation it kept. */
#define VERIFY_SHORT_LOOKBACK 4096u

enum verify_attempt {
	VERIFY_ATTEMPT_NONE,
	VERIFY_ATTEMPT_ACKED,
	VERIFY_ATTEMPT_REFUSED,
	VERIFY_ATTEMPT_IN_FLIGHT,
};

struct verify_short {
	uint64_t gen;
	uint32_t count;
};

struct verify_block {
	uint64_t max_gen;   /* highest generation in any I or W record */
	uint64_t acked;	    /* A */
	uint64_t acked_seq; /* journal record number of A's ack */
	uint64_t fsynced;   /* FG */
	uint8_t attempt;    /* enum verify_attempt of the latest attempt */
	uint32_t nshort;
	struct verify_short *shorts;
};

struct verify_fsync {
	uint64_t seq;
	bool ok;
};

struct verify_file {
	struct verify_fsync *fsyncs; /* in journal order */
	size_t nfsyncs, cap;
	bool any_ok;	      /* an fsync of the file returned 0 */
	uint64_t last_ok_seq; /* journal position of the latest such */
};

struct verify_state {
	enum stress_fsync_promise promise;
	struct stress_geometry geo;
	uint64_t nblocks; /* per file */
	struct verify_block *blocks;
	struct verify_file *files;
};

static const char *const class_names[STRESS_CLASS_COUNT] = {
	[STRESS_CLASS_TORN_OR_CORRUPT] = "torn_or_corrupt",
	[STRESS_CLASS_LOST_AFTER_FSYNC] = "lost_after_fsync",
	[STRESS_CLASS_LOST_AFTER_WRITE] = "lost_after_write",
	[STRESS_CLASS_REFUSED] = "refused",
	[STRESS_CLASS_INTACT] = "intact",
};

const char *stress_class_name(enum stress_class cls)
{
	return cls < STRESS_CLASS_COUNT ? class_names[cls] : "?";
}

/* Covers A with FG if an fsync after A's ack succeeded (STRICT), or the
 * first fsync after it did (ERRSEQ). Only fsyncs journaled so far count. */
static void verify_block_settle(struct verify_block *vb, const struct verify_file *vf,
				enum stress_fsync_promise promise)
{
	size_t lo = 0, hi = vf->nfsyncs;

	if (!vb->acked || vb->fsynced >= vb->acked)
		return;
	if (promise == STRESS_FSYNC_STRICT) {
		if (vf->any_ok && vf->last_ok_seq > vb->acked_seq)
			vb->fsynced = vb->acked;
		return;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (vf->fsyncs[mid].seq > vb->acked_seq)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (lo < vf->nfsyncs && vf->fsyncs[lo].ok)
		vb->fsynced = vb->acked;
}

static int verify_record_apply(struct verify_state *vs, const struct stress_record *rec,
			       uint64_t seq)
{
	struct verify_block *vb;
	struct verify_file *vf;

	if (rec->type == STRESS_REC_START || rec->type == STRESS_REC_END ||
	    rec->type == STRESS_REC_OPEN)
		return 0;
	if (rec->file >= vs->geo.files)
		return -EINVAL;
	vf = &vs->files[rec->file];
	if (rec->type == STRESS_REC_FSYNC) {
		if (vf->nfsyncs == vf->cap) {
			size_t cap = vf->cap ? vf->cap * 2 : 64;
			struct verify_fsync *grown = realloc(vf->fsyncs, cap * sizeof(*grown));

			if (!grown)
				return -ENOMEM;
			vf->fsyncs = grown;
			vf->cap = cap;
		}
		vf->fsyncs[vf->nfsyncs++] = (struct verify_fsync){seq, rec->ret == 0};
		if (rec->ret == 0) {
			vf->any_ok = true;
			vf->last_ok_seq = seq;
		}
		return 0;
	}
	if (rec->block >= vs->nblocks)
		return -EINVAL;
	vb = &vs->blocks[(uint64_t)rec->file * vs->nblocks + rec->block];
	if (rec->type == STRESS_REC_INTENT) {
		if (rec->gen >= vb->max_gen)
			vb->attempt = VERIFY_ATTEMPT_IN_FLIGHT;
	} else if (rec->ret == (int64_t)vs->geo.block_size) {
		verify_block_settle(vb, vf, vs->promise);
		if (rec->gen > vb->acked) {
			vb->acked = rec->gen;
			vb->acked_seq = seq;
		}
		if (rec->gen >= vb->max_gen)
			vb->attempt = VERIFY_ATTEMPT_ACKED;
	} else if (rec->ret > (int64_t)vs->geo.block_size) {
		return -EINVAL;
	} else {
		if (rec->ret >= 0) {
			struct verify_short *grown =
				realloc(vb->shorts, (vb->nshort + 1) * sizeof(*grown));

			if (!grown)
				return -ENOMEM;
			vb->shorts = grown;
			vb->shorts[vb->nshort++] =
				(struct verify_short){rec->gen, (uint32_t)rec->ret};
		}
		if (rec->gen >= vb->max_gen)
			vb->attempt = VERIFY_ATTEMPT_REFUSED;
	}
	if (rec->gen > vb->max_gen)
		vb->max_gen = rec->gen;
	return 0;
}

static int journal_slurp(const char *path, char **data, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t done = 0;
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out_close;
	}
	*data = malloc((size_t)st.st_size + 1);
	if (!*data) {
		ret = -ENOMEM;
		goto out_close;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, *data + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			free(*data);
			goto out_close;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*len = done;
out_close:
	close(fd);
	return ret;
}

static int verify_journal_load(struct verify_state *vs, const char *path,
			       struct stress_verify_result *res, char *why, size_t why_len)
{
	char *data = NULL;
	size_t len = 0, pos = 0;
	uint64_t seq = 0;
	bool started = false;
	int ret = journal_slurp(path, &data, &len);

	if (ret) {
		snprintf(why, why_len, "cannot read journal %s: %s", path, strerror(-ret));
		return ret;
	}
	while (pos < len) {
		char *nl = memchr(data + pos, '\n', len - pos);
		size_t llen;
		struct stress_record rec;

		if (!nl) {
			/* The writer died in its last write(): ignore the tail. */
			res->journal_partial_tail = true;
			break;
		}
		llen = (size_t)(nl - (data + pos));
		seq++;
		if (!started) {
			ret = stress_record_parse_start(data + pos, llen, &vs->geo);
			if (ret) {
				snprintf(why, why_len,
					 "journal %s does not begin with a valid "
					 "start record",
					 path);
				goto out_free;
			}
			started = true;
			vs->nblocks = vs->geo.file_size / vs->geo.block_size;
			vs->blocks = calloc(vs->geo.files * vs->nblocks, sizeof(*vs->blocks));
			vs->files = calloc(vs->geo.files, sizeof(*vs->files));
			if (!vs->blocks || !vs->files) {
				ret = -ENOMEM;
				snprintf(why, why_len, "out of memory for %" PRIu32 " files",
					 vs->geo.files);
				goto out_free;
			}
		} else if (stress_record_parse(data + pos, llen, &rec) ||
			   rec.type == STRESS_REC_START) {
			res->journal_bad_lines++;
		} else {
			ret = verify_record_apply(vs, &rec, seq);
			if (ret == -ENOMEM) {
				snprintf(why, why_len, "out of memory reading the journal");
				goto out_free;
			}
			if (ret)
				res->journal_bad_lines++;
			else
				res->journal_records++;
			if (rec.type == STRESS_REC_END)
				res->journal_ended = true;
			ret = 0;
		}
		pos += llen + 1;
	}
	if (!started) {
		ret = -EINVAL;
		snprintf(why, why_len, "journal %s has no start record", path);
	}
out_free:
	free(data);
	return ret;
}

/* Does a short write of this block explain data? On success *kept is the
 * generation (0 = hole) whose bytes the tail still holds. */
static bool verify_short_explains(const struct verify_block *vb, const uint8_t *data,
				  struct stress_block_id id, uint8_t *scratch, uint64_t *kept)
{
	uint32_t bs = id.block_size;

	for (uint32_t i = 0; i < vb->nshort; i++) {
		uint32_t c = vb->shorts[i].count;
		uint64_t s = vb->shorts[i].gen;
		bool zero_tail = true;

		id.gen = s;
		stress_block_fill(scratch, &id);
		if (memcmp(data, scratch, c))
			continue;
		for (uint32_t k = c; k < bs && zero_tail; k++)
			zero_tail = data[k] == 0;
		if (zero_tail) {
			*kept = 0;
			return true;
		}
		for (uint64_t p = s - 1, n = 0; p >= 1 && n < VERIFY_SHORT_LOOKBACK; p--, n++) {
			id.gen = p;
			stress_block_fill(scratch, &id);
			if (!memcmp(data + c, scratch + c, bs - c)) {
				*kept = p;
				return true;
			}
		}
	}
	return false;
}

/* data is NULL when the block could not be read. */
static enum stress_class verify_block_classify(const struct verify_block *vb, const uint8_t *data,
					       const struct stress_block_id *id, uint8_t *scratch,
					       int64_t *found)
{
	uint64_t present = 0;

	*found = -1;
	if (!data)
		return STRESS_CLASS_TORN_OR_CORRUPT;
	switch (stress_block_inspect(data, id, &present)) {
	case STRESS_BLOCK_HOLE:
		present = 0;
		break;
	case STRESS_BLOCK_VALID:
		if (present > vb->max_gen)
			return STRESS_CLASS_TORN_OR_CORRUPT;
		break;
	case STRESS_BLOCK_BAD:
		if (!verify_short_explains(vb, data, *id, scratch, &present))
			return STRESS_CLASS_TORN_OR_CORRUPT;
		break;
	}
	*found = (int64_t)present;
	if (present < vb->fsynced)
		return STRESS_CLASS_LOST_AFTER_FSYNC;
	if (present < vb->acked)
		return STRESS_CLASS_LOST_AFTER_WRITE;
	if (!vb->acked || vb->attempt == VERIFY_ATTEMPT_REFUSED)
		return STRESS_CLASS_REFUSED;
	return STRESS_CLASS_INTACT;
}

/* Reads block b of fd into buf, zero-filling past the end of file.
 * Returns 0 or -errno. fd < 0 means the file does not exist. */
static int verify_block_read(int fd, uint8_t *buf, uint32_t bs, uint64_t block)
{
	size_t done = 0;

	memset(buf, 0, bs);
	while (fd >= 0 && done < bs) {
		ssize_t n = pread(fd, buf + done, bs - done, (off_t)(block * bs + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return 0;
}

static void verify_note(struct stress_verify_result *res, enum stress_class cls,
			const struct verify_block *vb, uint32_t file, uint64_t block, int64_t found)
{
	bool fsynced = vb->fsynced && vb->fsynced == vb->max_gen;
	struct stress_verify_example *ex;

	res->blocks++;
	res->count[cls]++;
	res->bytes[cls] += res->geo.block_size;
	if (cls == STRESS_CLASS_TORN_OR_CORRUPT) {
		if (fsynced)
			res->torn_fsynced++;
		else
			res->torn_unfsynced++;
	}
	if (cls != STRESS_CLASS_LOST_AFTER_FSYNC &&
	    !(cls == STRESS_CLASS_TORN_OR_CORRUPT && fsynced))
		return;
	if (res->examples >= STRESS_VERIFY_EXAMPLES)
		return;
	ex = &res->example[res->examples++];
	*ex = (struct stress_verify_example){cls, file, block, vb->acked, vb->fsynced, found};
}

static int verify_files_scan(struct verify_state *vs, const char *dir,
			     struct stress_verify_result *res, char *why, size_t why_len)
{
	uint32_t bs = vs->geo.block_size;
	uint8_t *buf = malloc(bs);
	uint8_t *scratch = malloc(bs);
	int ret = 0;

	if (!buf || !scratch) {
		ret = -ENOMEM;
		snprintf(why, why_len, "out of memory");
		goto out_free;
	}
	for (uint32_t f = 0; f < vs->geo.files; f++) {
		struct verify_file *vf = &vs->files[f];
		char path[4096];
		int fd;

		snprintf(path, sizeof(path), "%s/f%04" PRIu32 ".dat", dir, f);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && errno != ENOENT) {
			ret = -errno;
			snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
			goto out_free;
		}
		for (uint64_t b = 0; b < vs->nblocks; b++) {
			struct verify_block *vb = &vs->blocks[(uint64_t)f * vs->nblocks + b];
			struct stress_block_id id = {
				.seed = vs->geo.seed, .file = f, .block_size = bs, .block = b};
			enum stress_class cls;
			int64_t found;

			if (!vb->max_gen)
				continue; /* the journal never mentions it */
			verify_block_settle(vb, vf, vs->promise);
			cls = verify_block_classify(vb,
						    verify_block_read(fd, buf, bs, b) ? NULL : buf,
						    &id, scratch, &found);
			verify_note(res, cls, vb, f, b, found);
		}
		if (fd >= 0)
			close(fd);
	}
out_free:
	free(buf);
	free(scratch);
	return ret;
}

static void verify_state_free(struct verify_state *vs)
{
	if (vs->blocks)
		for (uint64_t i = 0; i < (uint64_t)vs->geo.files * vs->nblocks; i++)
			free(vs->blocks[i].shorts);
	if (vs->files)
		for (uint32_t f = 0; f < vs->geo.files; f++)
			free(vs->files[f].fsyncs);
	free(vs->blocks);
	free(vs->files);
}

int stress_verify_run(const char *dir, const char *journal_path,
		      const struct stress_verify_options *opts, struct stress_verify_result *res,
		      char *why, size_t why_len)
{
	struct verify_state vs;
	struct stat st;
	int ret;

	memset(res, 0, sizeof(*res));
	memset(&vs, 0, sizeof(vs));
	vs.promise = opts ? opts->promise : STRESS_FSYNC_STRICT;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(why, why_len, "--dir %s: not a readable directory", dir);
		return -ENOTDIR;
	}
	ret = verify_journal_load(&vs, journal_path, res, why, why_len);
	if (!ret) {
		res->geo = vs.geo;
		ret = verify_files_scan(&vs, dir, res, why, why_len);
	}
	verify_state_free(&vs);
	return ret;
}

bool stress_verify_invariant_holds(const struct stress_verify_result *res)
{
	return res->count[STRESS_CLASS_LOST_AFTER_FSYNC] == 0 && res->torn_fsynced == 0;
}
