#!/usr/bin/env bash
# fio random writes with --verify=crc32c (see bench/apps/README).
#   fio.sh run DIR STATE SEED DURATION  |  fio.sh check DIR STATE
# Runs one fio job after another (16 MiB file each, 4 KiB random writes, end_fsync=1, then
# fio's own read-back verification through the mount) until DURATION is spent. A job with no
# error at all is "acked": its data was fsynced. check re-verifies each acked file in the
# backing store with fio --verify_only: a bad block there is lost after fsync. Verification
# errors through the mount in a job that saw no write error are torn/corrupt data.
set -u
verb=$1 dir=$2 state=$3
size=${PFS_FIO_SIZE:-16M}

fio_job() { # file seed extra-args...
  local f=$1 s=$2; shift 2
  fio --name=pfs --directory="$dir" --filename="$f" --size="$size" --bs=4k --rw=randwrite \
      --ioengine=psync --verify=crc32c --verify_fatal=0 --continue_on_error=all \
      --randseed="$s" --output-format=json "$@"
}
json_err() { # fio json -> "total_err"
  python3 -c 'import json,sys
try:
    j = json.load(open(sys.argv[1]))["jobs"][0]; print(j.get("total_err", 0) or (1 if j.get("error") else 0))
except Exception:
    print(1)' "$1"
}

if [ "$verb" = run ]; then
  seed=$4 duration=$5
  : >"$state/acked"; : >"$state/errors"
  echo "$size" >"$state/size"
  mkdir -p "$dir" 2>>"$state/errors.txt"
  end=$((SECONDS + duration)); k=0
  while [ "$SECONDS" -lt "$end" ]; do
    k=$((k + 1))
    fio_job "fio$k.dat" $((seed + k)) --end_fsync=1 --output="$state/fio$k.json" 2>"$state/stderr.$k"; rc=$?
    nerr=$(json_err "$state/fio$k.json")
    nver=$(grep -c '^verify:' "$state/stderr.$k")
    if [ "$rc" -eq 0 ] && [ "$nerr" -eq 0 ] && [ "$nver" -eq 0 ]; then
      echo "A $k $((seed + k))" >>"$state/acked"
    else
      # A job cut short by a dead mount (ENOTCONN) is the crash (counted by the driver): D.
      if ! stat "$dir" >/dev/null 2>&1; then echo "D $k $((seed + k)) $nerr $nver" >>"$state/errors"; break; fi
      echo "E $k $((seed + k)) $nerr $nver" >>"$state/errors"
    fi
  done
  echo "seed $seed jobs $k" >"$state/done"
  exit 0
fi

if [ "$verb" = check ]; then
  size=$(cat "$state/size" 2>/dev/null || echo "$size")
  blocks=$(( $(python3 -c 'import sys; s=sys.argv[1]; print(int(s[:-1]) << {"K":10,"M":20,"G":30}[s[-1]] if s[-1] in "KMG" else int(s))' "$size") / 4096 ))
  acked=0 errors=0 lost=0 refused=0 corrupt=0
  while read -r tag k s; do
    [ "$tag" = A ] || continue
    acked=$((acked + blocks))
    if [ ! -f "$dir/fio$k.dat" ]; then lost=$((lost + blocks)); continue; fi
    fio_job "fio$k.dat" "$s" --verify_only --output="$state/check$k.json" 2>"$state/check.$k"
    lost=$((lost + $(grep -c '^verify:' "$state/check.$k")))
  done <"$state/acked"
  while read -r tag k s nerr nver; do
    [ "$tag" = E ] || continue
    [[ "$k" =~ ^[0-9]+$ ]] || continue
    errors=$((errors + nerr))
    if [ "$nerr" -eq 0 ]; then corrupt=$((corrupt + nver)); else refused=$((refused + nver)); fi
  done <"$state/errors"
  printf '{"unit": "blocks", "acked": %d, "errors": %d, "lost_after_fsync": %d, "lost_after_write": 0, "refused": %d, "torn_or_corrupt": %d, "note": "%d acked jobs, %d failed"}\n' \
    "$acked" "$errors" "$lost" "$refused" "$corrupt" "$(grep -c '^A ' "$state/acked")" "$(grep -c '^E [0-9]' "$state/errors")"
  exit 0
fi
echo "usage: fio.sh run DIR STATE SEED DURATION | check DIR STATE" >&2
exit 2
