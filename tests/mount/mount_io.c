/*
 * pfs-mount-io: the small program the real-mount tests use where the shell
 * cannot see errno or cannot keep an exact record of what was acknowledged.
 *
 *   pfs-mount-io put PATH STRING        one write() of STRING, no O_TRUNC
 *   pfs-mount-io fsync PATH             open O_RDWR (O_RDONLY if refused), fsync
 *   pfs-mount-io write PATH OFF LEN [SEED]
 *                                       one pwrite() of the pattern (creates PATH)
 *   pfs-mount-io writer --file PATH --size N --chunk N --journal PATH
 *                       [--seed S] [--fsync-every K] [--retries R]
 *   pfs-mount-io verify --file PATH --journal PATH [--seed S]
 *   pfs-mount-io rename2 OLD NEW noreplace|exchange   renameat2() with that flag
 *   pfs-mount-io seek PATH data|hole OFF     lseek(SEEK_DATA/SEEK_HOLE): the offset
 *   pfs-mount-io session                one command a line on stdin, one answer a
 *                                       line on stdout, descriptors kept open in
 *                                       between (slots 0-15):
 *       open SLOT PATH        open(PATH, O_RDWR | O_CREAT, 0644)
 *       write SLOT OFF LEN    one pwrite() of the pattern (seed 1)
 *       fsync SLOT            fsync()
 *       close SLOT            close() (its error too: FUSE flush)
 *     each answers OK or the errno name; a malformed line answers USAGE. Ends
 *     at end of input, status 0.
 *
 * put/fsync/write/rename2/seek print "OK" (write: "OK" or "SHORT n"; seek:
 * the offset) or the errno name (EINVAL, EACCES, ENOMEM...) and exit 0 on
 * success, 1 on an error.
 *
 * writer writes [0, size) in chunks of a self-checking pattern and journals
 * every acknowledgement outside the mount:
 *   W OFF LEN     pwrite() returned LEN bytes at OFF (a short count is a W too)
 *   E ERRNO OFF LEN  pwrite() failed
 *   S             fsync() returned 0: every W before it is durable
 *   F ERRNO       fsync() failed
 * A failed chunk is tried again up to --retries times, then skipped (the
 * application drops it). ENOTCONN/ECONNABORTED (the daemon died) end the run
 * with status 3. Prints one summary line of key=value counters.
 *
 * verify reads the file (the backing file, after unmount or crash) and
 * checks every journalled range: acked_lost counts acknowledged bytes that
 * are not there, fsynced_lost those an fsync had promised.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IO_MAX_CHUNK (16u << 20)

static const char *io_errno_name(int err)
{
	const char *name = strerrorname_np(err);

	return name ? name : "EUNKNOWN";
}

/* The pattern byte at offset off: position-dependent, so a misplaced or
 * stale block is caught as well as a missing one. */
static unsigned char io_pattern_byte(uint64_t off, uint64_t seed)
{
	uint64_t word = (off >> 3) * 0x9E3779B97F4A7C15ull ^ (seed * 0xD1B54A32D192ED03ull + 1);

	word ^= word >> 29;
	return (unsigned char)(word >> ((off & 7) * 8));
}

static void io_pattern_fill(unsigned char *buf, size_t len, uint64_t off, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = io_pattern_byte(off + i, seed);
}

static int io_parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

static int io_report(int err)
{
	if (err) {
		printf("%s\n", io_errno_name(err));
		return 1;
	}
	printf("OK\n");
	return 0;
}

static int io_cmd_put(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	int fd = open(argv[2], O_WRONLY);
	if (fd < 0)
		return io_report(errno);
	size_t len = strlen(argv[3]);
	ssize_t n = write(fd, argv[3], len);
	int err = n < 0 ? errno : 0;
	if (!err && (size_t)n != len)
		err = EIO;
	if (close(fd) && !err)
		err = errno;
	return io_report(err);
}

static int io_cmd_fsync(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	int fd = open(argv[2], O_RDWR);
	if (fd < 0 && (errno == EACCES || errno == EISDIR || errno == EROFS))
		fd = open(argv[2], O_RDONLY);
	if (fd < 0)
		return io_report(errno);
	int err = fsync(fd) ? errno : 0;
	close(fd);
	return io_report(err);
}

static int io_cmd_write(int argc, char **argv)
{
	uint64_t off, len, seed = 1;

	if (argc < 5 || argc > 6 || io_parse_u64(argv[3], &off) || io_parse_u64(argv[4], &len) ||
	    len > IO_MAX_CHUNK || (argc == 6 && io_parse_u64(argv[5], &seed)))
		return 2;
	unsigned char *buf = malloc(len ? len : 1);
	if (!buf)
		return 2;
	io_pattern_fill(buf, len, off, seed);
	int fd = open(argv[2], O_WRONLY | O_CREAT, 0644);
	if (fd < 0) {
		free(buf);
		return io_report(errno);
	}
	ssize_t n = pwrite(fd, buf, len, (off_t)off);
	int err = n < 0 ? errno : 0;
	close(fd);
	free(buf);
	if (!err && (uint64_t)n != len) {
		printf("SHORT %zd\n", n);
		return 0;
	}
	return io_report(err);
}

struct io_writer {
	const char *file, *journal;
	uint64_t size, chunk, seed, fsync_every, retries;
};

struct io_writer_counts {
	uint64_t writes, ok, short_writes, enomem, other_errors, skipped, acked_bytes;
	uint64_t fsync_ok, fsync_errors;
	int last_errno;
};

static int io_writer_args(int argc, char **argv, struct io_writer *w)
{
	*w = (struct io_writer){.chunk = 65536, .seed = 1};
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		int err = 0;

		if (!strcmp(k, "--file"))
			w->file = v;
		else if (!strcmp(k, "--journal"))
			w->journal = v;
		else if (!strcmp(k, "--size"))
			err = io_parse_u64(v, &w->size);
		else if (!strcmp(k, "--chunk"))
			err = io_parse_u64(v, &w->chunk);
		else if (!strcmp(k, "--seed"))
			err = io_parse_u64(v, &w->seed);
		else if (!strcmp(k, "--fsync-every"))
			err = io_parse_u64(v, &w->fsync_every);
		else if (!strcmp(k, "--retries"))
			err = io_parse_u64(v, &w->retries);
		else
			err = -EINVAL;
		if (err) {
			fprintf(stderr, "pfs-mount-io: bad argument %s %s\n", k, v);
			return -EINVAL;
		}
	}
	if ((argc % 2) || !w->file || !w->journal || !w->chunk || w->chunk > IO_MAX_CHUNK) {
		fprintf(stderr,
			"pfs-mount-io writer: need --file, --journal, --size, a chunk <= 16M\n");
		return -EINVAL;
	}
	return 0;
}

static bool io_daemon_gone(int err)
{
	return err == ENOTCONN || err == ECONNABORTED;
}

static void io_writer_summary(const struct io_writer_counts *c)
{
	printf("writes=%" PRIu64 " ok=%" PRIu64 " short=%" PRIu64 " enomem=%" PRIu64
	       " other_errors=%" PRIu64 " skipped=%" PRIu64 " acked_bytes=%" PRIu64
	       " fsync_ok=%" PRIu64 " fsync_errors=%" PRIu64 " last_errno=%s\n",
	       c->writes, c->ok, c->short_writes, c->enomem, c->other_errors, c->skipped,
	       c->acked_bytes, c->fsync_ok, c->fsync_errors,
	       c->last_errno ? io_errno_name(c->last_errno) : "0");
}

/* Returns 0 when the daemon is still there, 3 when it is gone. */
static int io_writer_fsync(int fd, FILE *journal, struct io_writer_counts *c)
{
	if (fsync(fd) == 0) {
		c->fsync_ok++;
		fprintf(journal, "S\n");
		fflush(journal);
		return 0;
	}
	int err = errno;
	c->fsync_errors++;
	c->last_errno = err;
	fprintf(journal, "F %s\n", io_errno_name(err));
	fflush(journal);
	return io_daemon_gone(err) ? 3 : 0;
}

static int io_cmd_writer(int argc, char **argv)
{
	struct io_writer w;
	struct io_writer_counts c = {0};
	int status = 0;

	if (io_writer_args(argc, argv, &w))
		return 2;
	FILE *journal = fopen(w.journal, "w");
	if (!journal) {
		perror(w.journal);
		return 2;
	}
	unsigned char *buf = malloc(w.chunk);
	int fd = open(w.file, O_WRONLY | O_CREAT, 0644);
	if (!buf || fd < 0) {
		int err = errno;
		fprintf(journal, "E %s 0 0\n", io_errno_name(err));
		fclose(journal);
		free(buf);
		printf("open_failed=%s\n", io_errno_name(err));
		return io_daemon_gone(err) ? 3 : 2;
	}
	uint64_t off = 0, chunks = 0, tries = 0;
	while (off < w.size) {
		size_t len = w.size - off < w.chunk ? (size_t)(w.size - off) : (size_t)w.chunk;
		io_pattern_fill(buf, len, off, w.seed);
		c.writes++;
		ssize_t n = pwrite(fd, buf, len, (off_t)off);
		if (n > 0) {
			fprintf(journal, "W %" PRIu64 " %zd\n", off, n);
			fflush(journal);
			c.acked_bytes += (uint64_t)n;
			if ((size_t)n == len)
				c.ok++;
			else
				c.short_writes++;
			off += (uint64_t)n;
			tries = 0;
		} else {
			int err = n < 0 ? errno : EIO;
			c.last_errno = err;
			fprintf(journal, "E %s %" PRIu64 " %zu\n", io_errno_name(err), off, len);
			fflush(journal);
			if (err == ENOMEM)
				c.enomem++;
			else
				c.other_errors++;
			if (io_daemon_gone(err)) {
				status = 3;
				break;
			}
			if (tries++ < w.retries)
				continue;
			c.skipped++;
			off += len; /* the careless application drops the chunk */
			tries = 0;
		}
		if (w.fsync_every && ++chunks % w.fsync_every == 0) {
			status = io_writer_fsync(fd, journal, &c);
			if (status)
				break;
		}
	}
	if (!status)
		status = io_writer_fsync(fd, journal, &c);
	close(fd);
	free(buf);
	fclose(journal);
	io_writer_summary(&c);
	return status;
}

struct io_range {
	uint64_t off, len;
	bool fsynced;
};

static int io_cmd_verify(int argc, char **argv)
{
	const char *file = NULL, *journal_path = NULL;
	uint64_t seed = 1;

	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--file"))
			file = argv[i + 1];
		else if (!strcmp(argv[i], "--journal"))
			journal_path = argv[i + 1];
		else if (!strcmp(argv[i], "--seed") && !io_parse_u64(argv[i + 1], &seed))
			continue;
		else
			return 2;
	}
	if (!file || !journal_path)
		return 2;
	FILE *journal = fopen(journal_path, "r");
	if (!journal) {
		perror(journal_path);
		return 2;
	}
	struct io_range *ranges = NULL;
	size_t nranges = 0, cap = 0, synced_upto = 0;
	char line[256];
	while (fgets(line, sizeof(line), journal)) {
		uint64_t off, len;
		if (sscanf(line, "W %" SCNu64 " %" SCNu64, &off, &len) == 2) {
			if (nranges == cap) {
				cap = cap ? 2 * cap : 1024;
				struct io_range *grown = realloc(ranges, cap * sizeof(*ranges));
				if (!grown)
					return 2;
				ranges = grown;
			}
			ranges[nranges++] = (struct io_range){off, len, false};
		} else if (line[0] == 'S') {
			for (; synced_upto < nranges; synced_upto++)
				ranges[synced_upto].fsynced = true;
		}
	}
	fclose(journal);

	int fd = open(file, O_RDONLY);
	struct stat st = {0};
	if (fd >= 0 && fstat(fd, &st))
		st.st_size = 0;
	uint64_t acked = 0, acked_lost = 0, fsynced = 0, fsynced_lost = 0;
	long long first_lost = -1;
	unsigned char *buf = malloc(IO_MAX_CHUNK);
	for (size_t r = 0; buf && r < nranges; r++) {
		const struct io_range *rg = &ranges[r];
		uint64_t done = 0;
		while (done < rg->len) {
			size_t len = rg->len - done < IO_MAX_CHUNK ? rg->len - done : IO_MAX_CHUNK;
			ssize_t n = fd >= 0 ? pread(fd, buf, len, (off_t)(rg->off + done)) : 0;
			for (size_t i = 0; i < len; i++) {
				uint64_t off = rg->off + done + i;
				bool good = n > 0 && i < (size_t)n &&
					    buf[i] == io_pattern_byte(off, seed);
				if (!good) {
					acked_lost++;
					fsynced_lost += rg->fsynced;
					if (first_lost < 0)
						first_lost = (long long)off;
				}
			}
			done += len;
		}
		acked += rg->len;
		if (rg->fsynced)
			fsynced += rg->len;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	free(ranges);
	printf("acked_bytes=%" PRIu64 " acked_lost=%" PRIu64 " fsynced_bytes=%" PRIu64
	       " fsynced_lost=%" PRIu64 " first_lost=%lld file_size=%lld\n",
	       acked, acked_lost, fsynced, fsynced_lost, first_lost, (long long)st.st_size);
	return 0;
}

static int io_cmd_rename2(int argc, char **argv)
{
	unsigned flags;

	if (argc != 5)
		return 2;
	if (!strcmp(argv[4], "noreplace"))
		flags = RENAME_NOREPLACE;
	else if (!strcmp(argv[4], "exchange"))
		flags = RENAME_EXCHANGE;
	else
		return 2;
	return io_report(renameat2(AT_FDCWD, argv[2], AT_FDCWD, argv[3], flags) ? errno : 0);
}

static int io_cmd_seek(int argc, char **argv)
{
	uint64_t off;
	int whence;

	if (argc != 5 || io_parse_u64(argv[4], &off))
		return 2;
	if (!strcmp(argv[3], "data"))
		whence = SEEK_DATA;
	else if (!strcmp(argv[3], "hole"))
		whence = SEEK_HOLE;
	else
		return 2;
	int fd = open(argv[2], O_RDONLY);
	if (fd < 0)
		return io_report(errno);
	off_t r = lseek(fd, (off_t)off, whence);
	int err = r < 0 ? errno : 0;
	close(fd);
	if (err)
		return io_report(err);
	printf("%lld\n", (long long)r);
	return 0;
}

#define IO_SESSION_SLOTS 16

static int io_session_line(int *fds, char *line)
{
	char *cmd = strtok(line, " \t\n"), *a1 = strtok(NULL, " \t\n");
	char *a2 = strtok(NULL, " \t\n"), *a3 = strtok(NULL, " \t\n");
	uint64_t slot, off, len;

	if (!cmd || !a1 || io_parse_u64(a1, &slot) || slot >= IO_SESSION_SLOTS)
		return -1;
	if (!strcmp(cmd, "open") && a2 && !a3) {
		if (fds[slot] >= 0)
			close(fds[slot]);
		fds[slot] = open(a2, O_RDWR | O_CREAT, 0644);
		return fds[slot] < 0 ? errno : 0;
	}
	if (fds[slot] < 0)
		return EBADF;
	if (!strcmp(cmd, "write") && a3 && !io_parse_u64(a2, &off) && !io_parse_u64(a3, &len) &&
	    len <= IO_MAX_CHUNK) {
		unsigned char *buf = malloc(len ? len : 1);
		ssize_t n;

		if (!buf)
			return ENOMEM;
		io_pattern_fill(buf, len, off, 1);
		n = pwrite(fds[slot], buf, len, (off_t)off);
		free(buf);
		if (n < 0)
			return errno;
		return (uint64_t)n == len ? 0 : EIO;
	}
	if (!strcmp(cmd, "fsync") && !a2)
		return fsync(fds[slot]) ? errno : 0;
	if (!strcmp(cmd, "close") && !a2) {
		int r = close(fds[slot]) ? errno : 0;

		fds[slot] = -1;
		return r;
	}
	return -1;
}

static int io_cmd_session(int argc, char **argv)
{
	int fds[IO_SESSION_SLOTS];
	char line[4096];

	(void)argv;
	if (argc != 2)
		return 2;
	for (int i = 0; i < IO_SESSION_SLOTS; i++)
		fds[i] = -1;
	while (fgets(line, sizeof(line), stdin)) {
		int r = io_session_line(fds, line);

		if (r < 0)
			printf("USAGE\n");
		else
			io_report(r);
	}
	for (int i = 0; i < IO_SESSION_SLOTS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return 0;
}

int main(int argc, char **argv)
{
	int status = 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "put"))
		status = io_cmd_put(argc, argv);
	else if (argc >= 2 && !strcmp(argv[1], "fsync"))
		status = io_cmd_fsync(argc, argv);
	else if (argc >= 2 && !strcmp(argv[1], "write"))
		status = io_cmd_write(argc, argv);
	else if (argc >= 2 && !strcmp(argv[1], "writer"))
		status = io_cmd_writer(argc, argv);
	else if (argc >= 2 && !strcmp(argv[1], "verify"))
		status = io_cmd_verify(argc, argv);
	else if (argc >= 2 && !strcmp(argv[1], "rename2"))
		status = io_cmd_rename2(argc, argv);
	else if (argc >= 2 && !strcmp(argv[1], "seek"))
		status = io_cmd_seek(argc, argv);
	else if (argc >= 2 && !strcmp(argv[1], "session"))
		status = io_cmd_session(argc, argv);
	if (status == 2)
		fprintf(stderr, "usage: see the comment at the top of tests/mount/mount_io.c\n");
	return status;
}
