# Sluice: a RocketMQ-compatible message broker with a deterministic simulator.
GO      ?= go
BIN     := bin/sluice
SEED    ?= 1
SEEDS   ?= 500
FUZZTIME ?= 30s

.PHONY: all build build-race install run test test-short deps nodeclient sim sim-swarm mutants sim-props bench bench-broker soak fuzz vet clean jepsen jepsen-plant

all: build

build:
	$(GO) build -o $(BIN) ./cmd/sluice

# The binary built with the race detector, for running a cluster by hand under it (make jepsen
# RACE=1 builds its own, with disk faults on too).
RACE_BIN := bin/sluice-race
RACE ?=
build-race:
	$(GO) build -race -o $(RACE_BIN) ./cmd/sluice

# sluice on the PATH: go install puts it in $(go env GOPATH)/bin (or $GOBIN).
install:
	$(GO) install ./cmd/sluice
	@dir=$$($(GO) env GOBIN); [ -n "$$dir" ] || dir=$$($(GO) env GOPATH)/bin; \
	  echo "installed $$dir/sluice (add $$dir to PATH if 'sluice' is not found)"

# A local cluster on the default ports: name server 127.0.0.1:9876, broker 127.0.0.1:10911, data in ./data.
run: build
	./$(BIN) dev --data ./data

# Everything CI runs: vet, unit and property tests, the simulator checks (with the regression
# seeds of scenarios/regressions.go), real-process tests, then a bounded sweep of both
# topologies in both flush and replication modes (CHECK_SEEDS seeds of the single topology in
# sync flush, CHECK_ASYNC_SEEDS in async flush, whose runs check longer; the groups topology
# half as many as CHECK_SEEDS): about 3 minutes together. The production runtime, its disk, the
# client runtime, the ops server and TLS reloading run again under the race detector (their own
# goroutines are where races can hide; the node code is single-threaded): about 50 s more.
RACE_PKGS := ./broker/runtime/ ./broker/diskfile/ ./broker/clientrt/ ./broker/opsserver/ ./broker/tlsconf/ ./broker/testclock/
CHECK_SEEDS ?= 16
CHECK_ASYNC_SEEDS ?= 8
test: nodeclient deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 14m ./...
	$(GO) test -race -count=1 -timeout 10m $(RACE_PKGS)
	$(GO) build -o bin/sluice-sim ./cmd/sluice
	@$(call sweep,$(CHECK_SEEDS),$(shell echo $$(( $(CHECK_SEEDS) / 2 ))),$(CHECK_ASYNC_SEEDS))

# sweep(N, M, A): N seeds of the single topology in sync flush and A (default N) in async
# flush, M (default N) of the groups topology in sync and async replication, PARALLEL seeds at
# a time (default: one a core); the violations, each sweep's totals and its summary table are
# printed, and it fails if any seed failed.
PARALLEL ?=
simflags = $(if $(PARALLEL),--parallel $(PARALLEL))
sweep = fail=0; for mode in "single --flush sync:$(1)" "single --flush async:$(or $(3),$(1))" "groups --replication sync:$(or $(2),$(1))" "groups --replication async:$(or $(2),$(1))"; do \
	  n=$${mode\#\#*:}; mode=$${mode%:*}; \
	  echo "== sluice sim --topology $$mode --seed 1 --seeds $$n $(simflags)"; \
	  out=$$(./bin/sluice-sim sim --topology $$mode --seed 1 --seeds $$n $(simflags)) || fail=1; \
	  echo "$$out" | grep -E 'VIOLATION|^  (violation|replay|report):'; echo "$$out" | sed -n '/^seeds=/,$$p'; \
	done; [ $$fail = 0 ] || { echo "a sweep found violations"; exit 1; }

# Debian's chromium, which the browser tests open (sim/report: TestShrunkReportInChromium, the
# simulator's failure report; cmd/sluice: TestConsoleInChromium, the web console): installed
# with apt-get when missing and this runs as root; otherwise it says why not, and those tests
# skip with the reason (under CI=true they fail instead: package internal/chromium).
deps:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make deps: installing Debian's chromium (the browser tests of sim/report and the console)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	    || echo "make deps: could not install chromium; the browser tests will skip (fail under CI=true)"; \
	else echo "make deps: no chromium, and no root apt-get to install it; the browser tests will skip (fail under CI=true)"; fi

# The Node.js RocketMQ client ali-ons that cmd/sluice/compat_nodejs_test.go drives, installed
# from the npm registry at the versions package-lock.json pins (into its node_modules, which git
# ignores). Required: without Node.js 20 and npm the compatibility tests fail.
NODECLIENT := cmd/sluice/testdata/nodeclient
nodeclient:
	@command -v npm >/dev/null || { echo "make nodeclient: npm not found; the Node.js client tests need Node.js 20 and npm"; exit 1; }
	npm ci --prefix $(NODECLIENT) --no-audit --no-fund

test-short: nodeclient
	$(GO) test -count=1 -short ./...

# One simulated run; replay a failing seed with: make sim SEED=N
sim:
	$(GO) run ./cmd/sluice sim --seed $(SEED)

# The long sweeps (not part of make test): SEEDS seeds of each topology, each flush and
# replication mode: the single broker (one name server, one broker, one simulated minute, every
# flow) and the groups cluster (3 name servers with controllers, 2 broker groups of 3 replicas,
# 2 simulated minutes, the full fault catalogue plus failovers aimed at each group's master).
# Then the mutation record (make mutants). Seeds run PARALLEL at a time (default: one a core),
# each in a world of its own: the results are the same at any PARALLEL.
# Real processes under real faults (needs root; not part of make test, which runs one ~60 s
# schedule of it, TestRealClusterUnderFaults): JEPSEN_RUNS schedules of JEPSEN_DURATION each
# from seed JEPSEN_SEED, 3 name servers with controllers and 2 broker groups of 3 with sync
# replication, each process in its own network namespace; then a summary of violations,
# faults by kind and failovers. See docs/jepsen.md.
JEPSEN_RUNS ?= 20
JEPSEN_DURATION ?= 2m
JEPSEN_SEED ?= 1
# The build has disk faults on (-tags faultinject: package diskfile's trigger files); RACE=1
# runs the cluster from a -race build, where a node's race report fails the run.
JEPSEN_BUILD_FLAGS ?= -tags faultinject $(if $(RACE),-race)
jepsen:
	$(GO) build $(JEPSEN_BUILD_FLAGS) -o bin/sluice-jepsen ./cmd/sluice
	./bin/sluice-jepsen jepsen --seed $(JEPSEN_SEED) --runs $(JEPSEN_RUNS) --duration $(JEPSEN_DURATION)

# The planted bug the real harness must catch: a stale master that goes on acknowledging on
# its own fsync (SLUICE_PLANT=stale-master-acks), under a schedule that isolates a master
# from its replicas and the controllers but not from its clients. It succeeds when the run
# fails.
JEPSEN_PLANT ?= stale-master-acks
JEPSEN_PLANT_SEED ?= 1
jepsen-plant:
	$(GO) build -o bin/sluice-jepsen ./cmd/sluice
	@if ./bin/sluice-jepsen jepsen --seed $(JEPSEN_PLANT_SEED) --duration 60s --plant $(JEPSEN_PLANT); then \
	  echo "the planted bug $(JEPSEN_PLANT) was NOT caught"; exit 1; \
	else echo "the planted bug $(JEPSEN_PLANT) was caught"; fi

sim-swarm:
	$(GO) build -o bin/sluice-sim ./cmd/sluice
	@$(call sweep,$(SEEDS))
	@$(MAKE) --no-print-directory mutants

# The mutation record: every planted bug of the catalogue ('sluice sim --plant list',
# sim/cluster/plants.go) runs seed after seed until a semantic check catches it (a node's panic
# is no catch); it fails if one goes uncaught within PLANT_SEEDS seeds. The table at the end
# gives, per bug, its topology, the seed that caught it, the kinds of violation and its class.
PLANT_SEEDS ?= 200
mutants:
	$(GO) build -o bin/sluice-sim ./cmd/sluice
	./bin/sluice-sim sim --mutants --seeds $(PLANT_SEEDS) $(simflags)

# The rapid properties of sim/cluster/props_test.go (make test runs a few checks of each):
# RAPID_CHECKS runs of the single topology and as many of the groups topology, each drawn by
# rapid (workload, flows, fault plan); a failure is shrunk and printed with its replay command.
RAPID_CHECKS ?= 300
sim-props:
	RAPID_CHECKS=$(RAPID_CHECKS) $(GO) test -count=1 -timeout 0 -run 'TestProps(Single|Groups)$$' -v ./sim/cluster/

bench: bench-broker
	$(GO) test -run '^$$' -bench . -benchtime 3s ./broker/store/ ./broker/diskfile/ ./broker/runtime/ ./broker/codec/

# End to end: a broker in its own process, 1 KiB messages from 'sluice bench' in another;
# sync flush (every acknowledgement after its fsync) beside async flush as the baseline.
bench-broker: build
	@for flush in sync async; do \
	  d=$$(mktemp -d); \
	  ./$(BIN) dev --data $$d --log-level warn --flush $$flush --namesrv-addr 127.0.0.1:19876 --broker-addr 127.0.0.1:20911 >/dev/null & pid=$$!; \
	  sleep 1; echo "== broker with $$flush flush"; \
	  ./$(BIN) bench --namesrv 127.0.0.1:19876 --messages 200000; \
	  echo "broker peak RSS: $$(grep VmHWM /proc/$$pid/status | tr -s " ")"; \
	  kill -INT $$pid; wait $$pid; rm -rf $$d; \
	done

# Soak (not part of make test): a broker with a SOAK_RETENTION retention on a SOAK_DISK_MIB file
# system (loop-mounted ext4 when run as root) takes SOAK_RATE 1 KiB messages a second for
# SOAK_DURATION with a consumer group reading along; a line every 10 s, then a summary: disk
# use bounded, throughput and broker RSS flat. See scripts/soak.sh for the other settings.
SOAK_DURATION ?= 10m
SOAK_RATE ?= 1500
SOAK_RETENTION ?= 1m
SOAK_DISK_MIB ?= 256
soak: build
	SOAK_DURATION=$(SOAK_DURATION) SOAK_RATE=$(SOAK_RATE) SOAK_RETENTION=$(SOAK_RETENTION) \
	  SOAK_DISK_MIB=$(SOAK_DISK_MIB) BIN=$(BIN) ./scripts/soak.sh

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeFrame -fuzztime $(FUZZTIME) ./broker/codec/
	$(GO) test -run '^$$' -fuzz FuzzReadFrame -fuzztime $(FUZZTIME) ./broker/codec/
	$(GO) test -run '^$$' -fuzz FuzzDecodeRecord -fuzztime $(FUZZTIME) ./broker/codec/
	$(GO) test -run '^$$' -fuzz FuzzParseProperties -fuzztime $(FUZZTIME) ./broker/codec/
	$(GO) test -run '^$$' -fuzz FuzzJSONHeaderFastPath -fuzztime $(FUZZTIME) ./broker/codec/
	$(GO) test -run '^$$' -fuzz FuzzDecodeHeaders -fuzztime $(FUZZTIME) ./broker/codec/
	$(GO) test -run '^$$' -fuzz FuzzDecodeBatch -fuzztime $(FUZZTIME) ./broker/codec/
	$(GO) test -run '^$$' -fuzz FuzzSetProperty -fuzztime $(FUZZTIME) ./broker/codec/
	$(GO) test -run '^$$' -fuzz FuzzParseOffsetMsgID -fuzztime $(FUZZTIME) ./broker/codec/
	$(GO) test -run '^$$' -fuzz FuzzDecodeTopicRouteData -fuzztime $(FUZZTIME) ./broker/route/
	$(GO) test -run '^$$' -fuzz FuzzDecodeRegisterBody -fuzztime $(FUZZTIME) ./broker/route/
	$(GO) test -run '^$$' -fuzz FuzzDecodeCompressedRegisterBody -fuzztime $(FUZZTIME) ./broker/route/
	$(GO) test -run '^$$' -fuzz FuzzNameServerRequest -fuzztime $(FUZZTIME) ./broker/namesrv/
	$(GO) test -run '^$$' -fuzz FuzzBrokerRequest -fuzztime $(FUZZTIME) ./broker/brokernode/
	$(GO) test -run '^$$' -fuzz FuzzDecodeHeartbeat -fuzztime $(FUZZTIME) ./broker/brokernode/
	$(GO) test -run '^$$' -fuzz FuzzDecodeSendHeader -fuzztime $(FUZZTIME) ./broker/brokernode/
	$(GO) test -run '^$$' -fuzz FuzzDecodeLockBatch -fuzztime $(FUZZTIME) ./broker/brokernode/
	$(GO) test -run '^$$' -fuzz FuzzSlaveAnswers -fuzztime $(FUZZTIME) ./broker/brokernode/
	$(GO) test -run '^$$' -fuzz FuzzMasterFetch -fuzztime $(FUZZTIME) ./broker/brokernode/
	$(GO) test -run '^$$' -fuzz FuzzMetadataBodies -fuzztime $(FUZZTIME) ./broker/brokernode/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./broker/sqlfilter/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./broker/config/
	$(GO) test -run '^$$' -fuzz FuzzRequests -fuzztime $(FUZZTIME) ./broker/controller/
	$(GO) test -run '^$$' -fuzz FuzzDecodePlan -fuzztime $(FUZZTIME) ./faults/
	$(GO) test -run '^$$' -fuzz FuzzBrokerInput -fuzztime $(FUZZTIME) ./broker/client/

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
