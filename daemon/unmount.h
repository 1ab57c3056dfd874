/*
 * The unmount that waits (unmount.c).
 */
#ifndef PFS_UNMOUNT_H
#define PFS_UNMOUNT_H

#include <stdint.h>
#include <sys/types.h>

/* unmount.c: the unmount that waits. The daemon resolves its mount point
 * before mounting (prepare), listens once mounted, takes commands from
 * after daemonizing until its FUSE loop ends, and reports to them right
 * after its last writeback: err 0 or -errno, lost_bytes the dirty bytes it
 * could not write. */
void pfs_unmount_prepare(const char *mountpoint);
int pfs_unmount_listen(uid_t owner);
int pfs_unmount_accept_start(void);
/* Once the FUSE loop has ended (the device number is free again); commands
 * already connected still get the report. */
void pfs_unmount_stop_listening(void);
void pfs_unmount_report(int err, uint64_t lost_bytes);
/* `pressurefs -u MOUNTPOINT` (args after -u): the exit status. */
int pfs_unmount_main(int argc, char **argv);

#endif /* PFS_UNMOUNT_H */
