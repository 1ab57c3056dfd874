/*
 * FUSE over io_uring: the kernel's protocol (FUSE 7.42, Linux 6.14), as
 * include/uapi/linux/fuse.h declares it. Debian 12's linux-libc-dev (6.1)
 * predates it, so the pieces we use are declared here; the layout is the
 * kernel's ABI and the static asserts pin it.
 */
#ifndef PFS_FUSE_URING_UAPI_H
#define PFS_FUSE_URING_UAPI_H

#include <linux/fuse.h>
#include <stdint.h>

/* INIT flag (bit 41: flags2 bit 9): the kernel offers, or the daemon takes,
 * request delivery through io_uring. */
#ifndef FUSE_OVER_IO_URING
#define FUSE_OVER_IO_URING (1ULL << 41)
#endif

/* The in/out header area and the per-opcode argument area of a ring entry. */
#define FUSE_URING_IN_OUT_HEADER_SZ 128
#define FUSE_URING_OP_IN_OUT_SZ	    128

/* Sub-commands of IORING_OP_URING_CMD on /dev/fuse (sqe->cmd_op). */
enum fuse_uring_cmd {
	FUSE_IO_URING_CMD_INVALID = 0,
	/* Give the kernel an entry (header + payload buffer) to fill. */
	FUSE_IO_URING_CMD_REGISTER = 1,
	/* Answer the request in the entry, and wait for the next one. */
	FUSE_IO_URING_CMD_COMMIT_AND_FETCH = 2,
};

/* Ring-specific part of the header buffer. */
struct fuse_uring_ent_in_out {
	uint64_t flags;
	/* Kernel -> daemon: the id to commit the answer with. */
	uint64_t commit_id;
	/* Both ways: bytes used in the payload buffer. */
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

/* The header buffer of a ring entry (iov[0] of REGISTER). */
struct fuse_uring_req_header {
	/* struct fuse_in_header (request) or struct fuse_out_header (answer) */
	char in_out[FUSE_URING_IN_OUT_HEADER_SZ];
	/* The request's first argument, the per-opcode struct (fuse_write_in,
	 * ...); empty for opcodes without one. Everything after it is in the
	 * payload buffer. */
	char op_in[FUSE_URING_OP_IN_OUT_SZ];
	struct fuse_uring_ent_in_out ring_ent_in_out;
};

/* The command in the 80-byte area of a 128-byte SQE (IORING_SETUP_SQE128). */
struct fuse_uring_cmd_req {
	uint64_t flags;
	/* COMMIT_AND_FETCH: the commit_id of the request answered */
	uint64_t commit_id;
	/* The queue (one per possible CPU) this entry belongs to. */
	uint16_t qid;
	uint8_t padding[6];
};

_Static_assert(sizeof(struct fuse_uring_ent_in_out) == 32, "fuse_uring_ent_in_out ABI");
_Static_assert(sizeof(struct fuse_uring_req_header) == 288, "fuse_uring_req_header ABI");
_Static_assert(sizeof(struct fuse_uring_cmd_req) == 24, "fuse_uring_cmd_req ABI");

#endif /* PFS_FUSE_URING_UAPI_H */
