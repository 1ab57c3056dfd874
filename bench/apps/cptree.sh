#!/usr/bin/env bash
# A source tree copied with cp -a and with tar c | tar x, then compared with diff -r
# (see bench/apps/README).   cptree.sh run DIR STATE SEED DURATION  |  cptree.sh check DIR STATE
# Copies alternate between cp -a (odd) and tar (even) until DURATION is spent (a copy in
# progress finishes). A copy whose command exited 0 is "acked". Neither cp nor tar fsyncs,
# so files missing or different in an acked copy are lost after write: allowed after a crash,
# a bug after a clean unmount. SRC can be overridden with PFS_CPTREE_SRC.
set -u
verb=$1 dir=$2 state=$3
src=${PFS_CPTREE_SRC:-/usr/include/linux}

if [ "$verb" = run ]; then
  seed=$4 duration=$5
  : >"$state/acked"; : >"$state/errors"; : >"$state/progress"
  echo "$src" >"$state/src"
  mkdir -p "$dir" 2>>"$state/errors.txt"
  end=$((SECONDS + duration)); k=0
  while [ "$SECONDS" -lt "$end" ]; do
    k=$((k + 1))
    errf=$state/stderr.$k
    if [ $((k % 2)) -eq 1 ]; then
      cp -a -v "$src" "$dir/copy$k" >>"$state/progress" 2>"$errf"; rc=$?
    else
      { mkdir "$dir/copy$k" && tar -C "$src" -cf - . | tar -C "$dir/copy$k" -xvf - >>"$state/progress"; } 2>"$errf"; rc=$?
    fi
    if [ "$rc" -eq 0 ] && [ ! -s "$errf" ]; then
      echo "A $k" >>"$state/acked"
    else
      # Lines about a dead mount (ENOTCONN) are the crash, counted by the driver, not app errors.
      echo "E $k $(grep -v -c -e 'Transport endpoint is not connected' -e 'Software caused connection abort' "$errf")" >>"$state/errors"
      if ! stat "$dir" >/dev/null 2>&1; then break; fi
    fi
  done
  echo "seed $seed copies $k" >"$state/done"
  exit 0
fi

if [ "$verb" = check ]; then
  src=$(cat "$state/src" 2>/dev/null || echo "$src")
  acked=0 errors=0 lost=0 refused=0 lines=0
  while read -r tag k n; do
    [ "$tag" = A ] || continue
    # An acked copy holds every file (counted in files differing or missing).
    d=$(diff -rq "$src" "$dir/copy$k" 2>/dev/null | wc -l)
    acked=$((acked + $(find "$src" -type f | wc -l)))
    lost=$((lost + d))
  done <"$state/acked"
  while read -r tag k n; do
    [ "$tag" = E ] || continue
    errors=$((errors + ${n:-0}))
    [[ "$k" =~ ^[0-9]+$ ]] || continue
    refused=$((refused + $(diff -rq "$src" "$dir/copy$k" 2>/dev/null | wc -l)))
  done <"$state/errors"
  printf '{"unit": "files", "acked": %d, "errors": %d, "lost_after_fsync": 0, "lost_after_write": %d, "refused": %d, "torn_or_corrupt": 0, "note": "%d acked copies, %d failed"}\n' \
    "$acked" "$errors" "$lost" "$refused" "$(grep -c '^A ' "$state/acked")" "$(grep -c '^E [0-9]' "$state/errors")"
  exit 0
fi
echo "usage: cptree.sh run DIR STATE SEED DURATION | check DIR STATE" >&2
exit 2
