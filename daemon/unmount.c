/*
 * The unmount that waits: `pressurefs -u MOUNTPOINT`, and the daemon's side
 * of it.
 *
 * The kernel does not wait for a FUSE daemon at unmount: `fusermount3 -u`
 * returns as soon as the mount is detached, while the daemon is still
 * writing back what it acknowledged. Writing back at every close would
 * empty the cache that makes the policies differ, so instead the daemon
 * tells whoever asks when the last byte is written, and how it went.
 *
 * The channel is a Unix socket in the abstract namespace named after the
 * mount's device number (which every process sees in /proc/self/mountinfo,
 * without a FUSE request that a stuck daemon could leave unanswered). The
 * daemon listens from the moment it is mounted until its FUSE loop ends:
 * the kernel hands the number to the next mount as soon as this one is
 * gone, so the name must be free by then. The command connects,
 * checks that the peer is the mount's owner, unmounts with fusermount3,
 * reads one status line that the daemon sends once everything is written
 * back (or could not be), then waits for the daemon's process to end. A
 * connection holds nothing on the mount, so it cannot make it busy.
 *
 * Lines ('\n'-terminated): "pid PID" when the daemon takes the connection
 * (the listening socket's own credentials name the process that called
 * listen(), which the daemonizing fork leaves behind), then "ok" or
 * "error ERRNO LOST_BYTES" once it has written back.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_i.h"
#include "unmount.h"

#define PFS_UNMOUNT_WAITERS 32
/* How long the command retries a refused connect: covers a script that
 * calls it the moment the mount appears, before the daemon listens. */
#define PFS_UNMOUNT_CONNECT_TRIES  40
#define PFS_UNMOUNT_CONNECT_NAP_US (50 * 1000)
#define PFS_UNMOUNT_BIND_TRIES	   20

extern char **environ;

/*
 * The daemon's side. One daemon per process, so file-scope state: set up
 * by the main thread before the loop starts, then owned by the accept
 * thread until pfs_unmount_report() stops it.
 */
static struct {
	char mountpoint[PATH_MAX]; /* resolved before mounting */
	int prepare_err;	   /* why it could not be resolved */
	int listen_fd;		   /* -1: not listening */
	int stop_pipe[2];	   /* the main thread writes: the accept thread ends */
	pthread_t thread;
	bool running;
	uid_t owner;
	pthread_mutex_t lock; /* waiters[], nwaiters, reported */
	int waiters[PFS_UNMOUNT_WAITERS];
	unsigned nwaiters;
	bool reported;
} pfs_um = {.listen_fd = -1, .stop_pipe = {-1, -1}, .lock = PTHREAD_MUTEX_INITIALIZER};

/* "\0pressurefs-unmount/MAJ:MIN" (abstract: no file to clean up). */
static socklen_t pfs_unmount_addr(struct sockaddr_un *sa, unsigned maj, unsigned min)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "pressurefs-unmount/%u:%u", maj,
		     min);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* mountinfo escapes blanks, newlines and backslashes as \ooo. */
static void pfs_mountinfo_unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

struct pfs_mount_info {
	unsigned maj, min;
	long long owner; /* user_id= of the FUSE mount, -1 if not shown */
};

/*
 * The topmost FUSE mount on path (a resolved absolute path) in this
 * process's mount namespace. 0, or -ENOENT if none.
 */
static int pfs_mount_find(const char *path, struct pfs_mount_info *out)
{
	char *line = NULL;
	size_t cap = 0;
	int found = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char mnt[PATH_MAX], type[256], super[1024];
		unsigned maj, min;
		const char *dash, *uid;

		/* id parent maj:min root mountpoint ... - type source super */
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mnt) != 3)
			continue;
		dash = strstr(line, " - ");
		if (!dash || sscanf(dash + 3, "%255s %*s %1023s", type, super) != 2)
			continue;
		pfs_mountinfo_unescape(mnt);
		if (strcmp(mnt, path) != 0 ||
		    (strcmp(type, "fuse") != 0 && strncmp(type, "fuse.", 5) != 0))
			continue;
		out->maj = maj;
		out->min = min;
		uid = strstr(super, "user_id=");
		out->owner = uid ? strtoll(uid + 8, NULL, 10) : -1;
		found = 0; /* keep going: the last one is on top */
	}
	free(line);
	fclose(f);
	return found;
}

void pfs_unmount_prepare(const char *mountpoint)
{
	pfs_um.prepare_err = realpath(mountpoint, pfs_um.mountpoint) ? 0 : -errno;
}

int pfs_unmount_listen(uid_t owner)
{
	struct pfs_mount_info mi;
	struct sockaddr_un sa;
	socklen_t len;
	int fd, r;

	if (pfs_um.prepare_err)
		return pfs_um.prepare_err;
	r = pfs_mount_find(pfs_um.mountpoint, &mi);
	if (r)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	len = pfs_unmount_addr(&sa, mi.maj, mi.min);
	/* The last daemon with this device number may still be leaving its loop. */
	for (int i = 0; bind(fd, (struct sockaddr *)&sa, len) < 0; i++) {
		if (errno != EADDRINUSE || i == PFS_UNMOUNT_BIND_TRIES) {
			r = -errno;
			close(fd);
			return r;
		}
		usleep(PFS_UNMOUNT_CONNECT_NAP_US);
	}
	if (listen(fd, PFS_UNMOUNT_WAITERS) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	pfs_um.listen_fd = fd;
	pfs_um.owner = owner;
	return 0;
}

/* Under lock: forget waiters that hung up (a command that gave up). */
static void pfs_unmount_prune(void)
{
	unsigned kept = 0;

	for (unsigned i = 0; i < pfs_um.nwaiters; i++) {
		struct pollfd p = {.fd = pfs_um.waiters[i], .events = POLLRDHUP};

		if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			close(pfs_um.waiters[i]);
		else
			pfs_um.waiters[kept++] = pfs_um.waiters[i];
	}
	pfs_um.nwaiters = kept;
}

static void pfs_unmount_accept_one(void)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int fd;

	fd = accept4(pfs_um.listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	/* Only the owner (or root) learns when the data is written. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 ||
	    (cr.uid != pfs_um.owner && cr.uid != 0)) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&pfs_um.lock);
	if (pfs_um.nwaiters == PFS_UNMOUNT_WAITERS)
		pfs_unmount_prune();
	if (pfs_um.nwaiters < PFS_UNMOUNT_WAITERS && !pfs_um.reported) {
		char line[32];
		int n = snprintf(line, sizeof(line), "pid %d\n", (int)getpid());

		if (send(fd, line, (size_t)n, MSG_NOSIGNAL) == n) {
			pfs_um.waiters[pfs_um.nwaiters++] = fd;
			fd = -1;
		}
	}
	pthread_mutex_unlock(&pfs_um.lock);
	/* No room: the command sees EOF without a status and says so. */
	if (fd >= 0)
		close(fd);
}

static void *pfs_unmount_accept_loop(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p[2] = {{.fd = pfs_um.listen_fd, .events = POLLIN},
				      {.fd = pfs_um.stop_pipe[0], .events = POLLIN}};

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (p[0].revents & POLLIN)
			pfs_unmount_accept_one();
	}
	return NULL;
}

int pfs_unmount_accept_start(void)
{
	sigset_t all, old;
	int r;

	if (pfs_um.listen_fd < 0)
		return 0;
	if (pipe2(pfs_um.stop_pipe, O_CLOEXEC) < 0)
		return -errno;
	/* Signals are for the FUSE loop's handlers, not for this thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&pfs_um.thread, NULL, pfs_unmount_accept_loop, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		close(pfs_um.stop_pipe[0]);
		close(pfs_um.stop_pipe[1]);
		pfs_um.stop_pipe[0] = pfs_um.stop_pipe[1] = -1;
		return r;
	}
	pfs_um.running = true;
	return 0;
}

void pfs_unmount_stop_listening(void)
{
	if (pfs_um.running) {
		ssize_t w = write(pfs_um.stop_pipe[1], "", 1);

		(void)w;
		pthread_join(pfs_um.thread, NULL);
		pfs_um.running = false;
		close(pfs_um.stop_pipe[0]);
		close(pfs_um.stop_pipe[1]);
	}
	if (pfs_um.listen_fd < 0)
		return;
	/* Connections still queued: a command that connected just before the
	 * unmount it asked for. */
	for (;;) {
		struct pollfd p = {.fd = pfs_um.listen_fd, .events = POLLIN};

		if (poll(&p, 1, 0) <= 0)
			break;
		pfs_unmount_accept_one();
	}
	close(pfs_um.listen_fd);
	pfs_um.listen_fd = -1;
}

void pfs_unmount_report(int err, uint64_t lost_bytes)
{
	char line[128];
	int n;

	pfs_unmount_stop_listening();
	if (err)
		n = snprintf(line, sizeof(line), "error %d %llu\n", -err,
			     (unsigned long long)lost_bytes);
	else
		n = snprintf(line, sizeof(line), "ok\n");
	pthread_mutex_lock(&pfs_um.lock);
	pfs_um.reported = true;
	/*
	 * The waiters' sockets stay open on purpose: the process's exit
	 * closes them, and that end-of-file is how a command learns that the
	 * daemon is gone, not only done writing.
	 */
	for (unsigned i = 0; i < pfs_um.nwaiters; i++)
		if (send(pfs_um.waiters[i], line, (size_t)n, MSG_NOSIGNAL) < 0)
			pfs_log(LOG_WARNING, "telling an unmount command: %s", strerror(errno));
	pthread_mutex_unlock(&pfs_um.lock);
}

/* ---- the command: pressurefs -u MOUNTPOINT ---- */

static int __attribute__((format(printf, 1, 2))) pfs_unmount_fail(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	pfs_verr(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "pressurefs: %s\n", line);
	return 1;
}

/*
 * The absolute path of the mount point without stat()ing the mount's root:
 * that would be a FUSE request, and this command must not hang on a daemon
 * that does not answer before it has found out whose it is.
 */
static int pfs_unmount_resolve(const char *arg, char *out)
{
	char dir[PATH_MAX], parent[PATH_MAX];
	const char *base;
	size_t n = strlen(arg);

	if (n == 0 || n >= PATH_MAX)
		return -EINVAL;
	memcpy(dir, arg, n + 1);
	while (n > 1 && dir[n - 1] == '/')
		dir[--n] = '\0';
	base = strrchr(dir, '/');
	if (!base) {
		base = dir;
		if (!getcwd(parent, sizeof(parent)))
			return -errno;
	} else {
		if (base == dir)
			strcpy(parent, "/");
		else {
			dir[base - dir] = '\0';
			if (!realpath(dir, parent))
				return -errno;
		}
		base++;
	}
	if (!*base) /* "/" itself */
		return snprintf(out, PATH_MAX, "/") < 0 ? -EINVAL : 0;
	if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return realpath(arg, out) ? 0 : -errno;
	if (snprintf(out, PATH_MAX, "%s%s%s", parent, strcmp(parent, "/") ? "/" : "", base) >=
	    PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static int pfs_unmount_connect(const struct pfs_mount_info *mi)
{
	struct sockaddr_un sa;
	socklen_t len = pfs_unmount_addr(&sa, mi->maj, mi->min);

	for (int i = 0; i < PFS_UNMOUNT_CONNECT_TRIES; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), e;

		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, len) == 0)
			return fd;
		e = errno;
		close(fd);
		if (e != ECONNREFUSED && e != EAGAIN && e != ENOENT)
			return -e;
		usleep(PFS_UNMOUNT_CONNECT_NAP_US);
	}
	return -ECONNREFUSED;
}

static int pfs_unmount_run_fusermount(const char *path)
{
	char *argv[] = {"fusermount3", "-u", "--", (char *)path, NULL};
	int status, r;
	pid_t pid;

	r = posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ);
	if (r)
		return -r;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/* Read up to '\n' or end of file; the line without '\n', "" at EOF. */
static void pfs_unmount_read_line(int fd, char *line, size_t len)
{
	size_t used = 0;

	while (used + 1 < len) {
		ssize_t n = read(fd, line + used, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || line[used] == '\n')
			break;
		used++;
	}
	line[used] = '\0';
}

/* pidfd: the daemon's, or -1 where the kernel cannot tell (before 5.3). */
static void pfs_unmount_wait_exit(int sock, int pidfd)
{
	char buf[64];

	/* The daemon's exit closes its end of the socket. */
	for (;;) {
		ssize_t n = read(sock, buf, sizeof(buf));

		if (n == 0 || (n < 0 && errno != EINTR))
			break;
	}
	/* Then the process itself. */
	if (pidfd >= 0) {
		struct pollfd p = {.fd = pidfd, .events = POLLIN};

		while (poll(&p, 1, -1) < 0 && errno == EINTR)
			;
		close(pidfd);
	}
}

int pfs_unmount_main(int argc, char **argv)
{
	char path[PATH_MAX], line[128];
	struct pfs_mount_info mi;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int sock, pidfd, r;
	long pid = 0;

	if (argc != 1 || argv[0][0] == '-')
		return pfs_unmount_fail(
			"-u takes one mount point (usage: pressurefs -u MOUNTPOINT)");
	r = pfs_unmount_resolve(argv[0], path);
	if (r)
		return pfs_unmount_fail("mount point '%s': %s", argv[0], strerror(-r));
	if (pfs_mount_find(path, &mi))
		return pfs_unmount_fail("'%s' is not a FUSE mount point; nothing was unmounted",
					path);
	sock = pfs_unmount_connect(&mi);
	if (sock < 0)
		return pfs_unmount_fail(
			"no pressurefs daemon answers for '%s' (%s): not a pressurefs mount, or "
			"its "
			"daemon is gone (then fusermount3 -u detaches it); nothing was unmounted",
			path, strerror(-sock));
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 ||
	    (mi.owner >= 0 && (long long)cr.uid != mi.owner)) {
		close(sock);
		return pfs_unmount_fail("the process answering for '%s' is not its owner's "
					"(uid %lld); nothing was unmounted",
					path, mi.owner);
	}
	/* The daemon takes the connection: it is alive, and says who it is. */
	pfs_unmount_read_line(sock, line, sizeof(line));
	if (sscanf(line, "pid %ld", &pid) != 1 || pid <= 0) {
		close(sock);
		return pfs_unmount_fail("the daemon of '%s' did not take this unmount (only its "
					"owner or root may ask); nothing was unmounted",
					path);
	}
	pidfd = pidfd_open((pid_t)pid, 0);
	r = pfs_unmount_run_fusermount(path);
	if (r) {
		if (pidfd >= 0)
			close(pidfd);
		close(sock);
		if (r < 0)
			return pfs_unmount_fail("cannot run fusermount3: %s; nothing was unmounted",
						strerror(-r));
		return pfs_unmount_fail("fusermount3 -u '%s' failed (status %d, see above); "
					"nothing was unmounted, the daemon runs on",
					path, r);
	}
	pfs_unmount_read_line(sock, line, sizeof(line));
	pfs_unmount_wait_exit(sock, pidfd);
	close(sock);
	if (strcmp(line, "ok") == 0)
		return 0;
	if (strncmp(line, "error ", 6) == 0) {
		int e = 0;
		unsigned long long lost = 0;

		if (sscanf(line + 6, "%d %llu", &e, &lost) == 2)
			return pfs_unmount_fail(
				"'%s': unmounted, but writing back failed (%s): of "
				"%llu acknowledged bytes, some or all never reached "
				"the backing directory",
				path, strerror(e), lost);
	}
	return pfs_unmount_fail("'%s': unmounted, but the daemon (pid %ld) ended without saying "
				"that everything was written back (killed or crashed?); what it "
				"had not written back is lost",
				path, pid);
}
