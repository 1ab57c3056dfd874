/*
 * Not a policy: a shared object that proves it was loaded. Its constructor
 * (which runs at dlopen(), before any symbol check) creates the file named
 * by $PFS_MARKER. policy_cwd.sh plants it as foo.so and retry.so in the
 * current directory of the mount command and checks that no marker
 * appears: a policy given by name comes only from the plugin directory.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void pfs_cwd_marker(void)
{
	const char *path = getenv("PFS_MARKER");
	int fd;

	if (!path)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd >= 0) {
		(void)write(fd, "loaded\n", 7);
		close(fd);
	}
}
