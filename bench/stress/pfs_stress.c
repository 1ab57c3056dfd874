/* pfs-stress: the stress writer and verifier of pressurefs. An ordinary
 * application: it works on any directory and links neither the allocator
 * nor FUSE. See stress_cli.c for the commands. */
#include "stress_i.h"

int main(int argc, char **argv)
{
	return stress_main(argc, argv);
}
