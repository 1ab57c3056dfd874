/* Private to daemon/transport/: the pool and its workers. */
#ifndef PFS_TRANSPORT_I_H
#define PFS_TRANSPORT_I_H

#include <liburing.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <time.h>

#include "daemon_i.h"
#include "fuse_uring_uapi.h"
#include "transport.h"

/* Every worker's stack. Handlers keep at most ~100 KiB on it (the stats
 * rendering buffer is 64 KiB); the sanitizers' redzones need more. */
#if defined(__SANITIZE_ADDRESS__)
#define PFS_WORKER_STACK (256u * 1024u)
#else
#define PFS_WORKER_STACK (128u * 1024u)
#endif
/* A request buffer is max_write plus one page: on /dev/fuse the page holds
 * the request's headers; as a ring entry it holds the kernel's
 * fuse_uring_req_header, the headers rebuilt in front of the payload, and
 * small answers staged until the commit. */
#define PFS_REQ_HEADER_PAGE 4096u
#define PFS_MAX_WRITE	    (128u * 1024u)
#define PFS_MIN_WRITE	    (32u * 1024u)
#define PFS_RING_DEPTH_MIN  2u
#define PFS_RING_DEPTH_MAX  8u
#define PFS_RING_BYTES_MAX  (8ull << 20)
#define PFS_DEV_WORKERS_MAX 16u
#define PFS_DEV_WORKERS_MIN 2u
/* /dev/fuse workers beside the rings (FORGET, INTERRUPT, INIT) */
#define PFS_URING_DEV_WORKERS 4u

/* Where the transport stands; only moves forward. */
enum pfs_transport_state {
	PFS_TS_STARTING, /* before the INIT reply: one /dev/fuse worker serves */
	PFS_TS_URING,	 /* INIT took io_uring: ring workers register */
	PFS_TS_DEV_FUSE, /* every worker reads /dev/fuse */
	PFS_TS_STOP,	 /* the session ended: workers return */
};

/* A ring entry's small answers wait here until the handler has returned,
 * since the request's own arguments may still be in the payload buffer. */
#define PFS_RING_STAGE_OFFSET 512u
#define PFS_RING_STAGE_SIZE   3072u

struct pfs_ring_entry {
	struct io_uring ring; /* this worker's own ring: one entry, one stop poll */
	bool ring_ready;      /* ring set up (main thread, before the workers run) */
	struct iovec iov[2];  /* header page and payload, as REGISTER gives them */
	struct fuse_uring_req_header *header;
	char *payload;
	size_t payload_size;
	uint64_t commit_id; /* of the request in the entry */
	uint64_t unique;
	bool answered;	    /* the handler's answer is in the entry */
	bool staged;	    /* ... in the stage area, to move to the payload */
	uint32_t answer_sz; /* payload bytes of the answer */
	bool registered;    /* the kernel accepted the entry once */
	bool unwaited;	    /* nobody sleeps on the answer (RELEASE) */
};

struct pfs_transport;

struct pfs_worker {
	struct pfs_transport *t;
	unsigned index;
	bool ring_capable; /* has a ring entry (else /dev/fuse only) */
	unsigned qid;	   /* ring: the CPU whose queue it serves */
	void *block;	   /* from the allocator: stack, then the aligned buffer */
	void *stack;
	char *buf; /* PFS_REQ_HEADER_PAGE + max_write, page aligned */
	size_t buf_size;
	pthread_t thread;
	bool started; /* main thread only */
	struct pfs_ring_entry ent;
	/* ring_handoff (handoff.c) */
	pid_t tid;		       /* for the guard (pfs_handoff_guard) */
	bool idle_prio;		       /* atomic: at SCHED_IDLE (set by its thread, cleared
					* by whichever of it and the guard raises it) */
	uint64_t serving_since;	       /* atomic: serving a request at idle priority since */
	uint64_t taken;		       /* atomic: requests taken from the ring */
	bool pending_seen;	       /* guard only: its last look found a request unread */
	uint64_t pending_taken;	       /* guard only: taken at that look */
	uint64_t handoffs;	       /* atomic: answers submitted at idle priority */
	uint64_t handoff_stalls;       /* atomic: raised by the guard */
	uint64_t handoff_paused_until; /* atomic: no handoff before (pfs_transport_now_ns) */
};

struct pfs_transport {
	struct pfs *fs;
	enum pfs_transport_kind want;
	bool uring_possible;	  /* enable_uring=Y, io_uring works, the ring fits */
	const char *dev_fuse_why; /* why not io_uring (log line), if so */
	unsigned max_write;
	unsigned nqueues, depth; /* io_uring: queues (possible CPUs) x entries */
	uint64_t spin_ns;	 /* ring workers watch for the next request this long */
	uint64_t spin_hits;	 /* atomic: watches that caught a request */
	uint64_t spin_misses;	 /* atomic: watches that ended with none */

	/* ring_handoff (handoff.c) */
	enum pfs_handoff handoff; /* atomic: on, auto, or off (also after a failure) */
	const char *handoff_why;  /* why off when it was asked for, or NULL */
	char handoff_why_buf[200];
	int stat_fd;		     /* /proc/stat, for auto */
	uint64_t clk_tck;	     /* its unit: USER_HZ */
	pthread_mutex_t sample_lock; /* idle_ticks; held by one sampler (trylock) */
	uint64_t idle_ticks;	     /* idle + iowait at the last sample */
	uint64_t sampled_ns;	     /* atomic: when (written under sample_lock) */
	uint64_t idle_milli;	     /* atomic: idle CPUs x 1000 between the last two */
	uint64_t idle_samples;	     /* atomic: samples taken */
	bool handoff_now;	     /* atomic: auto's verdict from the last sample */
	unsigned idle_workers;	     /* atomic: ring workers at idle priority */
	uint64_t guard_taken;	     /* main thread: requests the idle workers took ... */
	uint64_t guard_active_ns;    /* ... as of this look, the last that saw one move */
	unsigned nworkers;
	unsigned ndev;		    /* workers [0, ndev) read /dev/fuse from the start */
	struct pfs_worker *workers; /* from the allocator (site request) */
	size_t charged;		    /* bytes of the pool */
	int stop_fd;		    /* eventfd that ring workers poll */

	pthread_mutex_t lock; /* state, registered, failed */
	pthread_cond_t changed;
	enum pfs_transport_state state;
	unsigned registered, failed; /* ring entries the kernel took / refused */
	bool ended_on_uring;	     /* set before state turns PFS_TS_STOP */
	sem_t wake;		     /* the main thread's: the session ended, or the
				      * first worker went to idle priority */
	int status;		     /* exit status (atomic: 1 = the transport failed) */
};

static inline uint64_t pfs_transport_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* handoff.c */
/* With io_uring possible: decide the mode (stat_fd and sample_lock are
 * made by pfs_transport_create, for the teardown to close in any case). */
int pfs_handoff_setup(struct pfs_transport *t, enum pfs_handoff want, char *err, size_t errlen);
void pfs_handoff_teardown(struct pfs_transport *t);
/* "auto", "on" or "off": the mode in force. */
const char *pfs_handoff_mode_name(const struct pfs_transport *t);
/* For the transport's log line: "handoff auto", or why it is off. */
const char *pfs_handoff_describe(const struct pfs_transport *t, char *buf, size_t len);
/* A ring worker, before it submits its answer and sleeps for its next
 * request: go to idle priority, or back, as the mode and auto's verdict say. */
void pfs_handoff_submit(struct pfs_worker *w);
/* A ring worker has a request to serve. */
static inline void pfs_handoff_serving(struct pfs_worker *w)
{
	__atomic_store_n(&w->taken, w->taken + 1, __ATOMIC_RELAXED);
	if (__atomic_load_n(&w->idle_prio, __ATOMIC_RELAXED))
		__atomic_store_n(&w->serving_since, pfs_transport_now_ns(), __ATOMIC_RELAXED);
}
/* The main thread, every PFS_HANDOFF_GUARD_NS while a worker is at idle
 * priority: raise the workers that wait behind another thread. Returns how
 * long to wait before the next look (ns), or 0 when no worker is idle. */
uint64_t pfs_handoff_guard(struct pfs_transport *t);

/* uring.c */
int pfs_ring_entry_setup(struct pfs_worker *w, char *err, size_t errlen);
void pfs_ring_entry_teardown(struct pfs_worker *w);
/* Register the entry and serve requests until the session ends; false if
 * the kernel refused the entry before serving anything. */
bool pfs_ring_worker_loop(struct pfs_worker *w);
bool pfs_uring_kernel_enabled(char *why, size_t whylen);
/* Can this process set up a ring with 128-byte SQEs? */
bool pfs_uring_probe(char *why, size_t whylen);
unsigned pfs_possible_cpus(void);

/* worker.c */
void pfs_transport_session_ended(struct pfs_transport *t, bool failed);

/* fuse_io.c: read one request (noting it for killpriv); the note for a
 * request that came from a ring. */
ssize_t pfs_fuse_io_receive(struct pfs *fs, int fd, void *buf, size_t len);
void pfs_fuse_io_note_request(struct pfs *fs, const void *buf, size_t len);

#endif /* PFS_TRANSPORT_I_H */
