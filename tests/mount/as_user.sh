#!/bin/bash
# Runs a real-mount test script as an ordinary user, the way FUSE is
# normally used: the daemon, fusermount3 and every program on the mount run
# with that user's uid, gid and groups.
# usage: as_user.sh SCRIPT PRESSUREFS PFS_MOUNT_IO [args...]
#
# Run by an ordinary user, it runs SCRIPT as that user. Run by root, it
# switches to PFS_TEST_USER (default pfs-test) with setpriv; that needs the
# user to exist and /dev/fuse to be open to everyone (0666, as Debian ships
# it). scripts/run-tests sets both up for the run and exports
# PFS_REQUIRE_TEST_USER=1, under which a missing set-up fails the test; a
# root run without it (plain `meson test`) skips with a line saying how to
# set it up. HOME is a fresh directory of the user's, removed afterwards.
set -u -o pipefail
name=$(basename "$1" .sh)
say() { printf 'as_user(%s): %s\n' "$name" "$*"; }
not_set_up() {
	if [ "${PFS_REQUIRE_TEST_USER:-0}" = 1 ]; then
		say "FAIL: $*" >&2
		exit 1
	fi
	say "SKIP: $* (scripts/run-tests sets this up for the run)"
	exit 77
}

[ $# -ge 3 ] || { echo "usage: $0 SCRIPT PRESSUREFS PFS_MOUNT_IO [args...]" >&2; exit 2; }
if [ "$(id -u)" != 0 ]; then
	say "running as $(id -un), an ordinary user already"
	exec "$@"
fi

user=${PFS_TEST_USER:-pfs-test}
uid=$(id -u "$user" 2>/dev/null) || not_set_up "no user '$user' to run the test as"
gid=$(id -g "$user")
[ "$uid" != 0 ] || { say "FAIL: PFS_TEST_USER=$user is root" >&2; exit 1; }
mode=$(stat -c %a /dev/fuse 2>/dev/null) || { say "SKIP: /dev/fuse is missing"; exit 77; }
[ $((8#$mode & 8#006)) = 6 ] || not_set_up "/dev/fuse is mode $mode: other users cannot open it (Debian ships 0666)"
command -v setpriv >/dev/null || { say "FAIL: setpriv (util-linux) is needed to switch users" >&2; exit 1; }

switch() { setpriv --reuid="$uid" --regid="$gid" --init-groups --reset-env -- "$@"; }
for f in "$1" "$2" "$3"; do
	switch test -x "$f" ||
		{ say "FAIL: user $user cannot run $f (a parent directory closed to others?)" >&2; exit 1; }
done

home=$(mktemp -d "${TMPDIR:-/tmp}/pfs-home-$name.XXXXXX") || exit 1
chown "$uid:$gid" "$home"
chmod 700 "$home"
trap 'rm -rf --one-file-system "$home"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
say "running as $user (uid $uid)"
# --reset-env leaves HOME, USER, SHELL, PATH (the user's); keep what the
# test runner passed that the scripts read.
keep=()
for v in TMPDIR PFS_DAEMON_FLAGS PFS_TEST_TRANSPORT PFS_KEEP PFS_MOUNT_TIMEOUT PFS_EXIT_TIMEOUT PFS_OP_TIMEOUT \
	ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS MALLOC_PERTURB_; do
	[ -n "${!v+x}" ] && keep+=("$v=${!v}")
done
switch env HOME="$home" PATH="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" PFS_AS_USER=1 \
	"${keep[@]}" "$@"
