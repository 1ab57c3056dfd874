#!/bin/bash
# Proves fio's verified random writes survive the mount: a small randwrite
# job with verify=crc32c (verified through the mount, with several jobs
# writing at once), then verified again after a remount.
# usage: prog_fio.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"
command -v fio >/dev/null || pfs_fail "fio is not installed (apt-get install fio)"

job() { # extra fio args
	pfs_run 180 fio --name=pfs --directory="$M" --rw=randwrite --bs=4k --bsrange=4k-128k \
		--size=8M --numjobs=2 --ioengine=psync --verify=crc32c --verify_fatal=1 \
		--do_verify=1 --randrepeat=1 --randseed=42 --group_reporting "$@" >"$W/fio.out" 2>&1
}

pfs_mount -o policy=retry,mem_limit=64M
job --fsync=16 || pfs_fail "fio randwrite + verify: $(tail -20 "$W/fio.out")"
grep -q 'err= 0' "$W/fio.out" || pfs_fail "fio reports errors: $(grep 'err=' "$W/fio.out")"
pfs_ok "fio randwrite with verify=crc32c through the mount"
pfs_umount_clean
pfs_mount -o policy=enomem
pfs_run 180 fio --name=pfs --directory="$M" --rw=randwrite --bs=4k --bsrange=4k-128k --size=8M \
	--numjobs=2 --ioengine=psync --verify=crc32c --verify_fatal=1 --verify_only \
	--randrepeat=1 --randseed=42 --group_reporting >"$W/fio2.out" 2>&1 ||
	pfs_fail "fio verify_only after remount: $(tail -20 "$W/fio2.out")"
pfs_ok "fio verify_only after remount"
pfs_umount_clean
