#!/bin/bash
# Proves make sees on the mount the timestamps it needs: a small C project
# (three sources, two headers, a Makefile with explicit dependencies)
# builds; after its files are written back, `make` rebuilds nothing; after
# one source is edited it rebuilds exactly that object and the program;
# after a header is edited, exactly the objects that include it and the
# program; and the program built on the mount runs with the edited code.
# Timestamps are compared after the kernel's attribute cache has expired
# (the daemon's timeout is 1 s), so make sees what the daemon reports.
# usage: prog_make.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"
command -v make >/dev/null || pfs_fail "make is not installed"
command -v cc >/dev/null || pfs_fail "cc is not installed"

# Past the kernel's attribute cache (entry/attr timeout 1 s).
attr_expire() { sleep 1.2; }

# make_in DIR: run make there; BUILT = the targets it rebuilt, sorted.
make_in() {
	pfs_run 120 make -C "$1" >"$W/make.out" 2>&1 || pfs_fail "make failed: $(tail -5 "$W/make.out")"
	BUILT=$(sed -n 's/^built //p' "$W/make.out" | sort | tr '\n' ' ' | sed 's/ $//')
}

pfs_mount -o policy=retry
P=$M/proj
pfs_must mkdir -p "$P"
cat >"$P/Makefile" <<'EOF'
prog: main.o a.o b.o
	@echo built $@
	@$(CC) -o $@ main.o a.o b.o
%.o: %.c
	@echo built $@
	@$(CC) -c -o $@ $<
main.o: main.c a.h b.h
a.o: a.c a.h common.h
b.o: b.c b.h common.h
EOF
printf '#define GREETING "hello"\n' >"$P/common.h"
printf 'const char *a(void);\n' >"$P/a.h"
printf 'int b(void);\n' >"$P/b.h"
printf '#include "a.h"\n#include "common.h"\nconst char *a(void) { return GREETING; }\n' >"$P/a.c"
printf '#include "b.h"\n#include "common.h"\nint b(void) { return 1; }\n' >"$P/b.c"
cat >"$P/main.c" <<'EOF'
#include <stdio.h>
#include "a.h"
#include "b.h"
int main(void) { printf("%s %d\n", a(), b()); return 0; }
EOF

make_in "$P"
assert_eq "a.o b.o main.o prog" "$BUILT" "first make builds everything"
assert_eq "hello 1" "$(pfs_run 10 "$P/prog")" "the program built on the mount runs"

# Written back: the backing files' timestamps now count too.
ctl_write sync 1
attr_expire
make_in "$P"
assert_eq "" "$BUILT" "after writeback, make rebuilds nothing"

printf '#include "b.h"\n#include "common.h"\nint b(void) { return 2; }\n' >"$P/b.c"
attr_expire
make_in "$P"
assert_eq "b.o prog" "$BUILT" "after editing b.c, make rebuilds exactly b.o and prog"
assert_eq "hello 2" "$(pfs_run 10 "$P/prog")" "the rebuilt program has the edit"
attr_expire
make_in "$P"
assert_eq "" "$BUILT" "right after, make rebuilds nothing"

printf '#define GREETING "bye"\n' >"$P/common.h"
attr_expire
make_in "$P"
assert_eq "a.o b.o prog" "$BUILT" "after editing common.h, make rebuilds exactly a.o, b.o and prog"
assert_eq "bye 2" "$(pfs_run 10 "$P/prog")" "the rebuilt program has the header's edit"

ctl_write sync 1
attr_expire
make_in "$P"
assert_eq "" "$BUILT" "after writeback again, make rebuilds nothing"

out=$(pfs_run 120 "$PFS_EXE" -u "$M" 2>&1) || pfs_fail "pressurefs -u: $out"
pfs_forget_mount "$M"
pfs_wait_pid "$PFS_PID" 10 && pfs_forget_pid "$PFS_PID"
assert_eq "bye 2" "$(pfs_run 10 "$B/proj/prog")" "after unmount the backing dir holds the built program"
make_in "$B/proj"
assert_eq "" "$BUILT" "in the backing dir too, make finds everything up to date"
