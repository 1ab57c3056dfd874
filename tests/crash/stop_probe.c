/*
 * pfs-stop-probe FIFO MARKER: a process with one thread held inside a system
 * call that SIGSTOP cannot interrupt, for stop_test.sh.
 *
 * A second thread starts a child with clone(CLONE_VM | CLONE_VFORK): the
 * kernel keeps the thread in an uninterruptible wait (state D) until the
 * child exits, and the child exits only after it has read a byte from FIFO.
 * So the test decides when the call returns, and a SIGSTOP sent meanwhile
 * stops the thread only then, as it would a daemon thread inside fsync(2).
 * When the call returns the thread writes "returned" to MARKER: if that
 * file appears while the process was meant to be stopped, the thread ran
 * on. The main thread only waits (state S).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROBE_CHILD_STACK (64 * 1024)

static const char *probe_fifo, *probe_marker;

/* The child: shares the thread's memory (CLONE_VM) on a stack of its own,
 * so it may call what it likes before _exit. */
static int probe_child(void *arg)
{
	char c;
	int fd;

	(void)arg;
	fd = open(probe_fifo, O_RDONLY);
	if (fd >= 0) {
		while (read(fd, &c, 1) < 0 && errno == EINTR)
			;
		close(fd);
	}
	_exit(0);
}

static void *probe_holder(void *arg)
{
	static char stack[PROBE_CHILD_STACK] __attribute__((aligned(16)));
	int fd;

	(void)arg;
	/* Returns once the child has exited (CLONE_VFORK). */
	if (clone(probe_child, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, NULL) < 0) {
		fprintf(stderr, "pfs-stop-probe: clone: %s\n", strerror(errno));
		exit(1);
	}
	fd = open(probe_marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		if (write(fd, "returned\n", 9) != 9)
			fprintf(stderr, "pfs-stop-probe: cannot write %s\n", probe_marker);
		close(fd);
	}
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;

	if (argc != 3) {
		fprintf(stderr,
			"usage: pfs-stop-probe FIFO MARKER (see the header of stop_probe.c)\n");
		return 2;
	}
	probe_fifo = argv[1];
	probe_marker = argv[2];
	if (pthread_create(&t, NULL, probe_holder, NULL) != 0) {
		fprintf(stderr, "pfs-stop-probe: cannot start its thread\n");
		return 1;
	}
	for (;;)
		pause();
}
