/*
 * pfs-fsx: a model-checking random exerciser in the spirit of fsx.
 *
 *   pfs-fsx --file PATH [--seed S] [--ops N] [--maxlen N] [--maxop N]
 *           [--nfiles K] [--check-every N] [--remount-every N --remount-cmd CMD]
 *           [--no-mmap] [--no-fallocate] [--no-copy-range] [--no-seek] [--quiet]
 *
 * Random reads, writes (aligned and not, up to --maxop bytes, some far past
 * EOF so that holes appear), truncates up and down, punched and zeroed
 * ranges, fallocate, copy_file_range between files, SEEK_DATA/SEEK_HOLE,
 * mmap reads and writes,
 * fsync, fdatasync, close/reopen (sometimes with O_TRUNC) and "remounts" run
 * against an in-memory model of every file's bytes and size.
 * Every read, every fstat and, every --check-every operations, the whole file
 * are compared with the model. A remount closes every file, runs CMD through
 * /bin/sh, reopens and checks every file: the command is expected to unmount
 * and mount the same backing directory again, so what survives it is what
 * was flushed at unmount.
 *
 * The seed is printed first; the same seed and flags replay the same run.
 * On a mismatch: the file, the first bad offset, expected and found bytes,
 * which logged operation last wrote there, the tail of the operation log and
 * the replay command; exit status 1. Usage errors exit 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FSX_LOG_SIZE  1024 /* operations kept for the failure report */
#define FSX_LOG_SHOWN 40   /* of which printed */
#define FSX_MAX_FILES 16

enum fsx_op_type {
	FSX_OP_READ,
	FSX_OP_WRITE,
	FSX_OP_MAPREAD,
	FSX_OP_MAPWRITE,
	FSX_OP_TRUNCATE,
	FSX_OP_PUNCH,
	FSX_OP_FALLOCATE,
	FSX_OP_ZERO_RANGE,
	FSX_OP_COPY_RANGE,
	FSX_OP_SEEK,
	FSX_OP_FSYNC,
	FSX_OP_FDATASYNC,
	FSX_OP_REOPEN,
	FSX_OP_REOPEN_TRUNC,
	FSX_OP_REMOUNT,
	FSX_OP_CHECK,
	FSX_OP_COUNT
};

static const char *const fsx_op_names[FSX_OP_COUNT] = {
	[FSX_OP_READ] = "read",
	[FSX_OP_WRITE] = "write",
	[FSX_OP_MAPREAD] = "mapread",
	[FSX_OP_MAPWRITE] = "mapwrite",
	[FSX_OP_TRUNCATE] = "truncate",
	[FSX_OP_PUNCH] = "punch_hole",
	[FSX_OP_FALLOCATE] = "fallocate",
	[FSX_OP_ZERO_RANGE] = "zero_range",
	[FSX_OP_COPY_RANGE] = "copy_range",
	[FSX_OP_SEEK] = "seek_data_hole",
	[FSX_OP_FSYNC] = "fsync",
	[FSX_OP_FDATASYNC] = "fdatasync",
	[FSX_OP_REOPEN] = "reopen",
	[FSX_OP_REOPEN_TRUNC] = "reopen_otrunc",
	[FSX_OP_REMOUNT] = "remount",
	[FSX_OP_CHECK] = "check",
};

/* Relative frequency of each randomly chosen operation. */
static const unsigned fsx_op_weights[FSX_OP_COUNT] = {
	[FSX_OP_READ] = 24,	[FSX_OP_WRITE] = 30,	   [FSX_OP_MAPREAD] = 5,
	[FSX_OP_MAPWRITE] = 5,	[FSX_OP_TRUNCATE] = 10,	   [FSX_OP_PUNCH] = 4,
	[FSX_OP_FALLOCATE] = 2, [FSX_OP_ZERO_RANGE] = 2,   [FSX_OP_COPY_RANGE] = 3,
	[FSX_OP_SEEK] = 3,	[FSX_OP_FSYNC] = 4,	   [FSX_OP_FDATASYNC] = 3,
	[FSX_OP_REOPEN] = 4,	[FSX_OP_REOPEN_TRUNC] = 1,
};

struct fsx_log_entry {
	uint64_t n; /* operation number, from 1 */
	enum fsx_op_type type;
	unsigned file;
	uint64_t off, len;
	uint64_t size_before, size_after;
	unsigned src_file; /* copy_range: where the bytes came from */
	uint64_t src_off;
};

struct fsx_file {
	char *path;
	int fd;
	unsigned char *model; /* maxlen bytes; [size, maxlen) always zero */
	uint64_t size;
};

struct fsx_config {
	const char *path;
	uint64_t seed;
	uint64_t ops;
	uint64_t maxlen;
	uint64_t maxop;
	uint64_t check_every;
	uint64_t remount_every;
	const char *remount_cmd;
	const char *save_model;
	unsigned nfiles;
	bool mmap;
	bool punch;
	bool fallocate;
	bool zero_range;
	bool copy_range;
	bool seek;
	bool quiet;
};

struct fsx_state {
	struct fsx_config cfg;
	int argc;
	char **argv;
	uint64_t rng;
	uint64_t opnum;
	struct fsx_file files[FSX_MAX_FILES];
	struct fsx_log_entry log[FSX_LOG_SIZE];
	uint64_t counts[FSX_OP_COUNT];
	unsigned char *buf; /* maxop bytes, for reads and writes */
	long page_size;
};

static struct fsx_state fsx;

/* ---- random numbers: splitmix64, so one seed is one run on every libc ---- */

static uint64_t fsx_rand(void)
{
	uint64_t z = (fsx.rng += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n); n > 0. */
static uint64_t fsx_rand_below(uint64_t n)
{
	return fsx_rand() % n;
}

/* Mostly small, sometimes up to max: uniform in the exponent. */
static uint64_t fsx_rand_len(uint64_t max)
{
	unsigned bits = 0;

	while ((1ull << bits) < max)
		bits++;
	uint64_t len = 1 + fsx_rand_below(1ull << fsx_rand_below(bits + 1));
	return len > max ? max : len;
}

/* Page-aligned (64 KiB: the daemon's default page), block-aligned or not. */
static uint64_t fsx_rand_align(uint64_t v)
{
	uint64_t r = fsx_rand_below(10);

	if (r < 1)
		return v & ~(uint64_t)0xffff;
	if (r < 4)
		return v & ~(uint64_t)0xfff;
	return v;
}

/* The byte op N writes at offset off: never zero (zero means hole or
 * truncated), position-dependent so a misplaced block is caught too. */
static unsigned char fsx_pattern(uint64_t n, uint64_t off)
{
	return (unsigned char)(1 + (n * 131 + off * 7 + (off >> 12) * 13) % 255);
}

/* ---- the operation log and the failure report ---- */

static struct fsx_log_entry *fsx_log_add(enum fsx_op_type type, unsigned file, uint64_t off,
					 uint64_t len)
{
	struct fsx_log_entry *e = &fsx.log[fsx.opnum % FSX_LOG_SIZE];

	*e = (struct fsx_log_entry){
		.n = fsx.opnum,
		.type = type,
		.file = file,
		.off = off,
		.len = len,
		.size_before = fsx.files[file].size,
		.size_after = fsx.files[file].size,
	};
	fsx.counts[type]++;
	return e;
}

static void fsx_log_print_entry(const struct fsx_log_entry *e)
{
	fprintf(stderr, "  #%-8" PRIu64 " %-13s file %u", e->n, fsx_op_names[e->type], e->file);
	switch (e->type) {
	case FSX_OP_READ:
	case FSX_OP_WRITE:
	case FSX_OP_MAPREAD:
	case FSX_OP_MAPWRITE:
	case FSX_OP_PUNCH:
	case FSX_OP_FALLOCATE:
	case FSX_OP_ZERO_RANGE:
		fprintf(stderr, " [0x%" PRIx64 ", 0x%" PRIx64 ") len 0x%" PRIx64, e->off,
			e->off + e->len, e->len);
		break;
	case FSX_OP_COPY_RANGE:
		fprintf(stderr, " [0x%" PRIx64 ", 0x%" PRIx64 ") from file %u at 0x%" PRIx64,
			e->off, e->off + e->len, e->src_file, e->src_off);
		break;
	case FSX_OP_TRUNCATE:
		fprintf(stderr, " to 0x%" PRIx64, e->off);
		break;
	case FSX_OP_SEEK:
		fprintf(stderr, " from 0x%" PRIx64, e->off);
		break;
	default:
		break;
	}
	if (e->size_before != e->size_after)
		fprintf(stderr, " size 0x%" PRIx64 " -> 0x%" PRIx64, e->size_before, e->size_after);
	fputc('\n', stderr);
}

static void fsx_log_print_tail(void)
{
	uint64_t first = fsx.opnum > FSX_LOG_SHOWN ? fsx.opnum - FSX_LOG_SHOWN + 1 : 1;

	fprintf(stderr, "pfs-fsx: last %" PRIu64 " operations:\n", fsx.opnum - first + 1);
	for (uint64_t n = first; n <= fsx.opnum; n++)
		fsx_log_print_entry(&fsx.log[n % FSX_LOG_SIZE]);
}

static void fsx_print_replay(void)
{
	bool has_seed = false;

	fprintf(stderr, "pfs-fsx: replay with:");
	for (int i = 0; i < fsx.argc; i++) {
		fprintf(stderr, " '%s'", fsx.argv[i]);
		if (!strcmp(fsx.argv[i], "--seed"))
			has_seed = true;
	}
	if (!has_seed)
		fprintf(stderr, " --seed %" PRIu64, fsx.cfg.seed);
	fputc('\n', stderr);
}

static __attribute__((noreturn, format(printf, 1, 2))) void fsx_fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "pfs-fsx: FAIL at operation #%" PRIu64 " (seed %" PRIu64 "): ", fsx.opnum,
		fsx.cfg.seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fsx_log_print_tail();
	fsx_print_replay();
	exit(1);
}

/* Which logged operation last changed byte off of file f (0: none logged). */
static const struct fsx_log_entry *fsx_log_last_writer(unsigned f, uint64_t off)
{
	uint64_t first = fsx.opnum >= FSX_LOG_SIZE ? fsx.opnum - FSX_LOG_SIZE + 1 : 1;

	for (uint64_t n = fsx.opnum; n >= first && n > 0; n--) {
		const struct fsx_log_entry *e = &fsx.log[n % FSX_LOG_SIZE];

		if (e->file != f)
			continue;
		switch (e->type) {
		case FSX_OP_WRITE:
		case FSX_OP_MAPWRITE:
		case FSX_OP_PUNCH:
		case FSX_OP_ZERO_RANGE:
		case FSX_OP_COPY_RANGE:
			if (off >= e->off && off < e->off + e->len)
				return e;
			break;
		case FSX_OP_TRUNCATE:
			if (off >= e->off && off < e->size_before)
				return e;
			break;
		case FSX_OP_REOPEN_TRUNC:
			if (off < e->size_before)
				return e;
			break;
		default:
			break;
		}
	}
	return NULL;
}

/* Which logged write would have put byte got at off (the stale or misplaced
 * data's origin). */
static const struct fsx_log_entry *fsx_log_origin(unsigned f, uint64_t off, unsigned char got)
{
	uint64_t first = fsx.opnum >= FSX_LOG_SIZE ? fsx.opnum - FSX_LOG_SIZE + 1 : 1;

	for (uint64_t n = fsx.opnum; n >= first && n > 0; n--) {
		const struct fsx_log_entry *e = &fsx.log[n % FSX_LOG_SIZE];

		if (e->file == f && (e->type == FSX_OP_WRITE || e->type == FSX_OP_MAPWRITE) &&
		    off >= e->off && off < e->off + e->len && fsx_pattern(e->n, off) == got)
			return e;
	}
	return NULL;
}

static void fsx_hex_line(const char *what, const unsigned char *p, uint64_t base, uint64_t from,
			 uint64_t to)
{
	fprintf(stderr, "  %-9s 0x%08" PRIx64 ":", what, from);
	for (uint64_t i = from; i < to; i++)
		fprintf(stderr, " %02x", p[i - base]);
	fputc('\n', stderr);
}

/* got holds [off, off+len) of file f as read; report the first difference. */
static __attribute__((noreturn)) void fsx_report_mismatch(unsigned f, const char *how, uint64_t off,
							  uint64_t len, const unsigned char *got)
{
	const unsigned char *want = fsx.files[f].model + off;
	uint64_t bad = 0, nbad = 0, last_bad = 0;

	for (uint64_t i = 0; i < len; i++) {
		if (got[i] != want[i]) {
			if (!nbad)
				bad = i;
			nbad++;
			last_bad = i;
		}
	}
	fflush(stdout);
	fprintf(stderr,
		"pfs-fsx: MISMATCH in %s (%s of [0x%" PRIx64 ", 0x%" PRIx64 ")), seed %" PRIu64
		", operation #%" PRIu64 "\n",
		fsx.files[f].path, how, off, off + len, fsx.cfg.seed, fsx.opnum);
	fprintf(stderr,
		"  first bad offset 0x%" PRIx64 " (%" PRIu64 "): expected 0x%02x, got 0x%02x; "
		"%" PRIu64 " bad bytes up to 0x%" PRIx64 "; model size 0x%" PRIx64 "\n",
		off + bad, off + bad, want[bad], got[bad], nbad, off + last_bad, fsx.files[f].size);
	uint64_t from = bad >= 8 ? bad - 8 : 0;
	uint64_t to = bad + 24 < len ? bad + 24 : len;
	fsx_hex_line("expected", want, 0, from, to);
	fsx_hex_line("got", got, 0, from, to);
	const struct fsx_log_entry *w = fsx_log_last_writer(f, off + bad);
	if (w)
		fprintf(stderr, "  the expected byte comes from operation #%" PRIu64 " (%s)\n",
			w->n, fsx_op_names[w->type]);
	else
		fprintf(stderr, "  no logged operation changed that offset\n");
	const struct fsx_log_entry *o = fsx_log_origin(f, off + bad, got[bad]);
	if (got[bad] == 0)
		fprintf(stderr, "  the found byte is zero: a hole, a lost write or a truncate\n");
	else if (o)
		fprintf(stderr,
			"  the found byte matches what operation #%" PRIu64 " wrote there\n", o->n);
	else
		fprintf(stderr, "  the found byte matches no logged write at that offset\n");
	fsx_log_print_tail();
	fsx_print_replay();
	exit(1);
}

/* ---- file handling ---- */

static void fsx_file_open(unsigned f, int extra_flags)
{
	struct fsx_file *file = &fsx.files[f];

	file->fd = open(file->path, O_RDWR | O_CREAT | extra_flags, 0644);
	if (file->fd < 0)
		fsx_fail("open %s: %s", file->path, strerror(errno));
}

static void fsx_file_close(unsigned f)
{
	struct fsx_file *file = &fsx.files[f];

	if (close(file->fd))
		fsx_fail("close %s: %s", file->path, strerror(errno));
	file->fd = -1;
}

static void fsx_check_size(unsigned f, const char *after)
{
	struct stat st;

	if (fstat(fsx.files[f].fd, &st))
		fsx_fail("fstat %s: %s", fsx.files[f].path, strerror(errno));
	if ((uint64_t)st.st_size != fsx.files[f].size)
		fsx_fail("%s: size after %s is 0x%jx (%jd), the model says 0x%" PRIx64 " (%" PRIu64
			 ")",
			 fsx.files[f].path, after, (uintmax_t)st.st_size, (intmax_t)st.st_size,
			 fsx.files[f].size, fsx.files[f].size);
}

/* pread exactly [off, off+len) clipped at EOF; returns the bytes read. */
static uint64_t fsx_pread_all(unsigned f, unsigned char *buf, uint64_t off, uint64_t len)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t n = pread(fsx.files[f].fd, buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fsx_fail("pread %s [0x%" PRIx64 ", +0x%" PRIx64 "): %s", fsx.files[f].path,
				 off + done, len - done, strerror(errno));
		if (n == 0)
			break;
		done += (uint64_t)n;
	}
	return done;
}

static void fsx_compare(unsigned f, const char *how, uint64_t off, uint64_t len,
			const unsigned char *got, uint64_t got_len)
{
	uint64_t want_len =
		off >= fsx.files[f].size
			? 0
			: (len < fsx.files[f].size - off ? len : fsx.files[f].size - off);

	if (got_len != want_len)
		fsx_fail("%s: %s at 0x%" PRIx64 " of 0x%" PRIx64 " bytes returned 0x%" PRIx64
			 ", the model (size 0x%" PRIx64 ") says 0x%" PRIx64,
			 fsx.files[f].path, how, off, len, got_len, fsx.files[f].size, want_len);
	if (memcmp(got, fsx.files[f].model + off, got_len))
		fsx_report_mismatch(f, how, off, got_len, got);
}

/* Read the whole file in maxop chunks and compare with the model. */
static void fsx_check_file(unsigned f, const char *why)
{
	uint64_t size = fsx.files[f].size;

	fsx_check_size(f, why);
	for (uint64_t off = 0; off < size; off += fsx.cfg.maxop) {
		uint64_t len = size - off < fsx.cfg.maxop ? size - off : fsx.cfg.maxop;
		uint64_t got = fsx_pread_all(f, fsx.buf, off, len);
		fsx_compare(f, why, off, len, fsx.buf, got);
	}
	/* Nothing past the end either. */
	if (fsx_pread_all(f, fsx.buf, size, 1) != 0)
		fsx_fail("%s: %s: a byte can be read at the model's EOF 0x%" PRIx64,
			 fsx.files[f].path, why, size);
}

/* The model's effect of a size change: bytes past a new, smaller EOF are
 * gone, so they read back as zero if the file grows again. */
static void fsx_model_resize(unsigned f, uint64_t size)
{
	struct fsx_file *file = &fsx.files[f];

	if (size < file->size)
		memset(file->model + size, 0, file->size - size);
	file->size = size;
}

/* ---- operations ---- */

/* An offset for a write: mostly inside or just past the file, sometimes far
 * past EOF to make a hole. The result plus len stays within maxlen. */
static uint64_t fsx_pick_write_off(unsigned f, uint64_t len)
{
	uint64_t size = fsx.files[f].size, room = fsx.cfg.maxlen - len, off;

	if (fsx_rand_below(10) == 0 || size == 0)
		off = fsx_rand_below(room + 1);
	else
		off = fsx_rand_below(size + 1);
	off = fsx_rand_align(off);
	return off > room ? room : off;
}

static void fsx_op_read(unsigned f)
{
	uint64_t size = fsx.files[f].size;
	uint64_t len = fsx_rand_len(fsx.cfg.maxop);
	/* A few reads start at or past EOF: they must return nothing. */
	uint64_t off = fsx_rand_align(fsx_rand_below(size + size / 16 + 2));

	fsx_log_add(FSX_OP_READ, f, off, len);
	uint64_t got = fsx_pread_all(f, fsx.buf, off, len);
	fsx_compare(f, "read", off, len, fsx.buf, got);
}

static void fsx_op_write(unsigned f)
{
	struct fsx_file *file = &fsx.files[f];
	uint64_t len = fsx_rand_len(fsx.cfg.maxop);
	uint64_t off = fsx_pick_write_off(f, len);
	struct fsx_log_entry *e = fsx_log_add(FSX_OP_WRITE, f, off, len);

	for (uint64_t i = 0; i < len; i++)
		fsx.buf[i] = fsx_pattern(fsx.opnum, off + i);
	ssize_t n = pwrite(file->fd, fsx.buf, len, (off_t)off);
	if (n < 0)
		fsx_fail("pwrite %s [0x%" PRIx64 ", +0x%" PRIx64 "): %s", file->path, off, len,
			 strerror(errno));
	if ((uint64_t)n != len)
		fsx_fail("pwrite %s [0x%" PRIx64 ", +0x%" PRIx64 "): short count 0x%zx", file->path,
			 off, len, n);
	memcpy(file->model + off, fsx.buf, len);
	if (off + len > file->size)
		file->size = off + len;
	e->size_after = file->size;
}

/* Map [off, off+len) (the mapping starts on a page boundary). */
static unsigned char *fsx_map(unsigned f, uint64_t off, uint64_t len, int prot, uint64_t *delta,
			      size_t *maplen)
{
	uint64_t start = off & ~(uint64_t)(fsx.page_size - 1);

	*delta = off - start;
	*maplen = (size_t)(len + *delta);
	void *p = mmap(NULL, *maplen, prot, MAP_SHARED, fsx.files[f].fd, (off_t)start);
	if (p == MAP_FAILED)
		fsx_fail("mmap %s [0x%" PRIx64 ", +0x%zx): %s", fsx.files[f].path, start, *maplen,
			 strerror(errno));
	return p;
}

static void fsx_op_mapread(unsigned f)
{
	uint64_t size = fsx.files[f].size, delta;
	size_t maplen;

	if (size == 0) {
		fsx_log_add(FSX_OP_MAPREAD, f, 0, 0);
		return;
	}
	uint64_t off = fsx_rand_align(fsx_rand_below(size));
	uint64_t len = fsx_rand_len(fsx.cfg.maxop);
	if (len > size - off)
		len = size - off;
	fsx_log_add(FSX_OP_MAPREAD, f, off, len);
	unsigned char *p = fsx_map(f, off, len, PROT_READ, &delta, &maplen);
	memcpy(fsx.buf, p + delta, len);
	munmap(p, maplen);
	fsx_compare(f, "mapread", off, len, fsx.buf, len);
}

/* A store through a shared mapping; the file is first extended with
 * ftruncate, since a mapping cannot grow it. */
static void fsx_op_mapwrite(unsigned f)
{
	struct fsx_file *file = &fsx.files[f];
	uint64_t len = fsx_rand_len(fsx.cfg.maxop), delta;
	uint64_t off = fsx_pick_write_off(f, len);
	size_t maplen;
	struct fsx_log_entry *e = fsx_log_add(FSX_OP_MAPWRITE, f, off, len);

	if (off + len > file->size) {
		if (ftruncate(file->fd, (off_t)(off + len)))
			fsx_fail("ftruncate %s to 0x%" PRIx64 " before mapwrite: %s", file->path,
				 off + len, strerror(errno));
		file->size = off + len;
	}
	unsigned char *p = fsx_map(f, off, len, PROT_READ | PROT_WRITE, &delta, &maplen);
	for (uint64_t i = 0; i < len; i++)
		p[delta + i] = fsx_pattern(fsx.opnum, off + i);
	/* Half of them are synced, half left to munmap and writeback. */
	if (fsx_rand_below(2) && msync(p, maplen, MS_SYNC))
		fsx_fail("msync %s: %s", file->path, strerror(errno));
	if (munmap(p, maplen))
		fsx_fail("munmap %s: %s", file->path, strerror(errno));
	for (uint64_t i = 0; i < len; i++)
		file->model[off + i] = fsx_pattern(fsx.opnum, off + i);
	e->size_after = file->size;
}

static void fsx_op_truncate(unsigned f)
{
	struct fsx_file *file = &fsx.files[f];
	uint64_t size;

	if (fsx_rand_below(2) && file->size > 0)
		size = fsx_rand_below(file->size); /* down */
	else
		size = file->size + fsx_rand_below(fsx.cfg.maxlen - file->size + 1); /* up */
	size = fsx_rand_align(size);
	struct fsx_log_entry *e = fsx_log_add(FSX_OP_TRUNCATE, f, size, 0);
	if (ftruncate(file->fd, (off_t)size))
		fsx_fail("ftruncate %s to 0x%" PRIx64 ": %s", file->path, size, strerror(errno));
	fsx_model_resize(f, size);
	e->size_after = size;
}

/* fallocate: returns false (and turns the op off) where it is unsupported. */
static bool fsx_fallocate(unsigned f, int mode, uint64_t off, uint64_t len, bool *enabled)
{
	if (fallocate(fsx.files[f].fd, mode, (off_t)off, (off_t)len) == 0)
		return true;
	if (errno == EOPNOTSUPP || errno == ENOSYS) {
		printf("pfs-fsx: fallocate(mode 0x%x) is not supported here (%s): that "
		       "operation is off from now on\n",
		       mode, strerror(errno));
		*enabled = false;
		return false;
	}
	fsx_fail("fallocate(mode 0x%x) %s [0x%" PRIx64 ", +0x%" PRIx64 "): %s", mode,
		 fsx.files[f].path, off, len, strerror(errno));
}

static void fsx_op_punch(unsigned f)
{
	struct fsx_file *file = &fsx.files[f];

	if (file->size == 0) {
		fsx_log_add(FSX_OP_PUNCH, f, 0, 0);
		return;
	}
	uint64_t off = fsx_rand_align(fsx_rand_below(file->size));
	uint64_t len = fsx_rand_len(fsx.cfg.maxop);
	if (len > file->size - off)
		len = file->size - off;
	fsx_log_add(FSX_OP_PUNCH, f, off, len);
	if (fsx_fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len, &fsx.cfg.punch))
		memset(file->model + off, 0, len);
}

/* Plain allocation: may grow the size, never changes a byte. */
static void fsx_op_fallocate(unsigned f)
{
	struct fsx_file *file = &fsx.files[f];
	uint64_t len = fsx_rand_len(fsx.cfg.maxop);
	uint64_t off = fsx_pick_write_off(f, len);
	struct fsx_log_entry *e = fsx_log_add(FSX_OP_FALLOCATE, f, off, len);

	if (fsx_fallocate(f, 0, off, len, &fsx.cfg.fallocate) && off + len > file->size)
		file->size = off + len;
	e->size_after = file->size;
}

/* Zero a range, keeping the size or growing it. */
static void fsx_op_zero_range(unsigned f)
{
	struct fsx_file *file = &fsx.files[f];
	uint64_t len = fsx_rand_len(fsx.cfg.maxop);
	uint64_t off = fsx_pick_write_off(f, len);
	bool keep = fsx_rand_below(2);
	struct fsx_log_entry *e = fsx_log_add(FSX_OP_ZERO_RANGE, f, off, len);

	if (!fsx_fallocate(f, FALLOC_FL_ZERO_RANGE | (keep ? FALLOC_FL_KEEP_SIZE : 0), off, len,
			   &fsx.cfg.zero_range))
		return;
	uint64_t end = off + len;
	if (keep && end > file->size)
		end = file->size;
	if (end > off)
		memset(file->model + off, 0, end - off);
	if (!keep && off + len > file->size)
		file->size = off + len;
	e->size_after = file->size;
}

/* copy_file_range from another file (the kernel refuses overlapping ranges
 * in one file, so with one file this is a read-then-write-free no-op). */
static void fsx_op_copy_range(unsigned f)
{
	struct fsx_file *dst = &fsx.files[f];
	unsigned s = (f + 1 + (unsigned)fsx_rand_below(fsx.cfg.nfiles - 1)) % fsx.cfg.nfiles;
	struct fsx_file *src = &fsx.files[s];

	if (src->size == 0) {
		fsx_log_add(FSX_OP_COPY_RANGE, f, 0, 0);
		return;
	}
	uint64_t soff = fsx_rand_align(fsx_rand_below(src->size));
	uint64_t len = fsx_rand_len(fsx.cfg.maxop);
	if (len > src->size - soff)
		len = src->size - soff;
	uint64_t off = fsx_pick_write_off(f, len);
	struct fsx_log_entry *e = fsx_log_add(FSX_OP_COPY_RANGE, f, off, len);
	e->src_file = s;
	e->src_off = soff;

	loff_t in = (loff_t)soff, out = (loff_t)off;
	uint64_t done = 0;
	while (done < len) {
		ssize_t n = copy_file_range(src->fd, &in, dst->fd, &out, len - done, 0);
		if (n < 0 && (errno == EOPNOTSUPP || errno == ENOSYS || errno == EXDEV)) {
			printf("pfs-fsx: copy_file_range is not supported here (%s): that "
			       "operation is off from now on\n",
			       strerror(errno));
			fsx.cfg.copy_range = false;
			break;
		}
		if (n < 0)
			fsx_fail("copy_file_range %s@0x%" PRIx64 " -> %s@0x%" PRIx64
				 " len 0x%" PRIx64 ": %s",
				 src->path, soff + done, dst->path, off + done, len - done,
				 strerror(errno));
		if (n == 0)
			fsx_fail("copy_file_range %s -> %s stopped at 0x%" PRIx64 " of 0x%" PRIx64
				 " (source size 0x%" PRIx64 ")",
				 src->path, dst->path, done, len, src->size);
		done += (uint64_t)n;
	}
	memcpy(dst->model + off, src->model + soff, done);
	if (off + done > dst->size)
		dst->size = off + done;
	e->len = done;
	e->size_after = dst->size;
}

/* SEEK_DATA and SEEK_HOLE may report fewer holes than there are, never a
 * hole where the model has data: what SEEK_DATA skips is all zero, and a
 * hole starts with a zero byte (or at EOF). */
static void fsx_op_seek(unsigned f)
{
	struct fsx_file *file = &fsx.files[f];
	uint64_t off = fsx_rand_align(fsx_rand_below(file->size + 2));

	fsx_log_add(FSX_OP_SEEK, f, off, 0);
	errno = 0;
	off_t data = lseek(file->fd, (off_t)off, SEEK_DATA);
	if (data < 0 && errno != ENXIO) /* ENXIO: only a hole up to EOF */
		fsx_fail("SEEK_DATA from 0x%" PRIx64 " in %s: %s", off, file->path,
			 strerror(errno));
	uint64_t skipped_to = data < 0 ? file->size : (uint64_t)data;
	if (data >= 0 && (off >= file->size || skipped_to < off || skipped_to >= file->size))
		fsx_fail("SEEK_DATA from 0x%" PRIx64 " in %s returned 0x%jx (size 0x%" PRIx64 ")",
			 off, file->path, (intmax_t)data, file->size);
	for (uint64_t i = off; i < skipped_to && i < file->size; i++)
		if (file->model[i])
			fsx_fail("SEEK_DATA from 0x%" PRIx64 " in %s skipped to 0x%" PRIx64
				 " over data at 0x%" PRIx64,
				 off, file->path, skipped_to, i);

	off_t hole = lseek(file->fd, (off_t)off, SEEK_HOLE);
	if (off >= file->size) {
		if (hole >= 0 || errno != ENXIO)
			fsx_fail("SEEK_HOLE from 0x%" PRIx64 " at or past EOF 0x%" PRIx64
				 " in %s: got %jd, expected ENXIO",
				 off, file->size, file->path, (intmax_t)hole);
		return;
	}
	if (hole < 0 || (uint64_t)hole < off || (uint64_t)hole > file->size)
		fsx_fail("SEEK_HOLE from 0x%" PRIx64 " in %s returned %jd (size 0x%" PRIx64 "): %s",
			 off, file->path, (intmax_t)hole, file->size, strerror(errno));
	if ((uint64_t)hole < file->size && file->model[hole])
		fsx_fail("SEEK_HOLE from 0x%" PRIx64
			 " in %s says a hole starts at 0x%jx, where the "
			 "model has data 0x%02x",
			 off, file->path, (intmax_t)hole, file->model[hole]);
}

static void fsx_op_sync(unsigned f, enum fsx_op_type type)
{
	fsx_log_add(type, f, 0, 0);
	int rc = type == FSX_OP_FSYNC ? fsync(fsx.files[f].fd) : fdatasync(fsx.files[f].fd);
	if (rc)
		fsx_fail("%s %s: %s", fsx_op_names[type], fsx.files[f].path, strerror(errno));
}

static void fsx_op_reopen(unsigned f, bool trunc)
{
	struct fsx_log_entry *e = fsx_log_add(trunc ? FSX_OP_REOPEN_TRUNC : FSX_OP_REOPEN, f, 0, 0);

	fsx_file_close(f);
	fsx_file_open(f, trunc ? O_TRUNC : 0);
	if (trunc)
		fsx_model_resize(f, 0);
	e->size_after = fsx.files[f].size;
}

/* Close everything, run the remount command, reopen, check every file. */
static void fsx_op_remount(void)
{
	fsx_log_add(FSX_OP_REMOUNT, 0, 0, 0);
	for (unsigned f = 0; f < fsx.cfg.nfiles; f++)
		fsx_file_close(f);
	fflush(stdout);
	int status = system(fsx.cfg.remount_cmd);
	if (status == -1)
		fsx_fail("cannot run the remount command: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fsx_fail("remount command '%s' failed (wait status 0x%x)", fsx.cfg.remount_cmd,
			 status);
	for (unsigned f = 0; f < fsx.cfg.nfiles; f++) {
		fsx_file_open(f, 0);
		fsx_check_file(f, "read after remount");
	}
}

static enum fsx_op_type fsx_pick_op(void)
{
	unsigned weights[FSX_OP_COUNT], total = 0;

	memcpy(weights, fsx_op_weights, sizeof(weights));
	if (!fsx.cfg.mmap)
		weights[FSX_OP_MAPREAD] = weights[FSX_OP_MAPWRITE] = 0;
	if (!fsx.cfg.punch)
		weights[FSX_OP_PUNCH] = 0;
	if (!fsx.cfg.fallocate)
		weights[FSX_OP_FALLOCATE] = 0;
	if (!fsx.cfg.zero_range)
		weights[FSX_OP_ZERO_RANGE] = 0;
	if (!fsx.cfg.copy_range || fsx.cfg.nfiles < 2)
		weights[FSX_OP_COPY_RANGE] = 0;
	if (!fsx.cfg.seek)
		weights[FSX_OP_SEEK] = 0;
	for (int i = 0; i < FSX_OP_COUNT; i++)
		total += weights[i];
	uint64_t r = fsx_rand_below(total);
	for (int i = 0; i < FSX_OP_COUNT; i++) {
		if (r < weights[i])
			return (enum fsx_op_type)i;
		r -= weights[i];
	}
	return FSX_OP_READ;
}

static void fsx_step(void)
{
	enum fsx_op_type type = fsx_pick_op();
	unsigned f = (unsigned)fsx_rand_below(fsx.cfg.nfiles);

	switch (type) {
	case FSX_OP_READ:
		fsx_op_read(f);
		break;
	case FSX_OP_WRITE:
		fsx_op_write(f);
		break;
	case FSX_OP_MAPREAD:
		fsx_op_mapread(f);
		break;
	case FSX_OP_MAPWRITE:
		fsx_op_mapwrite(f);
		break;
	case FSX_OP_TRUNCATE:
		fsx_op_truncate(f);
		break;
	case FSX_OP_PUNCH:
		fsx_op_punch(f);
		break;
	case FSX_OP_FALLOCATE:
		fsx_op_fallocate(f);
		break;
	case FSX_OP_ZERO_RANGE:
		fsx_op_zero_range(f);
		break;
	case FSX_OP_COPY_RANGE:
		fsx_op_copy_range(f);
		break;
	case FSX_OP_SEEK:
		fsx_op_seek(f);
		break;
	case FSX_OP_FSYNC:
	case FSX_OP_FDATASYNC:
		fsx_op_sync(f, type);
		break;
	case FSX_OP_REOPEN:
	case FSX_OP_REOPEN_TRUNC:
		fsx_op_reopen(f, type == FSX_OP_REOPEN_TRUNC);
		break;
	default:
		break;
	}
	fsx_check_size(f, fsx_op_names[type]);
}

/* ---- command line ---- */

static void fsx_usage(FILE *out)
{
	fprintf(out,
		"usage: pfs-fsx --file PATH [options]\n"
		"  --file PATH          the file to exercise (with --nfiles K: PATH.0 .. "
		"PATH.K-1)\n"
		"  --seed S             random seed (default: from the clock; printed)\n"
		"  --ops N              operations to run (default 10000)\n"
		"  --maxlen N           largest file size (default 4M)\n"
		"  --maxop N            largest read or write (default 1M)\n"
		"  --nfiles K           files exercised at once, 1..%d (default 1)\n"
		"  --check-every N      read back every whole file every N operations (default "
		"200; "
		"0: at the end only)\n"
		"  --remount-every N    every N operations close all files and run --remount-cmd\n"
		"  --remount-cmd CMD    shell command that unmounts and mounts the same backing "
		"dir\n"
		"  --save-model PREFIX  at the end, write each file's model to PREFIX (PREFIX.K "
		"with\n"
		"                       --nfiles), to compare with the backing file after unmount\n"
		"  --no-mmap            no mapped reads or writes\n"
		"  --no-fallocate       no hole punching, zeroing or fallocate\n"
		"  --no-copy-range      no copy_file_range between files (used with --nfiles >= "
		"2)\n"
		"  --no-seek            no SEEK_DATA/SEEK_HOLE checks\n"
		"  --quiet              only the seed line, failures and the summary\n"
		"Sizes take K, M or G. Exit: 0 all matched, 1 a mismatch or an error, 2 usage.\n",
		FSX_MAX_FILES);
}

static int fsx_parse_size(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	if (!*s || *s == '-')
		return -EINVAL;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno)
		return -EINVAL;
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	if (shift)
		end++;
	if (*end || (v << shift) >> shift != v)
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int fsx_parse_args(int argc, char **argv, struct fsx_config *cfg)
{
	bool seeded = false;
	uint64_t nfiles = 1;

	*cfg = (struct fsx_config){
		.ops = 10000,
		.maxlen = 4u << 20,
		.maxop = 1u << 20,
		.check_every = 200,
		.mmap = true,
		.punch = true,
		.fallocate = true,
		.zero_range = true,
		.copy_range = true,
		.seek = true,
	};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = 0;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fsx_usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--no-mmap")) {
			cfg->mmap = false;
			continue;
		} else if (!strcmp(a, "--no-fallocate")) {
			cfg->punch = cfg->fallocate = cfg->zero_range = false;
			continue;
		} else if (!strcmp(a, "--no-copy-range")) {
			cfg->copy_range = false;
			continue;
		} else if (!strcmp(a, "--no-seek")) {
			cfg->seek = false;
			continue;
		} else if (!strcmp(a, "--quiet")) {
			cfg->quiet = true;
			continue;
		}
		if (!v) {
			fprintf(stderr, "pfs-fsx: %s needs a value or is unknown\n", a);
			return -EINVAL;
		}
		i++;
		if (!strcmp(a, "--file"))
			cfg->path = v;
		else if (!strcmp(a, "--remount-cmd"))
			cfg->remount_cmd = v;
		else if (!strcmp(a, "--save-model"))
			cfg->save_model = v;
		else if (!strcmp(a, "--seed"))
			rc = fsx_parse_size(v, &cfg->seed), seeded = true;
		else if (!strcmp(a, "--ops"))
			rc = fsx_parse_size(v, &cfg->ops);
		else if (!strcmp(a, "--maxlen"))
			rc = fsx_parse_size(v, &cfg->maxlen);
		else if (!strcmp(a, "--maxop"))
			rc = fsx_parse_size(v, &cfg->maxop);
		else if (!strcmp(a, "--nfiles"))
			rc = fsx_parse_size(v, &nfiles);
		else if (!strcmp(a, "--check-every"))
			rc = fsx_parse_size(v, &cfg->check_every);
		else if (!strcmp(a, "--remount-every"))
			rc = fsx_parse_size(v, &cfg->remount_every);
		else {
			fprintf(stderr, "pfs-fsx: unknown option '%s'\n", a);
			return -EINVAL;
		}
		if (rc) {
			fprintf(stderr,
				"pfs-fsx: %s '%s': expected a number such as 100, 64K or 1M\n", a,
				v);
			return -EINVAL;
		}
	}
	if (!cfg->path) {
		fprintf(stderr, "pfs-fsx: --file is required\n");
		return -EINVAL;
	}
	if (nfiles < 1 || nfiles > FSX_MAX_FILES || cfg->maxop < 1 || cfg->maxlen < cfg->maxop ||
	    cfg->maxlen > (1ull << 32)) {
		fprintf(stderr, "pfs-fsx: need 1 <= nfiles <= %d and 1 <= maxop <= maxlen <= 4G\n",
			FSX_MAX_FILES);
		return -EINVAL;
	}
	if (cfg->remount_every && !cfg->remount_cmd) {
		fprintf(stderr, "pfs-fsx: --remount-every needs --remount-cmd\n");
		return -EINVAL;
	}
	cfg->nfiles = (unsigned)nfiles;
	if (!seeded) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		cfg->seed = ((uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^
			     (uint64_t)getpid() << 20) %
			    1000000000u;
	}
	return 0;
}

static void fsx_setup(void)
{
	fsx.page_size = sysconf(_SC_PAGESIZE);
	fsx.rng = fsx.cfg.seed;
	fsx.buf = malloc(fsx.cfg.maxop);
	if (!fsx.buf)
		fsx_fail("out of memory for a %" PRIu64 "-byte buffer", fsx.cfg.maxop);
	for (unsigned f = 0; f < fsx.cfg.nfiles; f++) {
		struct fsx_file *file = &fsx.files[f];
		size_t len = strlen(fsx.cfg.path) + 16;

		file->path = malloc(len);
		file->model = calloc(1, fsx.cfg.maxlen);
		if (!file->path || !file->model)
			fsx_fail("out of memory for the model of %" PRIu64 " bytes",
				 fsx.cfg.maxlen);
		if (fsx.cfg.nfiles == 1)
			snprintf(file->path, len, "%s", fsx.cfg.path);
		else
			snprintf(file->path, len, "%s.%u", fsx.cfg.path, f);
		/* Start from an empty file whatever was there. */
		fsx_file_open(f, O_TRUNC);
		file->size = 0;
		fsx_check_size(f, "open with O_TRUNC");
	}
}

/* The model as a file, to compare with the backing file after unmount. */
static void fsx_save_models(void)
{
	for (unsigned f = 0; f < fsx.cfg.nfiles; f++) {
		size_t len = strlen(fsx.cfg.save_model) + 16;
		char *path = malloc(len);

		if (!path)
			fsx_fail("out of memory");
		if (fsx.cfg.nfiles == 1)
			snprintf(path, len, "%s", fsx.cfg.save_model);
		else
			snprintf(path, len, "%s.%u", fsx.cfg.save_model, f);
		FILE *out = fopen(path, "w");
		if (!out ||
		    fwrite(fsx.files[f].model, 1, fsx.files[f].size, out) != fsx.files[f].size ||
		    fclose(out))
			fsx_fail("cannot save the model to %s: %s", path, strerror(errno));
		free(path);
	}
}

static void fsx_teardown(void)
{
	for (unsigned f = 0; f < fsx.cfg.nfiles; f++) {
		fsx_file_close(f);
		free(fsx.files[f].path);
		free(fsx.files[f].model);
	}
	free(fsx.buf);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (fsx_parse_args(argc, argv, &fsx.cfg)) {
		fsx_usage(stderr);
		return 2;
	}
	fsx.argc = argc;
	fsx.argv = argv;
	printf("pfs-fsx: seed %" PRIu64 " ops %" PRIu64 " file %s nfiles %u maxlen %" PRIu64
	       " maxop %" PRIu64 " remount-every %" PRIu64 "\n",
	       fsx.cfg.seed, fsx.cfg.ops, fsx.cfg.path, fsx.cfg.nfiles, fsx.cfg.maxlen,
	       fsx.cfg.maxop, fsx.cfg.remount_every);
	fsx_setup();

	uint64_t progress = fsx.cfg.ops >= 20 ? fsx.cfg.ops / 10 : 0;
	for (fsx.opnum = 1; fsx.opnum <= fsx.cfg.ops; fsx.opnum++) {
		if (fsx.cfg.remount_every && fsx.opnum % fsx.cfg.remount_every == 0) {
			fsx_op_remount();
		} else if (fsx.cfg.check_every && fsx.opnum % fsx.cfg.check_every == 0) {
			fsx_log_add(FSX_OP_CHECK, 0, 0, 0);
			for (unsigned f = 0; f < fsx.cfg.nfiles; f++)
				fsx_check_file(f, "periodic check");
		} else {
			fsx_step();
		}
		if (!fsx.cfg.quiet && progress && fsx.opnum % progress == 0)
			printf("pfs-fsx: %" PRIu64 " operations done\n", fsx.opnum);
	}
	fsx.opnum = fsx.cfg.ops;
	for (unsigned f = 0; f < fsx.cfg.nfiles; f++)
		fsx_check_file(f, "final check");

	printf("pfs-fsx: PASS seed %" PRIu64 ":", fsx.cfg.seed);
	for (int i = 0; i < FSX_OP_COUNT; i++)
		printf(" %s=%" PRIu64, fsx_op_names[i], fsx.counts[i]);
	printf("\n");
	if (fsx.cfg.save_model)
		fsx_save_models();
	fsx_teardown();
	return 0;
}
