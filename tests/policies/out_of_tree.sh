#!/bin/sh
# Out-of-tree policy build: install pressurefs into a scratch DESTDIR, build a
# policy against the installed <pressurefs/policy.h> only (found through
# pkg-config), and load it with the real loader.
#
# usage: out_of_tree.sh BUILD_DIR SOURCE_DIR PREFIX LIBDIR POLICY_LOAD_CHECK OOT_POLICY_C
set -eu

[ $# -eq 6 ] || { echo "usage: $0 BUILD SRC PREFIX LIBDIR CHECK OOT_C" >&2; exit 2; }
build=$1 src=$2 prefix=$3 libdir=$4 check=$5 oot_c=$6

tmp=$(mktemp -d /tmp/pfs-oot-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
dest=$tmp/dest

fail() {
	echo "out_of_tree: FAIL: $*" >&2
	exit 1
}

if ! meson install -C "$build" --no-rebuild --quiet --destdir "$dest" >"$tmp/install.log" 2>&1; then
	cat "$tmp/install.log" >&2
	fail "meson install failed"
fi

case $libdir in
/*) libabs=$libdir ;;
*) libabs=$prefix/$libdir ;;
esac
pcdir=$dest$libabs/pkgconfig
[ -f "$pcdir/pressurefs-policy.pc" ] || fail "no pressurefs-policy.pc in $pcdir"

# Only our .pc file, with its prefix moved into the scratch DESTDIR.
pc() {
	PKG_CONFIG_PATH='' PKG_CONFIG_LIBDIR=$pcdir \
		pkg-config --define-variable=prefix="$dest$prefix" "$@" pressurefs-policy
}
cflags=$(pc --cflags) || fail "pkg-config --cflags pressurefs-policy failed"
policydir=$(pc --variable=policydir) || fail "pkg-config --variable=policydir failed"

case " $cflags " in
*" -I$dest"*) ;;
*) fail "cflags '$cflags' do not point into $dest" ;;
esac
case $cflags in
*"$src"*) fail "cflags '$cflags' point into the source tree" ;;
esac
header=$dest$prefix/include/pressurefs/policy.h
[ -f "$header" ] || fail "no installed header $header"
[ "$policydir" = "$dest$libabs/pressurefs/policies" ] ||
	fail "policydir is '$policydir', want $dest$libabs/pressurefs/policies"
for p in abort enomem mempool nofail retry retry_mayfail shutdown too_small_to_fail write_through; do
	[ -f "$policydir/$p.so" ] || fail "installed plugin $policydir/$p.so is missing"
done
abi=$(sed -n 's/^#define PFS_POLICY_ABI_VERSION \([0-9]*\)u*$/\1/p' "$header")
[ -n "$abi" ] || fail "no PFS_POLICY_ABI_VERSION in $header"

# Compile a copy, so that nothing next to the source can be included.
cp "$oot_c" "$tmp/oot_policy.c"
# shellcheck disable=SC2086 # cflags is a list of words
${CC:-cc} -shared -fPIC -Wall -Werror $cflags -o "$tmp/oot.so" "$tmp/oot_policy.c" ||
	fail "cannot build the out-of-tree policy"

out=$("$check" "$tmp/oot.so") || fail "loader refused the out-of-tree policy: $out"
[ "$out" = "loaded oot abi $abi" ] || fail "unexpected: '$out'"
echo "$out"

out=$("$check" "$policydir/retry.so" retries=3) || fail "installed retry.so refused: $out"
[ "$out" = "loaded retry abi $abi" ] || fail "unexpected: '$out'"
echo "$out (installed)"

if out=$("$check" "$tmp/oot.so" foo=1); then
	fail "an unknown argument was accepted"
fi
[ "$out" = "oot has no argument 'foo' (accepted: none)" ] || fail "unexpected: '$out'"
echo "refused: $out"

# Names resolve in the build tree only for programs that live there; a copy
# outside it looks in the installed plugin directory.
dir=$("$check" --dir)
[ "$dir" = "$build/policies" ] || [ "$(realpath "$dir")" = "$(realpath "$build/policies")" ] ||
	fail "in the build tree policy_dir() is '$dir', want $build/policies"
cp "$check" "$tmp/policy_load_check"
dir=$("$tmp/policy_load_check" --dir)
[ "$dir" = "$libabs/pressurefs/policies" ] ||
	fail "outside the build tree policy_dir() is '$dir', want $libabs/pressurefs/policies"
echo "policy_dir: build tree $build/policies, elsewhere $dir"
