#!/usr/bin/env bash
# Installs, from Debian's archive, whichever of the named packages this
# machine lacks (sudo when not root); refreshes the package lists only if an
# install fails. Idempotent, and quiet when everything is present.
#   tools/install_packages.sh cmake pkg-config
set -euo pipefail

missing=()
for p in "$@"; do
  status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
  # (A package of two architectures says it twice, run together.)
  [[ "$status" == *"install ok installed"* ]] || missing+=("$p")
done
((${#missing[@]})) || exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
echo "installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# An unknown package means the package lists are stale or absent: refresh them.
if ! "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
