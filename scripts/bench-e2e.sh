#!/usr/bin/env bash
# End-to-end benchmark: the broker (the sandbox: kfake + Schema Registry, or
# a real Apache Kafka from scripts/stack.sh) and the scorer as separate
# processes, real Redis loaded with 100,000 advisors, both model versions and
# explanations on. Prints one key=value line per figure on stdout (progress on
# stderr); docs/BENCHMARKS.md explains each key.
#
#   scripts/bench-e2e.sh                         # this build, on the sandbox
#   BENCH_KAFKA=real scripts/bench-e2e.sh        # on a real one-broker Kafka
#   BENCH_KAFKA=real BENCH_BROKERS=3 scripts/bench-e2e.sh   # three brokers, RF 3
#   SCORER_BIN=/path/to/old/leadscorer scripts/bench-e2e.sh   # compare a build
#   BENCH_ARGS="--rates 20000 --scorers 1" scripts/bench-e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
go build -o bin/leadscorer ./cmd/leadscorer
go build -o bin/leadscorer-dev ./cmd/leadscorer-dev
args=()
if [ -n "${SCORER_BIN:-}" ]; then args+=(--scorer-bin "$SCORER_BIN"); fi
args+=(--kafka "${BENCH_KAFKA:-sandbox}" --brokers "${BENCH_BROKERS:-1}")
# The machine is shared: its load goes with the figures, before and after.
echo "load_average_start=$(cut -d' ' -f1 /proc/loadavg)"
trap 'echo "load_average_end=$(cut -d" " -f1 /proc/loadavg)"' EXIT
# shellcheck disable=SC2086
bin/leadscorer-dev loadgen bench "${args[@]}" ${BENCH_ARGS:-}
