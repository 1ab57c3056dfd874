/*
 * FUSE over io_uring (Linux 6.14+, Documentation/filesystems/fuse-io-uring.rst).
 *
 * Each ring worker owns one io_uring and one ring entry of its CPU's queue:
 * a header buffer (struct fuse_uring_req_header) and a payload buffer of
 * max_write bytes, given to the kernel with FUSE_IO_URING_CMD_REGISTER on a
 * 128-byte SQE. A completion means a request is in the entry; the worker
 * rebuilds the /dev/fuse layout (in-header, per-op struct, payload) in
 * place, in front of the payload, so libfuse 3.14's session handles it as
 * if read from /dev/fuse, with no copy of the payload. The handler's answer
 * comes to our writev (fuse_io.c), which this thread routes into the entry;
 * FUSE_IO_URING_CMD_COMMIT_AND_FETCH then answers and waits for the next
 * request in one system call.
 *
 * The kernel queues to the rings only once every possible CPU's queue has
 * an entry, and it sends FORGET, INTERRUPT and notification replies on
 * /dev/fuse still: a /dev/fuse worker keeps serving those.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "transport_i.h"

#define PFS_RING_TAG_ENTRY 1u
#define PFS_RING_TAG_STOP  2u

#define PFS_URING_PARAM "/sys/module/fuse/parameters/enable_uring"

/* A 128-byte SQE (IORING_SETUP_SQE128): struct io_uring_sqe declares only
 * the first 64 bytes, the rest is the command area. */
static void pfs_sqe128_clear(struct io_uring_sqe *sqe)
{
	memset(sqe, 0, 128);
}

/* The ring worker handling a request on this thread, for the answer. */
static __thread struct pfs_worker *pfs_ring_current;

bool pfs_uring_kernel_enabled(char *why, size_t whylen)
{
	char v = 0;
	FILE *f = fopen(PFS_URING_PARAM, "r");

	if (!f) {
		snprintf(why, whylen,
			 "this kernel has no FUSE over io_uring (%s is missing; it needs Linux "
			 "6.14+ built with CONFIG_FUSE_IO_URING=y)",
			 PFS_URING_PARAM);
		return false;
	}
	if (fscanf(f, " %c", &v) != 1)
		v = 0;
	fclose(f);
	if (v != 'Y' && v != '1') {
		snprintf(why, whylen,
			 "the fuse module has io_uring turned off (%s is N); as root: "
			 "echo 1 > %s",
			 PFS_URING_PARAM, PFS_URING_PARAM);
		return false;
	}
	return true;
}

/* The kernel makes one queue per possible CPU (num_possible_cpus). */
unsigned pfs_possible_cpus(void)
{
	unsigned highest = 0, a, b;
	char list[256], *p;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
	int n;

	if (!f)
		goto fallback;
	p = fgets(list, sizeof(list), f);
	fclose(f);
	if (!p)
		goto fallback;
	/* "0-3,8-11" */
	while (*p) {
		if (sscanf(p, "%u%n", &a, &n) != 1)
			break;
		b = a;
		p += n;
		if (*p == '-' && sscanf(p + 1, "%u%n", &b, &n) == 1)
			p += 1 + n;
		if (b > highest)
			highest = b;
		if (*p != ',')
			break;
		p++;
	}
	return highest + 1;
fallback:
	n = (int)sysconf(_SC_NPROCESSORS_CONF);
	return n > 0 ? (unsigned)n : 1;
}

bool pfs_uring_probe(char *why, size_t whylen)
{
	struct io_uring_params params = {.flags = IORING_SETUP_SQE128};
	struct io_uring probe;
	int r = io_uring_queue_init_params(2, &probe, &params);

	if (r < 0) {
		snprintf(why, whylen,
			 "io_uring_setup with 128-byte SQEs: %s (is the sysctl "
			 "kernel.io_uring_disabled set?)",
			 strerror(-r));
		return false;
	}
	io_uring_queue_exit(&probe);
	return true;
}

int pfs_ring_entry_setup(struct pfs_worker *w, char *err, size_t errlen)
{
	struct pfs_ring_entry *e = &w->ent;
	/* TASKRUN_FLAG: a request the kernel has queued for this worker, which
	 * it has not yet run to take, shows in the ring's flags, where the
	 * handoff's guard looks (COOP_TASKRUN, which it needs, only spares the
	 * interrupt of a running worker: ours take requests in io_uring_enter). */
	struct io_uring_params params = {.flags = IORING_SETUP_SQE128 | IORING_SETUP_COOP_TASKRUN |
						  IORING_SETUP_TASKRUN_FLAG};
	int r;

	/* One entry command and one stop poll at a time. */
	r = io_uring_queue_init_params(4, &e->ring, &params);
	if (r < 0) {
		snprintf(err, errlen,
			 "io_uring_setup with 128-byte SQEs: %s (is kernel.io_uring_disabled "
			 "set?)",
			 strerror(-r));
		return r;
	}
	e->ring_ready = true;
	e->header = (struct fuse_uring_req_header *)w->buf;
	e->payload = w->buf + PFS_REQ_HEADER_PAGE;
	e->payload_size = w->buf_size - PFS_REQ_HEADER_PAGE;
	e->iov[0] = (struct iovec){.iov_base = e->header, .iov_len = sizeof(*e->header)};
	e->iov[1] = (struct iovec){.iov_base = e->payload, .iov_len = e->payload_size};
	return 0;
}

void pfs_ring_entry_teardown(struct pfs_worker *w)
{
	if (!w->ent.ring_ready)
		return;
	io_uring_queue_exit(&w->ent.ring);
	w->ent.ring_ready = false;
}

static void pfs_ring_prep_cmd(struct pfs_worker *w, int fd, uint32_t op)
{
	struct pfs_ring_entry *e = &w->ent;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
	struct fuse_uring_cmd_req *cmd;

	/* At most two SQEs are ever outstanding in four. */
	if (!sqe)
		abort();
	pfs_sqe128_clear(sqe);
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fd;
	sqe->cmd_op = op;
	sqe->user_data = PFS_RING_TAG_ENTRY;
	if (op == FUSE_IO_URING_CMD_REGISTER) {
		sqe->addr = (uintptr_t)e->iov;
		sqe->len = 2;
	}
	cmd = (struct fuse_uring_cmd_req *)(uintptr_t)sqe->cmd;
	cmd->qid = (uint16_t)w->qid;
	cmd->commit_id = op == FUSE_IO_URING_CMD_COMMIT_AND_FETCH ? e->commit_id : 0;
}

static void pfs_ring_prep_stop_poll(struct pfs_worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ent.ring);

	if (!sqe)
		abort();
	pfs_sqe128_clear(sqe);
	io_uring_prep_poll_add(sqe, w->t->stop_fd, POLLIN);
	sqe->user_data = PFS_RING_TAG_STOP;
}

static void pfs_ring_answer_error(struct pfs_ring_entry *e, int error)
{
	struct fuse_out_header out = {
		.len = sizeof(out),
		.error = error,
		.unique = e->unique,
	};

	memcpy(e->header->in_out, &out, sizeof(out));
	e->header->ring_ent_in_out.payload_sz = 0;
	e->answered = true;
	e->staged = false;
}

bool pfs_uring_answer(const struct iovec *iov, int count, ssize_t *res)
{
	struct pfs_worker *w = pfs_ring_current;
	struct pfs_ring_entry *e;
	struct fuse_out_header out;
	char *dst, *stage;
	size_t len = 0;

	if (!w || count < 1 || iov[0].iov_len != sizeof(out))
		return false;
	e = &w->ent;
	memcpy(&out, iov[0].iov_base, sizeof(out));
	/* Notifications (unique 0) and interrupt answers go to /dev/fuse. */
	if (out.unique != e->unique || e->answered)
		return false;
	for (int i = 1; i < count; i++)
		len += iov[i].iov_len;
	if (len > e->payload_size) {
		pfs_log(LOG_ERR, "an answer of %zu bytes does not fit the ring entry (%zu)", len,
			e->payload_size);
		pfs_ring_answer_error(e, -EIO);
		*res = (ssize_t)(sizeof(out) + len);
		return true;
	}
	stage = (char *)e->header + PFS_RING_STAGE_OFFSET;
	dst = len <= PFS_RING_STAGE_SIZE ? stage : e->payload;
	for (int i = 1, at = 0; i < count; at += (int)iov[i].iov_len, i++)
		memcpy(dst + at, iov[i].iov_base, iov[i].iov_len);
	out.len = (uint32_t)(sizeof(out) + len);
	memcpy(e->header->in_out, &out, sizeof(out));
	e->header->ring_ent_in_out.payload_sz = (uint32_t)len;
	e->answer_sz = (uint32_t)len;
	e->staged = dst == stage;
	e->answered = true;
	*res = (ssize_t)out.len;
	return true;
}

/* The request in the entry: rebuild the /dev/fuse layout and handle it. */
static void pfs_ring_serve(struct pfs_worker *w)
{
	struct pfs_ring_entry *e = &w->ent;
	struct pfs *fs = w->t->fs;
	struct fuse_in_header in;
	uint32_t payload_sz;
	size_t op_in;
	char *start;

	pfs_handoff_serving(w);
	memcpy(&in, e->header->in_out, sizeof(in));
	payload_sz = e->header->ring_ent_in_out.payload_sz;
	e->commit_id = e->header->ring_ent_in_out.commit_id;
	e->unique = in.unique;
	e->answered = false;
	e->staged = false;
	/* The kernel sends RELEASE in the background (close() does not wait
	 * for it): its answer wakes nobody, so it leaves the worker's priority
	 * as it is (pfs_handoff_submit). */
	e->unwaited = in.opcode == FUSE_RELEASE || in.opcode == FUSE_RELEASEDIR;
	/* in.len counts the header, the per-op struct and the payload. */
	if (payload_sz > e->payload_size || in.len < sizeof(in) + payload_sz ||
	    in.len - sizeof(in) - payload_sz > FUSE_URING_OP_IN_OUT_SZ) {
		pfs_log(LOG_ERR, "ring request %u: bad lengths (len %u, payload %u)", in.opcode,
			in.len, payload_sz);
		pfs_ring_answer_error(e, -EIO);
		return;
	}
	op_in = in.len - sizeof(in) - payload_sz;
	start = e->payload - op_in - sizeof(in);
	memcpy(start, &in, sizeof(in));
	memcpy(start + sizeof(in), e->header->op_in, op_in);
	pfs_fuse_io_note_request(fs, start, in.len);
	pfs_ring_current = w;
	fuse_session_process_buf(fs->conn.se, &(struct fuse_buf){.mem = start, .size = in.len});
	pfs_ring_current = NULL;
	if (!e->answered) {
		/* Every request that comes on a ring has an answer; an entry
		 * without one would be lost to the queue. */
		pfs_log(LOG_ERR, "ring request %u (unique %llu) was not answered", in.opcode,
			(unsigned long long)in.unique);
		pfs_ring_answer_error(e, -EIO);
	}
	if (e->staged)
		memcpy(e->payload, (char *)e->header + PFS_RING_STAGE_OFFSET, e->answer_sz);
}

/*
 * ring_spin_us: submit the answer and watch the completion queue for a
 * while before sleeping in io_uring_enter. A worker that sleeps after each
 * answer is woken for the next request, and the writer it woke meanwhile
 * finds the worker's CPU busy and is moved to the idle one; with the worker
 * still running, the writer stays (and preempts it), and its next request
 * reaches a worker that needs no wake-up. The kernel's request lands in
 * our ring by task work, which runs when this thread goes back to user
 * space, so a plain look at the queue sees it.
 *
 * What the watch buys is a busy CPU, not a faster wake-up: on 2 CPUs a
 * nice-19 busy loop on the other CPU gains 1-job writes as much with no
 * watch at all, and a worker that watches only while its watches catch
 * requests (backing off after misses) gains nothing, because the watches
 * that miss are the ones that keep the other CPU busy. So every answer is
 * watched, and the misses are counted (ring_spin_misses) to show the cost.
 */
static void pfs_ring_watch_next(struct pfs_worker *w)
{
	struct io_uring *ring = &w->ent.ring;
	struct io_uring_cqe *cqe;
	uint64_t until;
	bool caught = false;

	io_uring_submit(ring);
	until = pfs_transport_now_ns() + w->t->spin_ns;
	do {
		if (io_uring_peek_cqe(ring, &cqe) == 0) {
			caught = true;
			break;
		}
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause(); /* a spinning sibling thread yields the core */
#endif
	} while (pfs_transport_now_ns() < until);
	__atomic_add_fetch(caught ? &w->t->spin_hits : &w->t->spin_misses, 1, __ATOMIC_RELAXED);
}

bool pfs_ring_worker_loop(struct pfs_worker *w)
{
	struct pfs_transport *t = w->t;
	struct pfs_ring_entry *e = &w->ent;
	int fd = fuse_session_fd(t->fs->conn.se);
	uint32_t op = FUSE_IO_URING_CMD_REGISTER;

	pfs_ring_prep_stop_poll(w);
	pfs_ring_prep_cmd(w, fd, op);
	for (;;) {
		struct io_uring_cqe *cqe;
		int r;

		if (e->registered && t->spin_ns)
			pfs_ring_watch_next(w);
		else if (e->registered)
			pfs_handoff_submit(w); /* the answer goes with the wait below */
		r = io_uring_submit_and_wait(&e->ring, 1);

		if (r < 0 && r != -EINTR) {
			pfs_log(LOG_ERR, "io_uring_enter: %s", strerror(-r));
			pfs_transport_session_ended(t, true);
			return true;
		}
		while (io_uring_peek_cqe(&e->ring, &cqe) == 0) {
			uint64_t tag = cqe->user_data;
			int res = cqe->res;

			io_uring_cqe_seen(&e->ring, cqe);
			if (tag == PFS_RING_TAG_STOP)
				return true;
			if (res == -EINTR || res == -EAGAIN) {
				pfs_ring_prep_cmd(w, fd, op);
				continue;
			}
			if (res == -ENOTCONN || res == -ECONNABORTED) {
				/* unmounted, or the connection was aborted */
				pfs_transport_session_ended(t, false);
				return true;
			}
			if (res < 0 && !e->registered) {
				pfs_log(LOG_ERR, "ring entry of CPU %u refused: %s", w->qid,
					strerror(-res));
				__atomic_add_fetch(&t->failed, 1, __ATOMIC_RELAXED);
				return false;
			}
			if (res < 0) {
				pfs_log(LOG_ERR, "ring entry of CPU %u: %s", w->qid,
					strerror(-res));
				pfs_transport_session_ended(t, true);
				return true;
			}
			if (!e->registered) {
				e->registered = true;
				__atomic_add_fetch(&t->registered, 1, __ATOMIC_RELAXED);
			}
			pfs_ring_serve(w);
			op = FUSE_IO_URING_CMD_COMMIT_AND_FETCH;
			pfs_ring_prep_cmd(w, fd, op);
		}
	}
}
