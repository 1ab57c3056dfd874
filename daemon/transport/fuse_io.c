/*
 * Our own read() and writev() on /dev/fuse (fuse_session_custom_io), for
 * what libfuse 3.14 cannot do: it knows no FUSE_HANDLE_KILLPRIV_V2 and
 * drops the kill-suidgid bits of WRITE, SETATTR, OPEN and CREATE.
 *
 * Without that flag the kernel asks for security.capability (a GETXATTR
 * round trip) before every write(), since a FUSE super block is never
 * SB_NOSEC. With it, the kernel latches S_NOSEC on an inode after its first
 * write and leaves clearing setuid/setgid/capabilities to us.
 *
 * Every worker of the pool (worker.c) takes a request, from /dev/fuse or
 * from its ring entry (uring.c), and handles it in the same thread, and the
 * INIT reply is written by the thread that read INIT; so what we learn from
 * a raw request is kept per thread and holds for the handler that runs
 * next. The same writev routes the answer to a ring request into its entry
 * (pfs_uring_answer), and puts FUSE_OVER_IO_URING in the INIT reply when the
 * pool has rings and the kernel offers it.
 *
 * PFS_TEST_HIDE_URING_OFFER=1 in the daemon's environment makes it read
 * INIT as if the kernel had not offered FUSE_OVER_IO_URING: the only way a
 * test can reach "transport=io_uring, the module allows it, INIT lacks the
 * flag" on a kernel that has it.
 */
#include <errno.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include "transport_i.h"

/* The request this thread read last (reset by every read). */
struct pfs_fuse_note {
	uint64_t unique;
	uint64_t nodeid;
	uint32_t opcode;
	bool kill_suidgid; /* the request asks us to clear suid/sgid/caps */
	bool init_kp2;	   /* INIT: the kernel offers FUSE_HANDLE_KILLPRIV_V2 */
	bool init_uring;   /* INIT: the kernel offers FUSE_OVER_IO_URING */
};

static __thread struct pfs_fuse_note pfs_fuse_note;

/* Set once before the loop starts. */
static bool pfs_fuse_io_want_kp2;
static bool pfs_fuse_io_debug;
static bool pfs_fuse_io_hide_uring;

/* The argument after the header, if the request is long enough for it. */
static const void *pfs_fuse_arg(const void *buf, size_t len, size_t need)
{
	const struct fuse_in_header *in = buf;

	if (len < sizeof(*in) + need || in->len < sizeof(*in) + need)
		return NULL;
	return (const char *)buf + sizeof(*in);
}

static void pfs_fuse_note_take(struct pfs *fs, const void *buf, size_t len)
{
	const struct fuse_in_header *in = buf;
	struct pfs_fuse_note *note = &pfs_fuse_note;
	const struct fuse_write_in *w;
	const struct fuse_setattr_in *sa;
	const struct fuse_open_in *o;
	const struct fuse_create_in *c;
	const struct fuse_init_in *init;

	note->unique = in->unique;
	note->nodeid = in->nodeid;
	note->opcode = in->opcode;
	switch (in->opcode) {
	case FUSE_GETXATTR:
		__atomic_add_fetch(&fs->conn.getxattr_requests, 1, __ATOMIC_RELAXED);
		break;
	case FUSE_WRITE:
		w = pfs_fuse_arg(buf, len, sizeof(*w));
		note->kill_suidgid = w && (w->write_flags & FUSE_WRITE_KILL_SUIDGID);
		break;
	case FUSE_SETATTR:
		/* chown(f, -1, -1) must clear the bits too, but arrives with
		 * nothing to set (ctime with writeback_cache=1): the kernel
		 * drops its ATTR_KILL_* for us. So does a root write() that
		 * removes file capabilities, which must keep setuid: hence only
		 * for callers other than root. */
		sa = pfs_fuse_arg(buf, len, sizeof(*sa));
		note->kill_suidgid =
			sa && ((sa->valid & FATTR_KILL_SUIDGID) ||
			       (__atomic_load_n(&fs->conn.killpriv_v2, __ATOMIC_ACQUIRE) &&
				!(sa->valid & ~(FATTR_FH | FATTR_LOCKOWNER | FATTR_CTIME)) &&
				in->uid != 0));
		break;
	case FUSE_OPEN:
		o = pfs_fuse_arg(buf, len, sizeof(*o));
		note->kill_suidgid = o && (o->open_flags & FUSE_OPEN_KILL_SUIDGID);
		break;
	case FUSE_CREATE:
		c = pfs_fuse_arg(buf, len, sizeof(*c));
		note->kill_suidgid = c && (c->open_flags & FUSE_OPEN_KILL_SUIDGID);
		break;
	case FUSE_INIT:
		/* flags is in every version of fuse_init_in; KILLPRIV_V2 is one
		 * of its low 32 bits (flags2 only holds bits 32..63). */
		init = pfs_fuse_arg(buf, len,
				    offsetof(struct fuse_init_in, flags) + sizeof(init->flags));
		note->init_kp2 = init && init->major == 7 && init->minor >= 33 &&
				 (init->flags & FUSE_HANDLE_KILLPRIV_V2);
		if (pfs_fuse_io_want_kp2 && !note->init_kp2)
			pfs_log(LOG_INFO, "the kernel does not offer FUSE_HANDLE_KILLPRIV_V2: "
					  "it asks for security.capability before every write()");
		/* FUSE_OVER_IO_URING is bit 41: flags2 (7.36+) holds it. */
		init = pfs_fuse_arg(buf, len,
				    offsetof(struct fuse_init_in, flags2) + sizeof(init->flags2));
		note->init_uring = init && init->major == 7 && init->minor >= 36 &&
				   (init->flags & FUSE_INIT_EXT) &&
				   (init->flags2 & (uint32_t)(FUSE_OVER_IO_URING >> 32)) &&
				   !pfs_fuse_io_hide_uring;
		break;
	default:
		break;
	}
}

static ssize_t pfs_fuse_read(int fd, void *buf, size_t buf_len, void *userdata)
{
	ssize_t n = read(fd, buf, buf_len);

	/* libfuse reads errno after we return: leave it alone on failure. */
	memset(&pfs_fuse_note, 0, sizeof(pfs_fuse_note));
	if (n >= (ssize_t)sizeof(struct fuse_in_header))
		pfs_fuse_note_take(userdata, buf, (size_t)n);
	return n;
}

ssize_t pfs_fuse_io_receive(struct pfs *fs, int fd, void *buf, size_t len)
{
	return pfs_fuse_read(fd, buf, len, fs);
}

void pfs_fuse_io_note_request(struct pfs *fs, const void *buf, size_t len)
{
	memset(&pfs_fuse_note, 0, sizeof(pfs_fuse_note));
	if (len >= sizeof(struct fuse_in_header))
		pfs_fuse_note_take(fs, buf, len);
}

/*
 * The INIT reply to the INIT this thread read: add KILLPRIV_V2 and
 * FUSE_OVER_IO_URING where wanted and offered. Returns false if iov is not
 * a successful INIT reply of protocol 7.
 */
static bool pfs_fuse_init_reply_edit(struct pfs *fs, struct iovec *iov, int count, bool *uring)
{
	const struct pfs_fuse_note *note = &pfs_fuse_note;
	const struct fuse_out_header *out;
	struct fuse_init_out *init;

	*uring = false;
	if (count < 2 || iov[0].iov_len != sizeof(*out))
		return false;
	out = iov[0].iov_base;
	if (out->unique != note->unique || out->error != 0 ||
	    iov[1].iov_len < offsetof(struct fuse_init_out, flags) + sizeof(init->flags))
		return false;
	init = iov[1].iov_base;
	if (init->major != 7)
		return false;
	if (note->init_kp2 && pfs_fuse_io_want_kp2) {
		init->flags |= FUSE_HANDLE_KILLPRIV_V2;
		__atomic_store_n(&fs->conn.killpriv_v2, true, __ATOMIC_RELEASE);
	}
	if (note->init_uring && pfs_transport_uring_wanted(fs) &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, flags2) + sizeof(init->flags2)) {
		init->flags |= FUSE_INIT_EXT;
		init->flags2 |= (uint32_t)(FUSE_OVER_IO_URING >> 32);
		*uring = true;
	}
	if (pfs_fuse_io_debug)
		pfs_log(LOG_DEBUG, "INIT reply: flags=0x%08x flags2=0x%08x", init->flags,
			iov[1].iov_len >= offsetof(struct fuse_init_out, flags2) +
						  sizeof(init->flags2)
				? init->flags2
				: 0);
	return true;
}

static ssize_t pfs_fuse_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	bool init = false, uring = false;
	ssize_t n;

	if (pfs_uring_answer(iov, count, &n))
		return n;
	if (pfs_fuse_note.opcode == FUSE_INIT)
		init = pfs_fuse_init_reply_edit(userdata, iov, count, &uring);
	n = writev(fd, iov, count);
	/* The kernel has taken the INIT reply (it does so within writev): ring
	 * entries may register now. */
	if (init) {
		int e = errno;
		pfs_transport_init_answered(userdata, uring && n >= 0, pfs_fuse_note.init_uring);
		errno = e;
	}
	return n;
}

int pfs_fuse_io_install(struct pfs *fs, bool debug)
{
	static const struct fuse_custom_io io = {
		.read = pfs_fuse_read, .writev = pfs_fuse_writev,
		/* no splice: the daemon never asks for it */
	};
	const char *hide;

	pfs_fuse_io_want_kp2 = fs->ctl.opt.num[PFS_OPT_killpriv] != 0;
	pfs_fuse_io_debug = debug;
	hide = getenv("PFS_TEST_HIDE_URING_OFFER");
	pfs_fuse_io_hide_uring = hide && strcmp(hide, "1") == 0;
	return fuse_session_custom_io(fs->conn.se, &io, fuse_session_fd(fs->conn.se));
}

bool pfs_fuse_io_kill_suidgid_wanted(fuse_ino_t ino)
{
	struct pfs_fuse_note *note = &pfs_fuse_note;
	bool kill = note->kill_suidgid && note->nodeid == ino;

	note->kill_suidgid = false;
	return kill;
}
