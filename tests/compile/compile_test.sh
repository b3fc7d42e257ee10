#!/usr/bin/env bash
# What a user's compiler says about fiberloop's headers: mistakes that must
# fail with one clear message, and code that must compile cleanly under
# -Wall -Wextra -Werror. Runs the C++ compiler on small snippets
# (tests/compile/*.cc); each snippet's first line says what to expect:
#   // expect: ok                  compiles with -Wall -Wextra -Werror
#   // expect: error <text>        fails, and the first error line contains <text>
#   // expect: one-error <text>    fails with exactly one error line, containing <text>
#   // std: c++17                  compile with this standard instead of c++20
set -euo pipefail

root="${TEST_SRCDIR:-}/${TEST_WORKSPACE:-fiberloop}"
[ -f "$root/fiberloop.h" ] || root="$(cd "$(dirname "$0")/../.." && pwd)"
cxx="${CXX:-g++}"
tmp="${TEST_TMPDIR:-/tmp}"
failures=0

for snippet in "$root"/tests/compile/*.cc; do
  name="$(basename "$snippet")"
  expect="$(sed -n '1s|^// expect: ||p' "$snippet")"
  std="$(sed -n 's|^// std: ||p;T;q' "$snippet")"
  std="${std:-c++20}"
  out="$tmp/$name.out"
  if "$cxx" -std="$std" -fsyntax-only -Wall -Wextra -Werror -I"$root" "$snippet" >"$out" 2>&1; then
    status=ok
  else
    status=failed
  fi
  errors="$(grep -E '(error|fatal error):' "$out" || true)"
  # No pipeline into head here: under pipefail, a writer cut off by a reader
  # that has seen enough dies of SIGPIPE and set -e ends the script silently
  # (it did, on a loaded CI machine).
  first="${errors%%$'\n'*}"
  count="$(grep -c . <<<"$errors" || true)"
  verdict=""
  case "$expect" in
    ok)
      [ "$status" = ok ] || verdict="expected a clean compile, got: $(head -20 "$out")" ;;
    error\ *|one-error\ *)
      want="${expect#* }"
      if [ "$status" = ok ]; then
        verdict="expected an error containing '$want', but it compiled"
      elif [[ "$first" != *"$want"* ]]; then
        verdict="the first error should contain '$want'; it is: $first"
      elif [[ "$expect" == one-error* && "$count" != 1 ]]; then
        verdict="expected exactly one error line, got $count: $(head -20 "$out")"
      fi ;;
    *) verdict="no '// expect:' line" ;;
  esac
  if [ -n "$verdict" ]; then
    echo "FAIL $name: $verdict"
    failures=$((failures + 1))
  else
    echo "ok   $name ($expect)"
  fi
done

if [ "$failures" -ne 0 ]; then
  echo "$failures snippet(s) failed"
  exit 1
fi
echo "all snippets behave"
