#!/usr/bin/env bash
# Builds the libFuzzer fuzzers (--config=fuzz) and runs each for SECONDS
# (default 60) from its corpus in fuzz/corpus/; new inputs go to a scratch
# directory, not the repository. Exits non-zero on the first finding, whose
# input libFuzzer writes to fuzz/findings/.
#   fuzz/run.sh 600            # ten minutes each
#   fuzz/run.sh 60 scheduler   # one target
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then targets=(scheduler socket_address http_parser buffered_reader); fi

# ld.gold warns about every ASan symbol it cannot export; those lines are noise.
./bazelw build --config=fuzz //fuzz:all 2>&1 | grep -v "warning: Cannot export local symbol" >&2

mkdir -p fuzz/findings
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  log="$scratch/$t.log"
  echo "== ${t}_fuzz for ${seconds}s"
  # -rss_limit_mb=0: libFuzzer's RSS watcher is a thread of its own, and a
  # thread fiberloop did not start may still post to a loop, so a loop whose
  # fibers are all stuck waits for it instead of returning (Go's deadlock
  # rule) and the scheduler target's deadlocking programs would never end.
  # -timeout=60: a hang fails within a minute, not libFuzzer's twenty.
  if ! bazel-bin/fuzz/"${t}"_fuzz -max_total_time="$seconds" -print_final_stats=1 \
      -rss_limit_mb=0 -timeout=60 \
      -artifact_prefix=fuzz/findings/"$t"- "$scratch/$t" fuzz/corpus/"$t" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz/run.sh: ${t}_fuzz found a failure; the input is in fuzz/findings/" >&2
    exit 1
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^Done" "$log" || true
  echo "   corpus: $(ls fuzz/corpus/"$t" | wc -l) inputs in the repository, $(ls "$scratch/$t" | wc -l) new"
done
