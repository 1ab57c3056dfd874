/*
 * The worker loop: how requests reach the daemon's handlers.
 *
 * A fixed pool of worker threads is set up before the mount: each worker's
 * stack and request buffer come from the allocator (site `request`,
 * charged at once), so nothing of the transport grows after mount and a
 * squeezed budget never leaves the daemon without a buffer to answer with.
 * Each worker either reads /dev/fuse into its buffer or, with FUSE over
 * io_uring, owns one ring entry (its buffer is the entry's header and
 * payload); both hand the request to libfuse's session
 * (fuse_session_process_buf), and the answer comes back through our
 * writev (fuse_io.c), which puts it into the entry when the request came
 * from a ring.
 */
#ifndef PFS_TRANSPORT_H
#define PFS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#include "fuse_ll.h"
#include "options.h"

struct pfs;

struct pfs_transport_config {
	enum pfs_transport_kind want;
	bool single_thread;	  /* -s: one /dev/fuse worker, one ring entry per CPU */
	unsigned spin_us;	  /* ring_spin_us */
	enum pfs_handoff handoff; /* ring_handoff */
};

/*
 * Before the mount: decide whether io_uring may be tried (the fuse module's
 * enable_uring parameter, io_uring itself, the budget), size the pool and
 * charge it. 0, or -errno with one line in err (transport=io_uring when it
 * is unavailable says why and how to enable it; a budget too small for the
 * pool says how much it needs).
 */
int pfs_transport_create(struct pfs *fs, const struct pfs_transport_config *cfg, char *err,
			 size_t errlen);
/* The max_write the pool's buffers hold (INIT asks the kernel for it). */
unsigned pfs_transport_max_write(const struct pfs *fs);
/* After the mount: run the workers until the session ends (unmount, a
 * signal, or the transport's own failure); stop and join them. Returns the
 * exit status the daemon should end with (0 or 1). */
int pfs_transport_run(struct pfs *fs);
/* Free the pool (after pfs_transport_run, before the allocator goes). */
void pfs_transport_destroy(struct pfs *fs);
/* "io_uring", "dev_fuse", or "starting" before INIT is answered. */
const char *pfs_transport_name(const struct pfs *fs);
/* Ring workers' watches for the next request (ring_spin_us): those that
 * caught one, and those that ended with none. */
void pfs_transport_spin_counts(const struct pfs *fs, uint64_t *hits, uint64_t *misses);
/* ring_handoff: the mode in force ("auto", "on", "off"), answers submitted
 * at idle priority, workers the guard raised back after they waited behind
 * another thread, auto's idle samples and the last one (idle CPUs x 1000). */
struct pfs_handoff_stats {
	const char *mode;
	uint64_t handoffs, stalls, samples, idle_milli;
};
void pfs_transport_handoff_stats(const struct pfs *fs, struct pfs_handoff_stats *out);

/* fuse_io.c, while it writes the INIT reply: may it take io_uring (the
 * kernel offered FUSE_OVER_IO_URING)? */
bool pfs_transport_uring_wanted(const struct pfs *fs);
/* fuse_io.c, once the INIT reply is written: whether it took io_uring.
 * Ring workers register their entries now (the kernel accepts them only
 * after INIT); otherwise every worker reads /dev/fuse. */
void pfs_transport_init_answered(struct pfs *fs, bool uring, bool kernel_offered);

/* fuse_io.c's writev: if iov is the answer to the ring request this thread
 * is handling, copy it into the ring entry (sent with the next
 * COMMIT_AND_FETCH), set *res and return true. */
bool pfs_uring_answer(const struct iovec *iov, int count, ssize_t *res);

/* fuse_io.c: our own read/writev on /dev/fuse (after fuse_session_mount).
 * It sets FUSE_HANDLE_KILLPRIV_V2 in the INIT reply (libfuse 3.14 cannot)
 * when the killpriv option asks and the kernel offers it, counts GETXATTR
 * requests, and notes the kill-suidgid bit of the request this thread is
 * about to handle (libfuse does not pass it on). 0 or -errno. */
int pfs_fuse_io_install(struct pfs *fs, bool debug);
/* Did the request this thread is handling, on ino, carry
 * FUSE_WRITE_KILL_SUIDGID / FATTR_KILL_SUIDGID / FUSE_OPEN_KILL_SUIDGID?
 * Call once, from the handler of a WRITE, SETATTR, OPEN or CREATE (ino: the
 * nodeid of the request, the parent for CREATE). */
bool pfs_fuse_io_kill_suidgid_wanted(fuse_ino_t ino);

#endif /* PFS_TRANSPORT_H */
