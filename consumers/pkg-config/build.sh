#!/usr/bin/env bash
# A program built against an installed fiberloop with pkg-config and one
# g++ line. PKG_CONFIG_PATH names <prefix>/lib/pkgconfig for a prefix
# pkg-config does not search by itself. The warnings a careful project turns
# on are errors here: fiberloop's headers must not give it any.
#   consumers/pkg-config/build.sh <output>
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
g++ -std=c++20 -O3 -Wall -Wextra -Wundef -Wshadow -Werror "$here/../app.cc" \
  $(pkg-config --cflags --libs fiberloop) -o "$1"
