/*
 * pressurefs: command line, setup, mount, the FUSE loop and teardown.
 *
 * Everything that can be wrong with the command line (options, directories,
 * the policy and its arguments) is checked before anything is mounted; a
 * problem is one line on stderr and exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "daemon_i.h"
#include "ops/ops.h"
#include "unmount.h"
#include "memtune.h"
#include "pfs_config.h"
#include "transport/transport.h"

static void pfs_op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct pfs *fs = userdata;

	/* The worker pool's buffers hold this much (transport/worker.c);
	 * libfuse sizes max_pages from it. */
	conn->max_write = pfs_transport_max_write(fs);
	if (fs->ctl.opt.num[PFS_OPT_writeback_cache] &&
	    (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
		fs->conn.kernel_wbcache = true;
	} else {
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	}
	/* Writes of one file proceed in parallel up to the cache's own locks. */
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
}

static const struct fuse_lowlevel_ops pfs_ops = {
	.init = pfs_op_init,
	.lookup = pfs_op_lookup,
	.forget = pfs_op_forget,
	.forget_multi = pfs_op_forget_multi,
	.getattr = pfs_op_getattr,
	.setattr = pfs_op_setattr,
	.readlink = pfs_op_readlink,
	.mknod = pfs_op_mknod,
	.mkdir = pfs_op_mkdir,
	.symlink = pfs_op_symlink,
	.link = pfs_op_link,
	.unlink = pfs_op_unlink,
	.rmdir = pfs_op_rmdir,
	.rename = pfs_op_rename,
	.statfs = pfs_op_statfs,
	.opendir = pfs_op_opendir,
	.readdir = pfs_op_readdir,
	.readdirplus = pfs_op_readdirplus,
	.releasedir = pfs_op_releasedir,
	.fsyncdir = pfs_op_fsyncdir,
	.create = pfs_op_create,
	.open = pfs_op_open,
	.read = pfs_op_read,
	.write = pfs_op_write,
	.flush = pfs_op_flush,
	.release = pfs_op_release,
	.fsync = pfs_op_fsync,
	.fallocate = pfs_op_fallocate,
	.lseek = pfs_op_lseek,
	.setxattr = pfs_op_setxattr,
	.getxattr = pfs_op_getxattr,
	.listxattr = pfs_op_listxattr,
	.removexattr = pfs_op_removexattr,
};

static void __attribute__((format(printf, 1, 2))) pfs_die(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	pfs_verr(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "pressurefs: %s\n", line);
	exit(1);
}

/* The daemon chdirs to / when it daemonizes: keep paths absolute. */
static char *pfs_absolute(const char *path)
{
	char cwd[PATH_MAX], *out;

	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return strdup(path);
	out = malloc(strlen(cwd) + strlen(path) + 2);
	if (out)
		sprintf(out, "%s/%s", cwd, path);
	return out;
}

static void pfs_check_dirs(const struct pfs_cmdline *cl)
{
	struct stat st;
	int fd;

	fd = open(cl->backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		pfs_die("backing directory '%s': %s (expected a readable directory)", cl->backing,
			strerror(errno));
	close(fd);
	if (stat(cl->mountpoint, &st) < 0)
		pfs_die("mountpoint '%s': %s (expected an existing directory)", cl->mountpoint,
			strerror(errno));
	if (!S_ISDIR(st.st_mode))
		pfs_die("mountpoint '%s': not a directory", cl->mountpoint);
}

/*
 * Each inode the kernel keeps holds an O_PATH fd, each opened file one more:
 * raise the fd limit as far as we may (root: up to fs.nr_open).
 */
static void pfs_fd_limit_raise(void)
{
	struct rlimit rl;
	unsigned long long nr_open = 0;
	FILE *f;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	f = fopen("/proc/sys/fs/nr_open", "r");
	if (f) {
		if (fscanf(f, "%llu", &nr_open) != 1)
			nr_open = 0;
		fclose(f);
	}
	if (geteuid() == 0 && nr_open > rl.rlim_max) {
		struct rlimit more = {.rlim_cur = nr_open, .rlim_max = nr_open};
		if (setrlimit(RLIMIT_NOFILE, &more) == 0)
			return;
	}
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

static void pfs_root_init(struct pfs *fs, const char *backing)
{
	struct pfs_inode *root = &fs->inodes.root;
	struct stat st;

	root->fd = open(backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root->fd < 0 || fstat(root->fd, &st) < 0)
		pfs_die("backing directory '%s': %s", backing, strerror(errno));
	root->dev = st.st_dev;
	root->ino = st.st_ino;
	root->type = S_IFDIR;
	root->nlookup = 1;
	root->data_fd = -1;
	pthread_mutex_init(&root->open_lock, NULL);
	pthread_mutex_init(&root->append_lock, NULL);
}

static void pfs_stats_file_write(struct pfs *fs)
{
	const char *path = fs->ctl.opt.str[PFS_OPT_stats_file];
	size_t len;
	char *buf;
	FILE *f;

	if (!path)
		return;
	len = pfs_stats_json(fs, NULL, 0) + 1;
	buf = malloc(len);
	if (!buf)
		return;
	pfs_stats_json(fs, buf, len);
	f = fopen(path, "w");
	if (!f || fputs(buf, f) == EOF || fclose(f) == EOF)
		pfs_log(LOG_ERR, "stats_file '%s': %s", path, strerror(errno));
	free(buf);
}

/* Build libfuse's own arguments: only what it understands. */
static bool pfs_fuse_opt_given(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

/* BACKING_DIR as a libfuse option value: a ',' in a directory name must
 * not start a new option (",allow_other"), so ',' and '\\' are escaped. */
static char *pfs_fuse_opt_escape(const char *value)
{
	char *out = malloc(2 * strlen(value) + 1), *d = out;

	if (!out)
		return NULL;
	for (const char *s = value; *s; s++) {
		if (*s == ',' || *s == '\\')
			*d++ = '\\';
		*d++ = *s;
	}
	*d = '\0';
	return out;
}

static int pfs_fuse_args(const struct pfs_cmdline *cl, struct fuse_args *args)
{
	char *opts, *fsname;
	bool perms;
	int r;

	if (fuse_opt_add_arg(args, "pressurefs"))
		return -ENOMEM;
	if (cl->debug && fuse_opt_add_arg(args, "-d"))
		return -ENOMEM;
	/*
	 * The daemon acts as root on the backing files: with allow_other,
	 * other users are held to the file modes by the kernel
	 * (default_permissions), never left to whatever root may do.
	 */
	perms = pfs_fuse_opt_given(cl->fuse_opts, "allow_other") &&
		!pfs_fuse_opt_given(cl->fuse_opts, "default_permissions") &&
		!cl->no_default_permissions;
	fsname = pfs_fuse_opt_escape(cl->backing);
	if (!fsname)
		return -ENOMEM;
	r = asprintf(&opts, "-osubtype=pressurefs,fsname=%s%s%s%s", fsname,
		     cl->fuse_opts ? "," : "", cl->fuse_opts ? cl->fuse_opts : "",
		     perms ? ",default_permissions" : "");
	free(fsname);
	if (r < 0)
		return -ENOMEM;
	/* Options the user gave come last, so they win. */
	r = fuse_opt_add_arg(args, opts);
	free(opts);
	return r ? -ENOMEM : 0;
}

/*
 * pfs_exit_signals: SIGHUP, SIGINT and SIGTERM reach the main thread only.
 * libfuse's handlers (no SA_RESTART) merely set the session's exit flag,
 * but the thread that takes one has its blocking call cut short with
 * EINTR; the main thread waits for exactly that (pfs_transport_run), while
 * in a worker it would cut into a request and leave the main thread to
 * find the flag by polling. A process-directed signal goes to a thread
 * that does not block it: so every other thread blocks them from birth.
 */
void pfs_exit_signals_block(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

static int pfs_run(struct pfs *fs, const struct pfs_cmdline *cl)
{
	sigset_t mask;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	int r;

	if (pfs_fuse_args(cl, &args))
		pfs_die("out of memory");
	fs->conn.se = fuse_session_new(&args, &pfs_ops, sizeof(pfs_ops), fs);
	fuse_opt_free_args(&args);
	if (!fs->conn.se)
		pfs_die("cannot start the FUSE session (see the message above)");
	if (fuse_set_signal_handlers(fs->conn.se))
		pfs_die("cannot install signal handlers");
	/* Before mounting: resolving the path afterwards would ask ourselves. */
	pfs_unmount_prepare(cl->mountpoint);
	if (fuse_session_mount(fs->conn.se, cl->mountpoint)) {
		fuse_remove_signal_handlers(fs->conn.se);
		fuse_session_destroy(fs->conn.se);
		pfs_die("cannot mount on '%s'", cl->mountpoint);
	}
	/* Same fd, our read/writev: see fuse_io.c (killpriv). */
	r = pfs_fuse_io_install(fs, cl->debug);
	if (r)
		pfs_log(LOG_WARNING, "own /dev/fuse I/O: %s (no FUSE_HANDLE_KILLPRIV_V2)",
			strerror(-r));
	/* Listening before the shell gets its prompt back: a script may call
	 * pressurefs -u the moment we daemonize. */
	r = pfs_unmount_listen(fs->owner.uid);
	if (r)
		pfs_log(LOG_WARNING, "pressurefs -u will not reach this daemon: %s", strerror(-r));
	if (!cl->foreground) {
		fuse_daemonize(0);
		pfs_log_use_syslog(true);
		openlog("pressurefs", LOG_PID, LOG_DAEMON);
	}
	/* After daemonizing: fork() keeps no threads. A signal meanwhile
	 * waits until the mask is restored, then sets the exit flag. */
	pfs_exit_signals_block(&mask);
	r = pcache_writeback_start(fs->cache);
	if (r)
		pfs_log(LOG_WARNING, "writeback thread: %s (writing back on demand only)",
			strerror(-r));
	r = pfs_inode_shrinker_start(fs);
	if (r)
		pfs_log(LOG_WARNING, "inode shrinker: %s", strerror(-r));
	r = pfs_unmount_accept_start();
	if (r)
		pfs_log(LOG_WARNING, "pressurefs -u waiters: %s", strerror(-r));
	pthread_sigmask(SIG_SETMASK, &mask, NULL);
	/* The fixed worker pool, /dev/fuse or io_uring (transport/). */
	r = pfs_transport_run(fs);
	pfs_inode_shrinker_stop(fs);
	fuse_remove_signal_handlers(fs->conn.se);
	fuse_session_unmount(fs->conn.se);
	return r;
}

static int pfs_teardown(struct pfs *fs)
{
	struct pcache_usage left;
	int r, status = 0;

	pfs_unmount_stop_listening();
	/* Unmounted: write everything back before anything goes. */
	r = pcache_sync_all(fs->cache);
	pcache_usage_read(fs->cache, &left);
	if (r) {
		pfs_log(LOG_ERR, "writing back at unmount: %s: %llu dirty bytes are lost",
			strerror(-r), (unsigned long long)left.dirty_bytes);
		status = 1;
	}
	/* The moment an unmount that waits is waiting for. */
	pfs_unmount_report(r, left.dirty_bytes);
	pfs_file_handles_drop(fs);
	pcache_writeback_stop(fs->cache);
	pfs_inode_table_destroy(fs);
	pcache_usage_read(fs->cache, &fs->final_usage);
	pcache_destroy(fs->cache);
	fs->cache = NULL;
	pfs_stats_file_write(fs);
	fuse_session_destroy(fs->conn.se);
	pfs_transport_destroy(fs);
	if (fs->ctl.policy && fs->ctl.policy->ops->uninstall)
		fs->ctl.policy->ops->uninstall(fs->ctl.policy->state);
	alloc_destroy(fs->alloc);
	/* After the allocator: no thread can ask a policy any more. */
	for (unsigned i = 0; i < fs->ctl.npolicies; i++)
		policy_unload(fs->ctl.policies[i]);
	close(fs->inodes.root.fd);
	return status;
}

int main(int argc, char **argv)
{
	static struct pfs fs;
	struct pfs_cmdline cl;
	struct policy_handle *policy;
	char err[1024];
	int r, status;

	if (argc >= 2 && strcmp(argv[1], "-u") == 0)
		return pfs_unmount_main(argc - 2, argv + 2);
	if (pfs_cmdline_parse(argc, argv, &cl, err, sizeof(err)))
		pfs_die("%s", err);
	if (cl.help) {
		pfs_usage_print(stdout, "pressurefs");
		return 0;
	}
	if (cl.version) {
		printf("pressurefs %s\nlibfuse %s\n", PFS_VERSION, fuse_pkgversion());
		return 0;
	}
	pfs_check_dirs(&cl);
	/* Before any thread exists: one malloc arena for the whole daemon. */
	pfs_memtune_apply((size_t)cl.opt.num[PFS_OPT_page_size]);
	if (cl.opt.str[PFS_OPT_stats_file]) {
		char *abs = pfs_absolute(cl.opt.str[PFS_OPT_stats_file]);
		if (!abs)
			pfs_die("out of memory");
		free(cl.opt.str[PFS_OPT_stats_file]);
		cl.opt.str[PFS_OPT_stats_file] = abs;
	}
	policy = policy_load(cl.opt.str[PFS_OPT_policy], (const char *const *)cl.policy_keys,
			     (const char *const *)cl.policy_values, cl.npolicy_args,
			     &pfs_policy_host, err, sizeof(err));
	if (!policy)
		pfs_die("%s", err);

	/* Valid: from here on, failures are the system's, not the user's. */
	umask(0); /* the kernel already applied the caller's umask */
	pfs_fd_limit_raise();
	fs.ctl.opt = cl.opt;
	fs.owner.uid = getuid();
	fs.owner.gid = getgid();
	fs.owner.as_root = geteuid() == 0;
	fs.conn.timeout = 1.0;
	fs.conn.attr_timeout = (double)cl.opt.num[PFS_OPT_attr_timeout];
	fs.conn.foreground = cl.foreground;
	pthread_mutex_init(&fs.ctl.lock, NULL);
	pfs_ctl_init();
	fs.alloc = alloc_create(&(struct alloc_config){
		.mem_limit = (uint64_t)fs.ctl.opt.num[PFS_OPT_mem_limit],
		.balloon = (uint64_t)fs.ctl.opt.num[PFS_OPT_balloon],
		.stock_bytes = ALLOC_DEFAULT_STOCK_BYTES,
		.log_host = &pfs_policy_host,
	});
	if (!fs.alloc)
		pfs_die("cannot set up the allocator: %s", strerror(errno));
	pfs_policy_host_bind(&fs);
	r = pfs_policy_install(&fs, policy);
	if (r)
		pfs_die("policy %s: cannot install it: %s%s", policy->ops->name, strerror(-r),
			r == -ENOMEM ? " (its reserve does not fit in mem_limit)" : "");
	fs.cache = pcache_create(
		fs.alloc,
		&(struct pcache_config){
			.page_size = (size_t)fs.ctl.opt.num[PFS_OPT_page_size],
			.dirty_limit = (uint64_t)fs.ctl.opt.num[PFS_OPT_dirty_limit],
			.clean_limit = (uint64_t)fs.ctl.opt.num[PFS_OPT_clean_limit],
			.buffered_only = !fs.ctl.opt.num[PFS_OPT_direct_writeback],
			.writeback_ms = (unsigned)fs.ctl.opt.num[PFS_OPT_writeback_ms],
			.writers_unthrottled = !fs.ctl.opt.num[PFS_OPT_dirty_throttle],
			.writeback_delay_us = (unsigned)fs.ctl.opt.num[PFS_OPT_writeback_delay_us],
		},
		&pfs_inode_cache_ops);
	if (!fs.cache)
		pfs_die("cannot set up the page cache (mem_limit too small?)");
	pfs_root_init(&fs, cl.backing);
	if (pfs_inode_table_init(&fs))
		pfs_die("cannot set up the inode table (mem_limit too small?)");
	/* Charged now, so the budget can never leave no buffer to answer. */
	if (pfs_transport_create(
		    &fs,
		    &(struct pfs_transport_config){
			    .want = (enum pfs_transport_kind)fs.ctl.opt.num[PFS_OPT_transport],
			    .single_thread = cl.single_thread,
			    .spin_us = (unsigned)fs.ctl.opt.num[PFS_OPT_ring_spin_us],
			    .handoff = (enum pfs_handoff)fs.ctl.opt.num[PFS_OPT_ring_handoff],
		    },
		    err, sizeof(err)))
		pfs_die("%s", err);
	/* Injection starts with the filesystem, not with its own setup. */
	pfs_inject_apply(&fs);

	status = pfs_run(&fs, &cl);
	r = pfs_teardown(&fs);
	if (!r)
		r = status;
	/* The option strings moved into fs.ctl.opt; free them through cl. */
	pfs_cmdline_free(&cl);
	return r;
}
