#!/bin/bash
# Proves the ABI 2 policies work on a real mount: each mounts by name and
# switches at run time through .pressurefs/policy; a mempool switch whose
# reserve does not fit in the budget fails with ENOMEM and the old policy
# stays; under `shutdown` the first allocation failure while data is dirty
# shuts the mount down (later writes, creates and metadata changes get EIO,
# reads and fsync go on) and the data acknowledged before it still reaches
# the backing file; too_small_to_fail and a total mempool reserve serve a
# cache page (its whole allocation is the order-0 request).
# usage: policies.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"

# ---- mount by name, switch by name ----
pfs_mount -o policy=mempool,reserve=writeback:256K,mem_limit=8M,page_size=64K
assert_eq "mempool,reserve=writeback:256K,wait_ms=10" "$(ctl_read policy)" "mempool mounts by name"
got=$(ctl_try policy "mempool,reserve=64M")
assert_eq ENOMEM "$got" "a mempool switch whose reserve exceeds mem_limit fails with ENOMEM"
assert_eq "mempool,reserve=writeback:256K,wait_ms=10" "$(ctl_read policy)" "the old policy stays"
got=$(ctl_try policy "mempool,reserve=nosuch:4K")
assert_eq EINVAL "$got" "a reserve naming an unknown site is EINVAL"
for spec in "retry_mayfail,timeout_ms=50,wait_ms=5,reclaim_kb=1024" \
	"too_small_to_fail,threshold=0,wait_ms=10,stall_warn_ms=10000" "shutdown" \
	"write_through,reserve=writeback:64K,wait_ms=10" \
	"mempool,reserve=inode:64K+writeback:64K,wait_ms=10"; do
	ctl_write policy "$spec"
	assert_eq "$spec" "$(ctl_read policy)" "switched to ${spec%%,*}"
done
assert_eq OK "$(pfs_run 30 "$PFS_IO" write "$M/a" 0 65536)" "writes work under mempool"
got=$(ctl_try policy "write_through,reserve=cache_page:64K")
assert_eq EINVAL "$got" "a write_through switch with a cache_page reserve is EINVAL"
got=$(ctl_try policy "write_through,reserve=64M")
assert_eq ENOMEM "$got" "a write_through switch whose reserve exceeds mem_limit fails with ENOMEM"
assert_eq "mempool,reserve=inode:64K+writeback:64K,wait_ms=10" "$(ctl_read policy)" "the old policy stays"
pfs_umount_clean

# ---- a cache page is the order-0 request: its whole allocation, record included ----
# Three injected failures at cache_page: too_small_to_fail (threshold=0: a
# page) loops through them, and a total mempool reserve serves the page
# from an element. Both failed every page when they compared the page size
# alone with a request that also carries the page's record.
pfs_mount -o policy=too_small_to_fail,mem_limit=16M,page_size=64K
for spec in too_small_to_fail,threshold=0,wait_ms=1:loops mempool,reserve=1M,wait_ms=1:reserved; do
	stat=${spec##*:} spec=${spec%:*}
	ctl_write policy "$spec"
	# The file's page index first: the injected failures go to the page.
	assert_eq OK "$(pfs_run 30 "$PFS_IO" write "$M/page-${spec%%,*}" 0 10)" "${spec%%,*}: first write"
	ctl_read stats >"$W/stats.json"
	n0=$(json_get "$W/stats.json" "sites.cache_page.$stat")
	ctl_write fail_sites cache_page
	ctl_write fail_times 3
	ctl_write fail_probability 100
	assert_eq OK "$(pfs_run 30 "$PFS_IO" write "$M/page-${spec%%,*}" 65536 65536)" \
		"${spec%%,*}: a write needing a new page succeeds through injected page failures"
	ctl_write fail_probability 0
	ctl_read stats >"$W/stats.json"
	n=$(($(json_get "$W/stats.json" "sites.cache_page.$stat") - n0))
	[ "$n" -ge 1 ] || pfs_fail "${spec%%,*}: no cache_page $stat (got '$n'): the failures did not reach the policy"
	pfs_ok "${spec%%,*}: the page failures reached the policy ($n $stat)"
done
pfs_umount_clean

# ---- shutdown ----
pfs_mount -o policy=shutdown,mem_limit=16M,page_size=64K,writeback_ms=600000,dirty_limit=8M
mkdir "$M/d" || pfs_fail "mkdir before the shutdown"
assert_eq OK "$(pfs_run 30 "$PFS_IO" write "$M/f" 0 262144 7)" "write before the shutdown"
assert_eq OK "$(pfs_run 30 "$PFS_IO" put "$M/f" "head")" "put before the shutdown"
pfs_run 30 cat "$M/f" >"$W/f.acked" || pfs_fail "read the acknowledged data back"
# One injected failure at a page while 256 KiB are dirty.
ctl_write fail_sites cache_page
ctl_write fail_times 1
ctl_write fail_probability 100
got=$(pfs_run 30 "$PFS_IO" write "$M/g" 0 65536)
assert_match '^(ENOMEM|SHORT [0-9]+)$' "$got" "the failed write itself gets ENOMEM"
ctl_write fail_probability 0
assert_eq EIO "$(pfs_run 30 "$PFS_IO" write "$M/f" 262144 65536)" "after the shutdown a write gets EIO"
assert_eq EIO "$(pfs_run 30 "$PFS_IO" write "$M/new" 0 10)" "after the shutdown a create gets EIO"
err=$(pfs_run 30 mkdir "$M/d2" 2>&1) && pfs_fail "mkdir after the shutdown succeeded"
assert_match 'Input/output error' "$err" "after the shutdown mkdir gets EIO"
err=$(pfs_run 30 mv "$M/d" "$M/d3" 2>&1) && pfs_fail "rename after the shutdown succeeded"
assert_match 'Input/output error' "$err" "after the shutdown rename gets EIO"
err=$(pfs_run 30 chmod 600 "$M/f" 2>&1) && pfs_fail "chmod after the shutdown succeeded"
assert_match 'Input/output error' "$err" "after the shutdown chmod gets EIO"
err=$(pfs_run 30 rm "$M/f" 2>&1) && pfs_fail "unlink after the shutdown succeeded"
assert_match 'Input/output error' "$err" "after the shutdown unlink gets EIO"
pfs_run 30 cat "$M/f" | cmp -s - "$W/f.acked" || pfs_fail "reads after the shutdown"
pfs_ok "reads go on after the shutdown"
assert_eq OK "$(pfs_fsync "$M/f")" "fsync after the shutdown writes the acknowledged data back"
stats_snap s
assert_eq 1 "$(stat_get s shutdown)" "stats say the mount is shut down"
pfs_umount_clean
[ "$(grep -c 'filesystem shut down' "$PFS_LOG")" = 1 ] || pfs_fail "expected one shutdown line in the log: $(cat "$PFS_LOG")"
pfs_ok "one log line says why the mount shut down"
cmp -s "$B/f" "$W/f.acked" || pfs_fail "the backing file lacks data acknowledged before the shutdown"
pfs_ok "everything acknowledged before the shutdown is in the backing file"
[ -e "$B/new" ] && pfs_fail "a file was created after the shutdown"
pfs_ok "nothing was created after the shutdown"
