/*
 * pfs-godown: shut a filesystem down at once, the way xfstests' godown does,
 * so that whatever it had not yet handed to its block device is lost: a power
 * cut below pressurefs. What reached the device survives; a later mount sees
 * the filesystem as the journal left it.
 *
 *   pfs-godown [--flush | --logflush | --nologflush] [--any-device] PATH
 *
 * PATH is any file or directory on the filesystem. The default is
 * --nologflush (FS_GOING_FLAGS_NOLOGFLUSH: neither data nor the log is
 * flushed). Needs CAP_SYS_ADMIN and a filesystem that implements the ioctl
 * (ext4, xfs, f2fs, btrfs since 6.x). A mistyped PATH would take down the
 * machine's own filesystem, so only a filesystem on a loop device is shut
 * down unless --any-device says otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/*
 * From the kernel's include/uapi/linux/fs.h; Debian 12's headers lack them,
 * and the values are ABI.
 */
#ifndef FS_IOC_SHUTDOWN
#define FS_IOC_SHUTDOWN _IOR('X', 125, uint32_t)
#endif
#ifndef FS_GOING_FLAGS_DEFAULT
#define FS_GOING_FLAGS_DEFAULT	  0x0 /* flush data and the log first */
#define FS_GOING_FLAGS_LOGFLUSH	  0x1 /* flush the log, not the data */
#define FS_GOING_FLAGS_NOLOGFLUSH 0x2 /* flush nothing */
#endif
#define GODOWN_LOOP_MAJOR 7 /* include/uapi/linux/major.h: LOOP_MAJOR */

static int godown_usage(FILE *out)
{
	fprintf(out, "usage: pfs-godown [--flush | --logflush | --nologflush] [--any-device] PATH\n"
		     "Shut down the filesystem holding PATH at once (FS_IOC_SHUTDOWN).\n"
		     "  --nologflush  flush nothing: unwritten data and log are lost (default)\n"
		     "  --logflush    flush the log first, not the data\n"
		     "  --flush       flush data and log first\n"
		     "  --any-device  also when the filesystem is not on a loop device\n");
	return out == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
	uint32_t flags = FS_GOING_FLAGS_NOLOGFLUSH;
	const char *path = NULL;
	int any_device = 0;
	struct stat st;
	int fd;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--nologflush"))
			flags = FS_GOING_FLAGS_NOLOGFLUSH;
		else if (!strcmp(argv[i], "--logflush"))
			flags = FS_GOING_FLAGS_LOGFLUSH;
		else if (!strcmp(argv[i], "--flush"))
			flags = FS_GOING_FLAGS_DEFAULT;
		else if (!strcmp(argv[i], "--any-device"))
			any_device = 1;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return godown_usage(stdout);
		else if (argv[i][0] == '-' || path) {
			fprintf(stderr,
				"pfs-godown: unexpected argument '%s' (one PATH and "
				"--flush, --logflush, --nologflush or --any-device)\n",
				argv[i]);
			return 2;
		} else
			path = argv[i];
	}
	if (!path)
		return godown_usage(stderr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "pfs-godown: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (fstat(fd, &st) < 0) {
		fprintf(stderr, "pfs-godown: %s: %s\n", path, strerror(errno));
		close(fd);
		return 1;
	}
	if (!any_device && major(st.st_dev) != GODOWN_LOOP_MAJOR) {
		fprintf(stderr,
			"pfs-godown: %s is on device %u:%u, not a loop device: refused "
			"(--any-device to shut it down anyway)\n",
			path, major(st.st_dev), minor(st.st_dev));
		close(fd);
		return 1;
	}
	if (ioctl(fd, FS_IOC_SHUTDOWN, &flags) < 0) {
		int err = errno;

		fprintf(stderr, "pfs-godown: FS_IOC_SHUTDOWN on %s: %s%s\n", path, strerror(err),
			err == ENOTTY ? " (the filesystem does not implement it)" : "");
		close(fd);
		return 1;
	}
	close(fd);
	return 0;
}
