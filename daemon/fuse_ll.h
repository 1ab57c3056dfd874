/*
 * libfuse's low-level API at the version the daemon is written against:
 * every daemon header that needs FUSE types includes it through here.
 */
#ifndef PFS_FUSE_LL_H
#define PFS_FUSE_LL_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#endif /* PFS_FUSE_LL_H */
