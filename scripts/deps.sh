#!/usr/bin/env bash
# Install the Debian packages pressurefs needs, only those that are missing.
# Sourced by run-demo and run-tests; safe to run on its own.
set -euo pipefail

PFS_DEB_PACKAGES=(
  build-essential meson ninja-build pkg-config
  libfuse3-dev fuse3 libcmocka-dev liburing-dev
  python3 fio sqlite3 gnuplot-nox clang clang-format
  git diffutils tar util-linux procps help2man
  passwd
)

pfs_missing_packages() {
  local p
  for p in "${PFS_DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

pfs_install_deps() {
  local missing
  missing=$(pfs_missing_packages | tr '\n' ' ')
  if [ -z "${missing// /}" ]; then
    return 0
  fi
  echo "pressurefs: installing missing Debian packages: $missing" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  pfs_install_deps
fi
