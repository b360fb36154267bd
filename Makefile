# fleetcore: the two commands are `make run` and `make test` (see README.md).
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS ?= $(shell nproc)
## Extra CMake options, e.g. CMAKE_FLAGS=-DFC_WERROR=ON (what CI passes).
CMAKE_FLAGS ?=
PY := /usr/bin/python3
FLEETCORE := $(BUILD)/src/server/fleetcore

.PHONY: deps js-deps build run test unit integration integration-postgres integration-cluster asan fuzz fuzz-smoke bench bench-identity bench-shadow bench-rules bench-jobs bench-ota bench-provisioning bench-bulk bench-storm bench-idle-tls bench-fleet clean

deps:
	@scripts/install-deps.sh

## The npm packages the integration tests drive (aws-iot-device-sdk, aws-iot-device-sdk-v2), from package-lock.json.
JS_DIR := tests/integration/js
js-deps: deps
	@[ -d $(JS_DIR)/node_modules/aws-iot-device-sdk ] && [ -d $(JS_DIR)/node_modules/aws-iot-device-sdk-v2 ] || \
	  (cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error)

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

## Builds and starts the platform on its embedded defaults (data in ./data).
run: build
	$(FLEETCORE) serve

## Builds and runs every test: unit tests, then integration tests against the running server.
test: build unit integration integration-postgres integration-cluster

## The storage tests run against SQLite and against a throwaway PostgreSQL (scripts/postgres.sh).
unit:
	pg=$$(scripts/postgres.sh start) && cd $(BUILD) && FC_TEST_POSTGRES="$$pg" ctest --output-on-failure -j $(JOBS)

integration: js-deps
	FLEETCORE=$(abspath $(FLEETCORE)) $(PY) -m pytest -q -p no:cacheprovider tests/integration

## The integration tests of durable state again, with the server on PostgreSQL (--storage).
PG_INTEGRATION := tests/integration/test_persistence.py tests/integration/test_retained.py \
  tests/integration/test_shadow.py tests/integration/test_registry_api.py tests/integration/test_postgres.py
integration-postgres: js-deps
	pg=$$(scripts/postgres.sh start) && FC_TEST_POSTGRES="$$pg" FC_TEST_STORAGE=postgresql \
	  FLEETCORE=$(abspath $(FLEETCORE)) $(PY) -m pytest -q -p no:cacheprovider $(PG_INTEGRATION)

## Three nodes on one PostgreSQL database and nats-server, behind HAProxy (tests/integration/test_cluster.py);
## then the suite's broker, shadow, rules and registry tests with each test's server such a cluster
## (FC_TEST_STORAGE=cluster: clients reach HAProxy). The others need one node: services that keep
## their state per node (jobs, OTA, streams, provisioning, telemetry) or per-node metrics and logs.
CLUSTER_INTEGRATION := $(addprefix tests/integration/,test_publish.py test_retained.py test_will.py \
  test_mqtt5.py test_persistence.py test_shadow.py test_rules.py test_topic_rules.py test_registry_api.py \
  test_lifecycle_events.py test_transports.py test_plain_policy.py test_connect.py test_will_forgery.py \
  test_hardening_mqtt5.py)
integration-cluster: build js-deps
	pg=$$(scripts/postgres.sh start) && FC_TEST_POSTGRES="$$pg" \
	  FLEETCORE=$(abspath $(FLEETCORE)) $(PY) -m pytest -q -p no:cacheprovider tests/integration/test_cluster.py
	pg=$$(scripts/postgres.sh start) && FC_TEST_POSTGRES="$$pg" FC_TEST_STORAGE=cluster \
	  FLEETCORE=$(abspath $(FLEETCORE)) $(PY) -m pytest -q -p no:cacheprovider $(CLUSTER_INTEGRATION)

## Unit tests under AddressSanitizer + UndefinedBehaviorSanitizer, and the integration suite against
## a sanitized server.
asan: deps js-deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFC_SANITIZE=ON -DFC_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	pg=$$(scripts/postgres.sh start) && cd $(ASAN_BUILD) && FC_TEST_POSTGRES="$$pg" ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 FLEETCORE=$(abspath $(ASAN_BUILD))/src/server/fleetcore \
	  $(PY) -m pytest -q -p no:cacheprovider tests/integration
	pg=$$(scripts/postgres.sh start) && FC_TEST_POSTGRES="$$pg" ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  FLEETCORE=$(abspath $(ASAN_BUILD))/src/server/fleetcore $(PY) -m pytest -q -p no:cacheprovider tests/integration/test_cluster.py

## libFuzzer targets (clang).
fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFC_FUZZ=ON -DFC_TESTS=OFF -DFC_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets

## Runs each fuzz target briefly over its seed corpus (CI).
FUZZ_SECONDS ?= 30
fuzz-smoke: fuzz
	@for t in $(FUZZ_BUILD)/fuzz/fuzz_*; do \
	  name=$$(basename $$t); corpus=fuzz/corpus/$${name#fuzz_}; work=$$(mktemp -d); \
	  echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=$$work/ $$work $$corpus || exit 1; \
	  rm -rf $$work; \
	done

## Side-by-side benchmark against mosquitto (see docs/benchmarks.md).
bench: build
	bench/run.sh

## TLS handshakes/s with client certificates beside mosquitto (s_time; MQTT connects full and resumed,
## bench/tlsbench), and policy checks/s.
bench-identity: build
	bench/identity.sh

## Reconnect storm beside mosquitto: 19,000 mutual-TLS devices, the broker killed -9 and restarted.
bench-storm: build
	bench/storm.sh

## Broker memory per idle mutual-TLS connection (10,000 and 19,000 devices) beside mosquitto.
bench-idle-tls: build
	bench/idle_tls.sh

## A fleet over mutual TLS beside mosquitto: idle memory, handshake CPU (full and resumed), reconnect storm.
bench-fleet: build
	bench/idle_tls.sh && bench/identity.sh && bench/storm.sh

## Durable shadow updates/s and update-to-accepted latency with 1k and 100k things.
bench-shadow: build
	bench/shadow.sh

## The rules engine at the broker (100 rules) and the telemetry store (writes/s, 1-hour aggregate).
## OTA delivery: object store PUT/GET beside dd, one image over MQTT streams to 1,000 devices.
bench-ota: build
	bench/ota.sh

bench-rules: build
	bench/rules.sh

## A job for 100,000 things with 19,000 devices connected: CreateJob latency, time to every
## notify-next, durable execution updates/s.
bench-jobs: build
	bench/jobs.sh

## Bulk registration: a 100,000-line StartThingRegistrationTask (things only) and 20,000 lines with a CSR each.
bench-bulk: build
	bench/bulk.sh

## Fleet provisioning by claim, end to end: devices provisioned per second (TLS with the claim
## certificate, CreateKeysAndCertificate, RegisterThing, a new connection with the new certificate).
bench-provisioning: build
	BUILD=$(BUILD) bench/provisioning.sh

clean:
	scripts/postgres.sh stop
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
