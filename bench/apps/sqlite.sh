#!/usr/bin/env bash
# sqlite3 committing transactions under pressure (see bench/apps/README).
#   sqlite.sh run DIR STATE SEED DURATION  |  sqlite.sh check DIR STATE
# One sqlite3 process per transaction, so "the application was told the commit succeeded"
# is exactly "sqlite3 exited 0": then the transaction number goes to STATE/acked.
# synchronous=FULL (rollback journal): a told-succeeded COMMIT has been fsynced, so an acked
# transaction missing afterwards is a broken fsync promise.
set -u
verb=$1 dir=$2 state=$3

json_note() { printf '%s' "$1" | tr '"\\\n' "'/ " | cut -c1-200; }

if [ "$verb" = run ]; then
  seed=$4 duration=$5
  : >"$state/acked"; : >"$state/errors"
  db=$dir/app.db
  mkdir -p "$dir" 2>>"$state/errors.txt"
  sqlite3 "$db" "PRAGMA journal_mode=DELETE; CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, tx INTEGER, payload BLOB);" \
    >/dev/null 2>>"$state/errors.txt" || echo "E 0" >>"$state/errors"
  end=$((SECONDS + duration)); tx=0
  while [ "$SECONDS" -lt "$end" ]; do
    tx=$((tx + 1))
    # 8 rows of 8 KiB per transaction; the seed only labels the run (randomblob is random).
    if out=$(sqlite3 -bail "$db" "PRAGMA synchronous=FULL; BEGIN; INSERT INTO t(tx, payload) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 8) SELECT $tx, randomblob(8192) FROM c; COMMIT;" 2>&1 >/dev/null); then
      echo "A $tx" >>"$state/acked"
    else
      # A dead mount (ENOTCONN) will not come back: stop like an application would. That
      # failure is recorded as D (the crash is counted by the driver, not as an app error).
      if ! stat "$dir" >/dev/null 2>&1; then echo "D $tx $(json_note "$out")" >>"$state/errors"; break; fi
      echo "E $tx $(json_note "$out")" >>"$state/errors"
    fi
  done
  echo "seed $seed transactions $tx" >"$state/done"
  exit 0
fi

if [ "$verb" = check ]; then
  db=$dir/app.db
  acked=$(grep -c '^A ' "$state/acked" 2>/dev/null); acked=${acked:-0}
  errors=$(grep -c '^E [0-9]' "$state/errors" 2>/dev/null); errors=${errors:-0}
  lost=0 refused=0 corrupt=0 note=""
  if [ ! -f "$db" ]; then
    lost=$acked; note="database file missing"
  else
    integ=$(sqlite3 "$db" "PRAGMA integrity_check;" 2>&1 | head -3 | tr '\n' ' ')
    if [ "${integ% }" != "ok" ]; then corrupt=1; note="integrity_check: $(json_note "$integ")"; fi
    # Rows per transaction present afterwards: 8 = whole, other = torn transaction.
    present=$(mktemp); sqlite3 "$db" "SELECT tx, count(*) FROM t GROUP BY tx;" 2>/dev/null | tr '|' ' ' >"$present"
    partial=$(awk '$2 != 8' "$present" | wc -l)
    corrupt=$((corrupt + partial))
    lost=$(awk 'NR==FNR { have[$1]=1; next } $1=="A" && !($2 in have) { n++ } END { print n+0 }' "$present" "$state/acked")
    refused=$(awk 'NR==FNR { have[$1]=1; next } ($1=="E" || $1=="D") && $2 ~ /^[0-9]+$/ && $2 > 0 && !($2 in have) { n++ } END { print n+0 }' "$present" "$state/errors")
    rm -f "$present"
    [ -n "$note" ] || note="integrity ok"
  fi
  printf '{"unit": "tx", "acked": %d, "errors": %d, "lost_after_fsync": %d, "lost_after_write": 0, "refused": %d, "torn_or_corrupt": %d, "note": "%s"}\n' \
    "$acked" "$errors" "$lost" "$refused" "$corrupt" "$note"
  exit 0
fi
echo "usage: sqlite.sh run DIR STATE SEED DURATION | check DIR STATE" >&2
exit 2
