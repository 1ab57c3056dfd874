#!/usr/bin/env bash
# The cache's files call one way: scripts/check-tree passes on the tree as it
# is, and fails on a copy where a lower file (lru.c) includes the header of
# a higher one (dirty_i.h), or where a cache file is missing from its list.
set -euo pipefail
top=${1:?usage: check_layers.sh SOURCE_ROOT}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$top/scripts/check-tree" --no-format >"$tmp/out" || { cat "$tmp/out"; exit 1; }

# A throwaway repository holding the cache and what check-tree reads.
mkdir -p "$tmp/repo/scripts"
cp "$top/scripts/check-tree" "$tmp/repo/scripts/"
for d in cache alloc log include; do
	(cd "$top" && git ls-files -- "$d") | while read -r f; do
		mkdir -p "$tmp/repo/$(dirname "$f")"
		cp "$top/$f" "$tmp/repo/$f"
	done
done
cd "$tmp/repo"
git init -q . && git add -A

python3 scripts/check-tree --no-format >/dev/null || { echo "the copy fails before any change"; exit 1; }

sed -i 's|#include "lru_i.h"|#include "lru_i.h"\n#include "dirty_i.h"|' cache/lru.c
if python3 scripts/check-tree --no-format >"$tmp/out"; then
	echo "check-tree accepted lru.c including dirty_i.h"; exit 1
fi
grep -q 'cache/lru.c:.*dirty_i.h: lru calls up into dirty.c' "$tmp/out" || { cat "$tmp/out"; exit 1; }
git checkout -q cache/lru.c

printf '#include "pcache_i.h"\n' >cache/stray.c && git add cache/stray.c
if python3 scripts/check-tree --no-format >"$tmp/out"; then
	echo "check-tree accepted a cache file missing from CACHE_LAYERS"; exit 1
fi
grep -q 'cache/stray.c: not in CACHE_LAYERS' "$tmp/out" || { cat "$tmp/out"; exit 1; }
echo "cache layers: check-tree passes the tree and catches a call up and an unlisted file"
