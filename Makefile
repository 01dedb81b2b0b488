# leadscorer: the two commands that matter are `make demo` and `make test`.
GO ?= go
PYTHON ?= /usr/bin/python3
BIN := bin/leadscorer
DEV := bin/leadscorer-dev

.PHONY: all build demo test vet fmt-check redis models bench sandbox bench-e2e

all: build

# Two binaries: leadscorer (the service and its operations, the one the
# image ships) and leadscorer-dev (the demo, sandbox, fault suite, load
# generator and synthetic population).
build:
	$(GO) build -o $(BIN) ./cmd/leadscorer
	$(GO) build -o $(DEV) ./cmd/leadscorer-dev

# The whole stream on one machine: in-process Kafka and Schema Registry,
# Redis at REDIS_URL if reachable, else an embedded one.
demo: build
	./$(DEV) demo

# Kafka on 127.0.0.1:9092 and a Schema Registry on http://127.0.0.1:8081.
sandbox: build
	./$(DEV) sandbox

# A real Apache Kafka 4.4 (KRaft, from Maven Central jars, cached outside the
# tree) and a Schema Registry on loopback: scripts/stack.sh, docs/KAFKA.md.
# BROKERS=3 for the three-broker cluster. Prints KAFKA_BROKERS= and
# SCHEMA_REGISTRY= lines, then those of the secured listeners (TLS,
# SASL/SCRAM, client certificates) and what reaches them.
BROKERS ?= 1
.PHONY: stack stack-down
stack:
	@scripts/stack.sh up --brokers $(BROKERS)
stack-down:
	@scripts/stack.sh down

# The Kafka-relevant test packages on the real stack: the one KAFKA_BROKERS
# and SCHEMA_REGISTRY name, else the running one, else a one-broker stack
# started for the run and brought down after it (scripts/test-kafka.sh).
# Needs Java 17+ and Maven the first time (docs/KAFKA.md).
.PHONY: test-kafka
test-kafka: redis
	scripts/test-kafka.sh

# Tests need a Redis on 127.0.0.1:6379: scripts/ensure-redis.sh starts one
# when nothing listens there.
test: fmt-check vet redis
	$(GO) test -count=1 ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

redis:
	@scripts/ensure-redis.sh

# Regenerates the synthetic population, the training export (Go feature
# code) and both models with Debian's python3-xgboost. The artifacts are
# committed: nothing else needs Python.
models:
	rm -rf build/population && mkdir -p build/population
	$(GO) run ./cmd/leadscorer-dev population --out build/population
	$(PYTHON) scripts/train.py --data build/population/leads.csv --models models --testdata testdata/parity --holdout testdata/holdout/test.csv --registered-at 2025-12-31T00:00:00Z

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./scoring/ ./features/

# The container image (Dockerfile): a static binary on distroless nonroot,
# with models/. Needs a Docker engine; IMAGE and VERSION can be overridden.
IMAGE ?= leadscorer
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
.PHONY: docker
docker:
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .

# Alert rules of the validator's gauges, tested with promtool (Debian's
# prometheus package, installed when missing and root).
.PHONY: promtool-test
promtool-test:
	@command -v promtool >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; } || { echo "promtool missing: apt-get install prometheus"; exit 1; }
	promtool check rules deploy/prometheus/rules.yml
	promtool test rules deploy/prometheus/rules_test.yml

# The validation dashboard in headless chromium (Debian's, installed when
# missing and root): page renders, charts present, numbers equal the JSON.
.PHONY: browser-test
browser-test:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || { echo "chromium missing: apt-get install chromium"; exit 1; }
	$(GO) test -count=1 -tags browser -run Chromium ./validation/stream/

# End to end: the broker + Redis with 100,000 advisors + `leadscorer run` as
# separate processes; key=value figures on stdout (docs/BENCHMARKS.md).
# BENCH_KAFKA=real: a real Apache Kafka (BENCH_BROKERS=1 or 3, default 1)
# instead of the sandbox, and Kafka's own perf tools beside the pass-through.
bench-e2e:
	scripts/bench-e2e.sh

# The fault suite (docs/RELIABILITY.md): the scorer as real processes against
# a broker and the Redis on 127.0.0.1:6379; kill -9, rebalance, broker
# restart, Redis outage, poison and a corrupt model, CHAOS_EVENTS events each
# (100,000). CHAOS_KAFKA=real runs them on a three-broker Apache Kafka cluster
# (scripts/stack.sh, brought up and down by the suite), plus broker-kill and
# broker-stall; the default is the sandbox broker process, for quick local
# runs. CHAOS_INPUT=salesforce-cdc streams change events instead of
# LeadChanged records. Stops by itself; about 5 minutes either way.
CHAOS_KAFKA ?= sandbox
CHAOS_EVENTS ?= 100000
CHAOS_INPUT ?= leadchanged
.PHONY: chaos chaos-ci
chaos: build redis
	./$(DEV) chaos --bin $(BIN) --kafka $(CHAOS_KAFKA) --events $(CHAOS_EVENTS) --input $(CHAOS_INPUT)
# CI's form: every scenario on one three-broker cluster, started for both
# runs and brought down after them: with LeadChanged records, then with
# Salesforce change events (docs/RELIABILITY.md).
chaos-ci: build redis
	dir=$$(mktemp -d) && trap 'STACK_DIR=$$dir scripts/stack.sh down; rm -rf $$dir' EXIT && \
	STACK_DIR=$$dir scripts/stack.sh up --brokers 3 && \
	./$(DEV) chaos --bin $(BIN) --kafka real --stack-dir $$dir --events 20000 && \
	./$(DEV) chaos --bin $(BIN) --kafka real --stack-dir $$dir --events 20000 --input salesforce-cdc

# Fuzzing (docs/SECURITY.md): each target for a number of executions on top
# of its seed corpus in the package's testdata/fuzz/: about 10 s each on a
# 2-core machine. A count, not a -fuzztime duration: Go 1.26's fuzzing
# coordinator can report its own deadline as a failure ("context deadline
# exceeded", golang/go#75804, fixed in Go 1.27); a count has no deadline.
# FUZZ_SCALE multiplies every count. Minimising a new input is capped so a
# slow target still spends its time fuzzing. CI runs it after make test.
FUZZ_SCALE ?= 1
FUZZ_TARGETS := \
	./schemas:FuzzDecodeLeadChanged:80000 \
	./producer:FuzzDeadLetter:200000 \
	./scoring:FuzzLoadXGBoostJSON:40000 \
	./scoring:FuzzLoadLightGBM:20000 \
	./scoring:FuzzLoadRegistry:6000 \
	./cmd/leadscorer:FuzzScoreCSV:500 \
	./cmd/leadscorer:FuzzEvaluateCSV:25000
.PHONY: fuzz
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; n=$$(( $${rest##*:} * $(FUZZ_SCALE) )); \
		echo "fuzz $$pkg $$name ($${n} executions)"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $${n}x -fuzzminimizetime 2s; \
	done

# Memory under a backlog (docs/SECURITY.md): 1,000,000 events queued in an
# in-process sandbox, then `leadscorer run` as a separate process drains
# them while its peak RSS (VmHWM) is sampled; fails above RSS_LIMIT_MB.
.PHONY: rss
rss: build redis
	$(GO) test -count=1 -tags rss -run TestBacklogRSS -timeout 30m -v ./service/
