/*
 * What the daemon offers policy plugins (pressurefs/policy.h's host
 * interface): today, its log.
 */
#include <stdarg.h>

#include "daemon_i.h"

static void pfs_host_log(void *host_data, enum pfs_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void pfs_host_log(void *host_data, enum pfs_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pfs_vlog((int)level, fmt, ap);
	va_end(ap);
}

const struct pfs_policy_host pfs_policy_host = {.log = pfs_host_log};
