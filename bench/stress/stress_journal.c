/* The journal: one text record per write(), appended; and the parser the
 * verifier reads it back with. Record formats: see stress_i.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stress_i.h"

#define STRESS_RECORD_MAX 512

int stress_journal_open(struct stress_journal *j, const char *path)
{
	j->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (j->fd < 0)
		return -errno;
	return 0;
}

void stress_journal_close(struct stress_journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
}

/* Exactly one write() per record: with O_APPEND a record is never split
 * between two writers and a crash cuts at most the last line. A short
 * write to the journal is reported as -EIO: it must not be split either. */
int stress_journal_append(struct stress_journal *j, const char *fmt, ...)
{
	char line[STRESS_RECORD_MAX];
	va_list ap;
	ssize_t done;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(line))
		return -EOVERFLOW;
	do {
		done = write(j->fd, line, (size_t)len);
	} while (done < 0 && errno == EINTR);
	if (done < 0)
		return -errno;
	if (done != len)
		return -EIO;
	return 0;
}

/* Parse unsigned/signed decimal fields separated by single spaces. */
static int parse_fields(const char *p, const char *end, int64_t *out, int n)
{
	for (int i = 0; i < n; i++) {
		char buf[32];
		size_t k = 0;
		char *stop;

		if (p >= end || *p != ' ')
			return -EINVAL;
		p++;
		while (p < end && *p != ' ' && k < sizeof(buf) - 1)
			buf[k++] = *p++;
		buf[k] = '\0';
		if (k == 0 || (p < end && *p != ' '))
			return -EINVAL;
		errno = 0;
		out[i] = strtoll(buf, &stop, 10);
		if (errno || *stop)
			return -EINVAL;
	}
	return p == end ? 0 : -EINVAL;
}

/* line/len: one complete record without its newline. */
int stress_record_parse(const char *line, size_t len, struct stress_record *rec)
{
	const char *end = line + len;
	int64_t v[7];

	memset(rec, 0, sizeof(*rec));
	if (len < 1)
		return -EINVAL;
	rec->type = line[0];
	switch (line[0]) {
	case STRESS_REC_START:
	case STRESS_REC_END:
		return len >= 2 && line[1] == ' ' ? 0 : -EINVAL;
	case STRESS_REC_INTENT:
		if (parse_fields(line + 1, end, v, 4))
			return -EINVAL;
		if (v[0] < 0 || v[0] > UINT32_MAX || v[1] < 0 || v[2] < 1)
			return -EINVAL;
		rec->file = (uint32_t)v[0];
		rec->block = (uint64_t)v[1];
		rec->gen = (uint64_t)v[2];
		rec->t_us = (uint64_t)v[3];
		return 0;
	case STRESS_REC_WRITE:
		if (parse_fields(line + 1, end, v, 7))
			return -EINVAL;
		if (v[0] < 0 || v[0] > UINT32_MAX || v[1] < 0 || v[2] < 1 || v[3] < -1)
			return -EINVAL;
		rec->file = (uint32_t)v[0];
		rec->block = (uint64_t)v[1];
		rec->gen = (uint64_t)v[2];
		rec->ret = v[3];
		rec->err = (int)v[4];
		rec->t_us = (uint64_t)v[5];
		rec->lat_us = (uint64_t)v[6];
		return 0;
	case STRESS_REC_OPEN:
	case STRESS_REC_FSYNC:
		if (parse_fields(line + 1, end, v, 5))
			return -EINVAL;
		if (v[0] < 0 || v[0] > UINT32_MAX || v[1] < -1)
			return -EINVAL;
		rec->file = (uint32_t)v[0];
		rec->ret = v[1];
		rec->err = (int)v[2];
		rec->t_us = (uint64_t)v[3];
		rec->lat_us = (uint64_t)v[4];
		return 0;
	default:
		return -EINVAL;
	}
}

/* Find "key=" in the S record and parse its unsigned value. */
static int start_field(const char *line, size_t len, const char *key, uint64_t *out)
{
	size_t klen = strlen(key);

	for (size_t i = 0; i + klen < len; i++) {
		char buf[32];
		size_t k = 0;
		char *stop;

		if ((i && line[i - 1] != ' ') || strncmp(line + i, key, klen) ||
		    line[i + klen] != '=')
			continue;
		for (size_t j = i + klen + 1; j < len && line[j] != ' ' && k < sizeof(buf) - 1; j++)
			buf[k++] = line[j];
		buf[k] = '\0';
		errno = 0;
		*out = strtoull(buf, &stop, 10);
		return k == 0 || errno || *stop ? -EINVAL : 0;
	}
	return -ENOENT;
}

int stress_record_parse_start(const char *line, size_t len, struct stress_geometry *geo)
{
	uint64_t v;

	if (len < 8 || strncmp(line, "S start ", 8))
		return -EINVAL;
	if (start_field(line, len, "seed", &geo->seed))
		return -EINVAL;
	if (start_field(line, len, "files", &v) || v == 0 || v > UINT32_MAX)
		return -EINVAL;
	geo->files = (uint32_t)v;
	if (start_field(line, len, "block", &v) || v < STRESS_BLOCK_MIN || v > STRESS_BLOCK_MAX)
		return -EINVAL;
	geo->block_size = (uint32_t)v;
	if (start_field(line, len, "file_size", &geo->file_size) ||
	    geo->file_size < geo->block_size)
		return -EINVAL;
	return 0;
}
