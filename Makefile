# kafka-fleet: a local fleet on loopback (ZooKeeper ensemble, Kafka 3.9 brokers booted through
# kafka-bootstrap, moto) and the tests that run against it. Every target installs what it needs.

SHELL := /bin/bash
CACHE := dev/.cache
LIBS := $(CACHE)/lib
LIBS4 := $(CACHE)/lib-4.4
VENV := dev/.venv
ST_VENV := dev/.venv-st
CARGO ?= cargo
# Integration tests start JVMs: one at a time on a 2-core machine.
TEST_THREADS ?= 1

.PHONY: all deps system jars moto schemathesis build demo test unit-test integration-test terraform-check terraform-moto chaos bench clippy kafka-config-catalog clean

all: build

deps: system jars moto schemathesis

system:
	@dev/install-system.sh

# Kafka 3.9 (ZooKeeper mode), its tools and a logging binding, pinned in dev/pom.xml; Kafka 4.4
# (KRaft) beside it, pinned in dev/pom-kafka4.xml.
jars: $(LIBS)/.stamp $(LIBS4)/.stamp
$(LIBS)/.stamp: dev/pom.xml
	@echo "fetching Kafka 3.9 jars with Maven (pinned in dev/pom.xml)"
	@rm -rf $(LIBS)
	mvn -B -q -f dev/pom.xml dependency:copy-dependencies -DoutputDirectory=.cache/lib -DincludeScope=runtime
	@touch $@
$(LIBS4)/.stamp: dev/pom-kafka4.xml
	@echo "fetching Kafka 4.4 jars with Maven (pinned in dev/pom-kafka4.xml)"
	@rm -rf $(LIBS4)
	mvn -B -q -f dev/pom-kafka4.xml dependency:copy-dependencies -DoutputDirectory=.cache/lib-4.4 -DincludeScope=runtime
	@touch $@

# moto in server mode (EC2 + Route53 APIs) in a virtualenv.
moto: $(VENV)/.stamp
$(VENV)/.stamp: dev/requirements-moto.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r dev/requirements-moto.txt
	@touch $@

# schemathesis (PyPI) holds the served OpenAPI document to the server's behaviour in `make test`.
schemathesis: $(ST_VENV)/.stamp
$(ST_VENV)/.stamp: dev/requirements-schemathesis.txt
	python3 -m venv $(ST_VENV)
	$(ST_VENV)/bin/pip install -q -r dev/requirements-schemathesis.txt
	@touch $@

build:
	$(CARGO) build --workspace --bins

# A ZooKeeper ensemble, a 3-broker cluster booted through kafka-bootstrap, a kcat round trip, and
# kafka-auditor heartbeating every broker, a scale-up 3 -> 5. Stays up until Ctrl-C when run from a terminal.
demo: deps build
	$(CARGO) run -q -p fleet-tests --bin local-fleet -- demo

unit-test:
	$(CARGO) test --workspace --lib --bins

integration-test: deps build
	$(CARGO) test -p fleet-tests --tests -- --test-threads=$(TEST_THREADS)

# terraform/: fmt, tflint, checkov, `terraform test` of the provider-free modules, and
# self-tests that each check catches a planted fault. Offline; installs pinned tools on first use.
terraform-check:
	terraform/scripts/check.sh

# A real init/plan/apply/destroy of terraform/examples/complete against moto, with the AWS provider
# built from its Go module (the first run compiles it: tens of minutes). Not part of `make test`.
terraform-moto: moto
	terraform/scripts/moto-apply.sh

test: deps build terraform-check
	$(CARGO) test --workspace --lib --bins
	$(CARGO) test -p fleet-tests --tests -- --test-threads=$(TEST_THREADS)

# Fault injection against the real fleet (docs/reliability.md): a few minutes of JVMs, so not
# part of `make test`. Needs root (it edits /etc/hosts and mounts a tmpfs), as CI machines give.
chaos: deps build
	$(CARGO) test -p fleet-tests --test chaos -- --ignored --nocapture --test-threads=1

# Figures for docs/benchmarks.md.
bench: deps build
	$(CARGO) run -q -p fleet-tests --bin bench-broker-ids -- --runs 5 --sizes 50,100
	$(CARGO) run -q -p fleet-tests --bin bench-healthcheck -- --partitions 10000 --runs 5
	@# Throughput figures from optimised builds: librdkafka's C code follows the profile too.
	$(CARGO) build -q --release -p kafka-auditor -p fleet-manager -p fleetctl -p kafka-bootstrap -p kafka-healthcheck -p fleet-tests --bin bench-loadtest --bin bench-client \
	  --bin kafka-auditor --bin fleet-manager --bin fleetctl --bin kafka-bootstrap --bin kafka-healthcheck
	FLEET_BIN_DIR=$$($(CARGO) metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release \
	  $(CARGO) run -q --release -p fleet-tests --bin bench-loadtest -- --seconds 15 --rounds 3
	$(CARGO) run -q -p fleet-tests --bin bench-plan -- --clusters 100 --brokers 12 --topics 50
	$(CARGO) run -q -p fleet-tests --bin bench-reconcile -- --clusters 100 --seconds 60
	FLEET_BIN_DIR=$$($(CARGO) metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release \
	  $(CARGO) run -q --release -p fleet-tests --bin bench-client -- --records 3000000 --rounds 9
	$(CARGO) run -q -p fleet-tests --bin bench-failover
	$(CARGO) run -q -p fleet-tests --bin bench-reconcile -- --clusters 1000 --seconds 30
	$(CARGO) run -q -p fleet-tests --bin bench-scale-up -- --topics 200
	$(CARGO) run -q -p fleet-tests --bin bench-decommission -- --data-mib 1024 --throttle 10MiB/s
	$(CARGO) run -q -p fleet-tests --bin bench-triggers -- --routes 1000 --clusters 50
	$(CARGO) run -q -p fleet-tests --bin bench-operations -- --clusters 10 --seconds 60 --baseline

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Kafka's broker and topic config catalogs (types, validators, dynamic update modes) from the pinned jar.
kafka-config-catalog: jars
	java -cp "$(LIBS)/*" dev/tools/DumpKafkaConfigCatalog.java | sort > fleet-common/src/kafka_config_catalog.tsv

clean:
	$(CARGO) clean
	rm -rf $(CACHE) $(VENV)
