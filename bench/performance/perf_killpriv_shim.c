/*
 * perf_killpriv_shim.so: an EXPERIMENT for bench/perf, never part of the daemon.
 *
 * LD_PRELOADed into a FUSE daemon built on libfuse 3.14 (which has no
 * FUSE_CAP_HANDLE_KILLPRIV_V2), it sets FUSE_HANDLE_KILLPRIV_V2 in the
 * FUSE_INIT reply the daemon writes to /dev/fuse. The kernel then marks the
 * super block SB_NOSEC, so after the first write() of a file without
 * setuid/setgid bits it latches S_NOSEC on the inode and stops asking the
 * daemon for security.capability (one GETXATTR round trip) before every
 * write(). bench/perf measures what that round trip costs with targets named
 * ...+kp2.
 *
 * What it does NOT do: with KILLPRIV_V2 the file system promises to clear
 * setuid/setgid (and security.capability) itself when an unprivileged
 * writer writes or truncates; the daemon under test does not know it made
 * that promise. Fine for a benchmark on files without those bits; a real
 * daemon must honour FUSE_WRITE_KILL_SUIDGID / FATTR_KILL_SUIDGID /
 * FUSE_OPEN_KILL_SUIDGID.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef ssize_t (*writev_fn)(int fd, const struct iovec *iov, int count);

/* FUSE_INIT is the only reply with this exact shape: a header followed by a
 * whole fuse_init_out for protocol 7.x. */
static int shim_is_init_reply(const struct iovec *iov, int count)
{
	const struct fuse_out_header *out;
	const struct fuse_init_out *init;

	if (count != 2 || iov[0].iov_len != sizeof(*out) || iov[1].iov_len != sizeof(*init))
		return 0;
	out = iov[0].iov_base;
	init = iov[1].iov_base;
	return out->error == 0 && out->len == sizeof(*out) + sizeof(*init) && init->major == 7 &&
	       init->minor >= 28;
}

ssize_t writev(int fd, const struct iovec *iov, int count)
{
	static writev_fn real_writev;

	if (!real_writev)
		real_writev = (writev_fn)dlsym(RTLD_NEXT, "writev");
	if (shim_is_init_reply(iov, count)) {
		struct fuse_init_out *init = iov[1].iov_base;

		init->flags |= FUSE_HANDLE_KILLPRIV_V2;
	}
	return real_writev(fd, iov, count);
}
