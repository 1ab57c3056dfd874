#!/bin/sh
# unit.help_man: --help fits 80 columns and names every option of the table
# once; `meson install` puts man pages that `man` finds and that carry the same
# options (they are generated from --help, so this proves the wiring).
#   help_man.sh PRESSUREFS PFS_STRESS PRESSUREFS_STAT BUILD_DIR PRESSUREFS_RUN
set -u
pfs=$1 stress=$2 stat=$3 build=$4 run=$5
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

for prog in "$pfs" "$stress" "$stat" "$run"; do
	"$prog" --help >"$tmp/help" 2>&1 || fail "$prog --help exited $?"
	long=$(awk 'length($0) > 80' "$tmp/help")
	[ -z "$long" ] || fail "$(basename "$prog") --help has lines over 80 columns: $long"
done

"$pfs" --help >"$tmp/help"
# Every option of the table is listed as "-o NAME=" exactly once.
opts=$(sed -n 's/^    -o \([a-z_]*\)=.*/\1/p' "$tmp/help")
[ "$(echo "$opts" | wc -l)" -ge 15 ] || fail "--help lists only: $opts"
dups=$(echo "$opts" | sort | uniq -d)
[ -z "$dups" ] || fail "--help lists options twice: $dups"
for section in "examples:" "exit status:"; do
	grep -q "^$section" "$tmp/help" || fail "--help has no '$section' section"
done
# Policies are listed once: in their own section, not also in prose.
n=$(grep -c "nofail, retry, enomem, abort" "$tmp/help")
[ "$n" -eq 0 ] || fail "--help repeats the policy list in prose"
# What --help calls ignored is ignored, and what it passes on is not called ignored.
ignored=$(sed -n '/^ignored/,/^$/p' "$tmp/help" | tr -s ' ,\n' '\n' | grep -v '^ignored\|^(from\|^mount\|^and\|^fstab)' )
passed=$(awk '/^passed to libfuse/ { on = 1 } /^ignored/ { on = 0 } on' "$tmp/help" | tr -s ' ,\n.' '\n')
for w in $ignored; do
	echo "$passed" | grep -qx "$w" && fail "'$w' is listed both as ignored and as passed to libfuse"
done
for w in noatime lazytime owner group; do
	echo "$ignored $passed" | tr ' ' '\n' | grep -qx "$w" || fail "--help does not say what happens to '$w'"
done

# Installed man pages.
DESTDIR="$tmp/root" meson install -C "$build" --no-rebuild --quiet >"$tmp/install.log" 2>&1 ||
	fail "meson install: $(tail -3 "$tmp/install.log")"
man8=$(find "$tmp/root" -name pressurefs.8 | head -1)
[ -n "$man8" ] || { grep -q 'help2man' "$tmp/install.log"; fail "meson install put no pressurefs.8 (is help2man installed?)"; }
mandir=$(dirname "$(dirname "$man8")")
for page in pressurefs pfs-stress pressurefs-stat pressurefs-run; do
	MANPATH=$mandir man -w "$page" >/dev/null 2>&1 || fail "man -w $page finds nothing in $mandir"
done
MANPATH=$mandir MANWIDTH=100 man pressurefs 2>/dev/null | col -b >"$tmp/man.txt"
for o in $opts; do
	grep -q -- "-o $o=" "$tmp/man.txt" || fail "pressurefs(8) lacks -o $o"
done
for page in "$man8" $(find "$tmp/root" -name 'pressurefs-run.1'); do
	grep -q "$build" "$page" && fail "$(basename "$page") names the build tree $build"
done
echo "PASS: --help fits 80 columns and lists $(echo "$opts" | wc -l) options once; man pages install and agree"
