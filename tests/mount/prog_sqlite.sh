#!/bin/bash
# Proves sqlite3 works on the mount: a database with 200 committed
# transactions (rollback journal, then WAL) passes PRAGMA integrity_check,
# holds every row, and does so again after a remount and in the backing dir.
# usage: prog_sqlite.sh PRESSUREFS PFS_MOUNT_IO
. "${0%/*}/lib.sh" || exit 1
pfs_init "$@"
command -v sqlite3 >/dev/null || pfs_fail "sqlite3 is not installed (apt-get install sqlite3)"

sql_script() { # MODE
	echo "PRAGMA journal_mode=$1;"
	echo "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB);"
	for i in $(seq 1 200); do
		echo "BEGIN; INSERT INTO t(v, b) VALUES('row $i', randomblob(($i * 37) % 5000)); UPDATE t SET v = v || '.' WHERE id = $(((i + 1) / 2)); COMMIT;"
	done
}

pfs_mount -o policy=retry,mem_limit=64M
for mode in delete wal; do
	db=$M/$mode.db
	sql_script "$mode" >"$W/$mode.sql"
	pfs_run 120 sqlite3 "$db" <"$W/$mode.sql" >"$W/$mode.out" 2>&1 || pfs_fail "sqlite3 ($mode): $(tail -5 "$W/$mode.out")"
	assert_eq ok "$(pfs_run 60 sqlite3 "$db" 'PRAGMA integrity_check;')" "$mode: integrity_check"
	assert_eq 200 "$(pfs_run 60 sqlite3 "$db" 'SELECT count(*) FROM t;')" "$mode: 200 committed rows"
done
pfs_umount_clean
pfs_mount -o policy=enomem
for mode in delete wal; do
	assert_eq ok "$(pfs_run 60 sqlite3 "$M/$mode.db" 'PRAGMA integrity_check;')" "$mode after remount: integrity_check"
	assert_eq 200 "$(pfs_run 60 sqlite3 "$M/$mode.db" 'SELECT count(*) FROM t;')" "$mode after remount: rows"
done
pfs_umount_clean
for mode in delete wal; do
	assert_eq ok "$(pfs_run 60 sqlite3 "$B/$mode.db" 'PRAGMA integrity_check;')" "$mode in the backing dir: integrity_check"
done
