/*
 * The log every layer may call. The destination is one flag, set before
 * the daemon's threads start and read without a lock after that.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"

static bool pfs_log_syslog;

void pfs_log_use_syslog(bool on)
{
	pfs_log_syslog = on;
}

void pfs_vlog(int level, const char *fmt, va_list ap)
{
	char line[1024];
	const char *text = line;

	vsnprintf(line, sizeof(line), fmt, ap);
	/* Plugins may name themselves already. */
	if (strncmp(text, "pressurefs: ", 12) == 0)
		text += 12;
	if (pfs_log_syslog)
		syslog(level, "%s", text);
	else
		fprintf(stderr, "pressurefs: %s\n", text);
}

void pfs_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pfs_vlog(level, fmt, ap);
	va_end(ap);
}
