/*
 * The log every layer may call: stderr until the daemon detaches, syslog
 * after. It calls nothing else of pressurefs, so the allocator and the
 * cache can report data loss without knowing about the daemon.
 */
#ifndef PFS_LOG_H
#define PFS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h> /* LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO */

/* One line at a syslog level; a leading "pressurefs: " is not repeated. */
void pfs_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pfs_vlog(int level, const char *fmt, va_list ap);
/* Send later lines to syslog (true) or stderr (false, the default). */
void pfs_log_use_syslog(bool on);

#endif /* PFS_LOG_H */
