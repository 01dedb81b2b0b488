#!/usr/bin/env bash
# test-kafka.sh: the Kafka-relevant test packages against a real Apache Kafka
# and Schema Registry (make test-kafka, docs/KAFKA.md).
#
# The stack: the one named by KAFKA_BROKERS and SCHEMA_REGISTRY (and the
# secured listeners' variables, SECURED below) when they are set; else the one
# scripts/stack.sh runs in its STACK_DIR, when it answers; else a one-broker
# stack started here and brought down at the end. A stack this script did not
# start is left running.
#
# Every test output line but the RUN/PASS bookkeeping is shown, so the tests
# that run on the in-process broker even here say so ("kfake only: ...").
# The whole log is in build/test-kafka.log.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(./topics/ ./consumer/ ./service/ ./replay/ ./schemas/ ./validation/stream/ ./cmd/leadscorer/)
TIMEOUT=${TEST_KAFKA_TIMEOUT:-45m}

log() { printf 'test-kafka: %s\n' "$*" >&2; }

# What `stack.sh up` prints besides KAFKA_BROKERS and SCHEMA_REGISTRY: the
# secured listeners (TLS, SASL/SCRAM, client certificates) and what reaches
# them, read by internal/testenv (testenv.Secure).
SECURED=(KAFKA_SSL_BROKERS KAFKA_SASL_SSL_BROKERS KAFKA_SASL_PLAINTEXT_BROKERS KAFKA_MTLS_BROKERS
  KAFKA_CA_FILE KAFKA_CLIENT_CERT_FILE KAFKA_CLIENT_KEY_FILE KAFKA_SASL_USER KAFKA_SASL_PASSWORD)

started=""
if [[ -n ${KAFKA_BROKERS:-} ]]; then
  [[ -n ${SCHEMA_REGISTRY:-} ]] || { log "KAFKA_BROKERS is set but SCHEMA_REGISTRY is not"; exit 1; }
  for v in "${SECURED[@]}"; do
    [[ -n ${!v:-} ]] || { log "KAFKA_BROKERS is set but $v is not (scripts/stack.sh up prints it)"; exit 1; }
  done
  log "using the stack at KAFKA_BROKERS=$KAFKA_BROKERS SCHEMA_REGISTRY=$SCHEMA_REGISTRY"
else
  if status=$(scripts/stack.sh status 2>/dev/null); then
    n=$(sed -n 's/^stack dir: .*(\([0-9]\) node(s).*/\1/p' <<<"$status")
    log "reusing the running $n-broker stack (left running)"
    out=$(scripts/stack.sh up --brokers "$n")
  else
    log "no stack answers: starting a one-broker stack (brought down at the end)"
    started=yes
    trap 'scripts/stack.sh down || true' EXIT
    out=$(scripts/stack.sh up --brokers 1)
  fi
  eval "$out"
  export KAFKA_BROKERS SCHEMA_REGISTRY "${SECURED[@]}"
fi

mkdir -p build
begin=$SECONDS
set +e
KAFKA_BROKERS=$KAFKA_BROKERS SCHEMA_REGISTRY=$SCHEMA_REGISTRY \
  go test -count=1 -v -timeout "$TIMEOUT" "${PACKAGES[@]}" >build/test-kafka.log 2>&1
rc=$?
set -e
grep -Ev '^ *(=== (RUN|PAUSE|CONT|NAME)|--- PASS|PASS$)' build/test-kafka.log || true
log "go test on KAFKA_BROKERS=$KAFKA_BROKERS took $((SECONDS - begin))s (exit $rc); full log: build/test-kafka.log"
[[ -z $started ]] || log "bringing down the stack this run started"
exit $rc
