#!/bin/bash
# Proves the statistics move as they should: every promised key is there
# (top level, total, each site); calls and bytes grow with writes; cached
# data shows as live, cached and dirty bytes; sync empties dirty and counts
# pages written; drop_caches makes live and cached shrink; reads fill the
# cache again; stats_file holds the final JSON after unmount.
# usage: stats.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"

pfs_mount -o policy=retry,mem_limit=64M,page_size=64K,writeback_ms=600000,stats_file="$W/final.json"

stats_snap s0
out=$(pfs_check stats-keys "$W/s0.json" 2>&1) || pfs_fail "$out"
pfs_ok "stats has every key of the spec"
assert_eq retry "$(stat_get s0 policy)" "stats.policy"
assert_eq 67108864 "$(stat_get s0 mem_limit)" "stats.mem_limit"
assert_eq 0 "$(stat_get s0 balloon)" "stats.balloon"

head -c $((4 << 20)) /dev/urandom >"$W/data"
pfs_must dd if="$W/data" of="$M/file" bs=256K status=none
stats_snap s1
assert_gt "$(stat_get s1 total.calls)" "$(stat_get s0 total.calls)" "total.calls grows with writes"
assert_gt "$(stat_get s1 total.bytes)" "$(stat_get s0 total.bytes)" "total.bytes grows with writes"
assert_ge "$(stat_get s1 sites.cache_page.calls)" $(($(stat_get s0 sites.cache_page.calls) + 64)) "a cache page per 64K written"
assert_ge "$(stat_get s1 live)" $((4 << 20)) "live holds the cached 4 MiB"
assert_ge "$(stat_get s1 cached)" $((4 << 20)) "cached holds the 4 MiB"
assert_gt "$(stat_get s1 dirty)" 0 "dirty bytes before writeback"
assert_ge "$(stat_get s1 peak)" "$(stat_get s1 live)" "peak >= live"
assert_ge "$(stat_get s1 charged)" "$(stat_get s1 live)" "charged >= live"

ctl_write sync 1
stats_snap s2
assert_eq 0 "$(stat_get s2 dirty)" "dirty is 0 after sync"
assert_ge "$(stat_get s2 pages_written)" $(($(stat_get s1 pages_written) + 64)) "sync wrote the pages"
assert_file_eq "$W/data" "$B/file" "sync put the data in the backing file"
# Whole 64K pages in long runs go to the disk with O_DIRECT where the
# backing fs takes it (probed with dd); the rest through its page cache.
if dd if=/dev/zero of="$B/.dio-probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null; then
	assert_ge "$(stat_get s2 written_direct)" $((4 << 20)) "sync wrote the 4 MiB with O_DIRECT"
else
	pfs_ok "the backing fs has no O_DIRECT: written_direct not checked"
fi
rm -f "$B/.dio-probe"

ctl_write drop_caches 1
stats_snap s3
assert_lt "$(stat_get s3 live)" "$(stat_get s2 live)" "drop_caches shrinks live"
assert_lt "$(stat_get s3 cached)" "$(stat_get s2 cached)" "drop_caches shrinks cached"
assert_lt "$(stat_get s3 cached)" $((1 << 20)) "almost nothing cached after drop_caches"
assert_gt "$(stat_get s3 sites.cache_page.frees)" "$(stat_get s2 sites.cache_page.frees)" "cache_page frees counted"
assert_ge "$(stat_get s3 peak)" "$(stat_get s2 peak)" "peak does not shrink (it may grow: per-thread stock counts in it)"

assert_file_eq "$W/data" "$M/file" "the file reads back"
stats_snap s4
assert_gt "$(stat_get s4 cached)" "$(stat_get s3 cached)" "reading fills the cache again"

pfs_umount_clean
[ -s "$W/final.json" ] || pfs_fail "stats_file $W/final.json was not written at unmount"
out=$(pfs_check stats-keys "$W/final.json" 2>&1) || pfs_fail "stats_file: $out"
pfs_ok "stats_file has every key"
assert_ge "$(json_get "$W/final.json" total.calls)" "$(stat_get s4 total.calls)" "stats_file counts everything"
assert_eq retry "$(json_get "$W/final.json" policy)" "stats_file policy"

# direct_writeback=0: the same data, never with O_DIRECT.
pfs_mount -o policy=retry,page_size=64K,writeback_ms=600000,direct_writeback=0
pfs_must dd if="$W/data" of="$M/file2" bs=256K status=none
ctl_write sync 1
stats_snap s5
assert_eq 0 "$(stat_get s5 written_direct)" "direct_writeback=0 writes nothing with O_DIRECT"
assert_file_eq "$W/data" "$B/file2" "direct_writeback=0 put the data in the backing file"
pfs_umount_clean
