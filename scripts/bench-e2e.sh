#!/usr/bin/env bash
# End-to-end benchmark: the sandbox (kfake + Schema Registry) and the scorer
# as separate processes, real Redis loaded with 100,000 advisors, both model
# versions and explanations on. Prints one key=value line per figure on
# stdout (progress on stderr); docs/BENCHMARKS.md explains each key.
#
#   scripts/bench-e2e.sh                         # this build
#   SCORER_BIN=/path/to/old/leadscorer scripts/bench-e2e.sh   # compare a build
#   BENCH_ARGS="--rates 20000 --scorers 1" scripts/bench-e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
go build -o bin/leadscorer ./cmd/leadscorer
go build -o bin/leadscorer-dev ./cmd/leadscorer-dev
args=()
if [ -n "${SCORER_BIN:-}" ]; then args+=(--scorer-bin "$SCORER_BIN"); fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# shellcheck disable=SC2086
exec bin/leadscorer-dev loadgen bench "${args[@]}" ${BENCH_ARGS:-}
