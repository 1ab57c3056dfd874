/*
 * The control directory (ctl.c), its writes parsed (ctl_parse.c: no FUSE,
 * no daemon state) and its files rendered (ctl_render.c).
 */
#ifndef PFS_CTL_H
#define PFS_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fuse_ll.h"
#include "loader.h"
#include "options.h"

struct pfs;

#define PFS_CTL_NAME	   ".pressurefs"
#define PFS_CTL_DIR_INO	   ((fuse_ino_t)2)
#define PFS_CTL_RENDER_MAX (64 * 1024) /* longest rendering but `dirty` */

enum pfs_ctl_kind {
	PFS_CTL_OPTION,
	PFS_CTL_STATS,
	PFS_CTL_DIRTY,
	PFS_CTL_DROP_CACHES,
	PFS_CTL_SYNC,
	PFS_CTL_CRASH,
	PFS_CTL_FAIL_NTH,
};

struct pfs_ctl_file {
	const char *name;
	enum pfs_ctl_kind kind;
	enum pfs_opt_id opt; /* PFS_CTL_OPTION */
	mode_t mode;
};

struct pfs_ctl_handle {
	size_t len;
	int slot; /* emergency slot in use, -1: from the allocator */
	char data[];
};

/* ---- control-file writes (ctl_parse.c): no FUSE, no daemon state ---- */

#define PFS_CTL_WRITE_MAX	4096 /* longest write a control file takes */
#define PFS_CTL_POLICY_ARGS_MAX 64   /* arg=value pairs in one policy write */

/* "NAME[,arg=value...]" cut into pieces (pointers into the split text). */
struct pfs_ctl_policy {
	const char *name;
	const char *keys[PFS_CTL_POLICY_ARGS_MAX];
	const char *values[PFS_CTL_POLICY_ARGS_MAX];
	unsigned nargs;
};

enum pfs_ctl_cmd_kind {
	PFS_CTL_CMD_SET_OPTION,	 /* opt = value */
	PFS_CTL_CMD_SET_POLICY,	 /* load policy and make it the allocator's */
	PFS_CTL_CMD_DROP_CACHES, /* drop clean pages */
	PFS_CTL_CMD_SYNC,	 /* write back every dirty page */
	PFS_CTL_CMD_CRASH,	 /* die with dirty pages unwritten */
	PFS_CTL_CMD_FAIL_NTH,	 /* arm (nth >= 1) or disarm (0) the countdown */
};

/* What one write to a control file asks for. */
struct pfs_ctl_cmd {
	enum pfs_ctl_cmd_kind kind;
	enum pfs_opt_id opt;		  /* SET_OPTION */
	long long value;		  /* SET_OPTION */
	struct pfs_ctl_policy policy;	  /* SET_POLICY: points into spec */
	char text[PFS_CTL_WRITE_MAX + 1]; /* the write without its trailing blanks */
	char spec[PFS_CTL_WRITE_MAX + 1]; /* SET_POLICY: text, split in place */
	uint64_t nth, nth_more;		  /* FAIL_NTH: alloc_fail_nth()'s n and more */
};

/* The control files (built from the option table; idempotent). */
void pfs_ctl_table_init(void);
unsigned pfs_ctl_file_count(void);
/* File i of the directory (inode PFS_CTL_DIR_INO + 1 + i); NULL past the end. */
const struct pfs_ctl_file *pfs_ctl_file_at(unsigned i);
/*
 * Turn one write(buf, len) at offset off to file into *cmd, with no side
 * effect. 0, or -EINVAL (bad text) / -EBADF (file not writable) with one
 * line in err (control bytes shown as '?').
 */
int pfs_ctl_parse_write(const struct pfs_ctl_file *file, const char *buf, size_t len, off_t off,
			struct pfs_ctl_cmd *cmd, char *err, size_t errlen);
/* Split "NAME[,arg=value...]" in place (commas, blanks, tabs, CRs and
 * newlines separate). 0, or -EINVAL with one line in err. */
int pfs_ctl_policy_split(char *spec, struct pfs_ctl_policy *out, char *err, size_t errlen);

/* ctl_render.c: render a readable control file into a new handle. */
int pfs_ctl_render(struct pfs *fs, const struct pfs_ctl_file *file, struct pfs_ctl_handle **out);
void pfs_ctl_handle_free(struct pfs *fs, struct pfs_ctl_handle *h);

/* Build the file list from the option table (once, before mounting). */
void pfs_ctl_init(void);
bool pfs_ctl_is_ino(fuse_ino_t ino);
bool pfs_ctl_enabled(struct pfs *fs);
/* Is name in the root the control directory's? */
bool pfs_ctl_shadows(struct pfs *fs, fuse_ino_t parent, const char *name);
void pfs_ctl_entry(struct pfs *fs, fuse_ino_t ino, struct fuse_entry_param *e);
void pfs_ctl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void pfs_ctl_getattr(fuse_req_t req, fuse_ino_t ino);
void pfs_ctl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_ctl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		  struct fuse_file_info *fi);
void pfs_ctl_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi);
void pfs_ctl_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_ctl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus);
/* Apply a policy spec at run time or at start ("NAME,arg=v"). */
int pfs_ctl_policy_switch(struct pfs *fs, const char *text, char *err, size_t errlen);
/* Make h the allocator's policy (its install() first: on failure, -errno
 * and the old policy stays); keeps it until unmount. */
int pfs_policy_install(struct pfs *fs, struct policy_handle *h);
/* What the fail_nth control file reads: the countdown last written, then
 * "waiting", "fired" (since it was armed, also after disarming) or "off".
 * Returns the length, like snprintf. */
size_t pfs_ctl_fail_nth_show(struct pfs *fs, char *buf, size_t len);
/* Push fail_* option values to the allocator. */
void pfs_inject_apply(struct pfs *fs);
/* Push dirty_limit and writeback_ms to the page cache (ctl_lock held). */
void pfs_cache_tune(struct pfs *fs);
/* The stats JSON (one snapshot). Returns the length needed, like snprintf. */
size_t pfs_stats_json(struct pfs *fs, char *buf, size_t len);

#endif /* PFS_CTL_H */
