# stackgate: see README.md. Every target runs as root on Debian 12.
SHELL := /bin/bash
GO ?= go
GINKGO ?= $(GO) run github.com/onsi/ginkgo/v2/ginkgo
ARTIFACTS ?= $(CURDIR)/_artifacts
export ARTIFACTS

.PHONY: help test test-race test-deps lint bench bench-tunnel bench-devstack

## help: this list.
help:
	@sed -n 's/^## \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

## test: every test suite, what CI runs. Test binaries are built in parallel (none runs),
##       then run one package at a time: the packages that use the local DevStack share
##       one environment (brought up by the first, reused by the others). The tunnel's
##       suite then runs again under the race detector (test-race).
test: test-deps lint check-capo-deps check-capo envtest capi
	$(GO) test -count=1 -exec /bin/true ./... >/dev/null
	KUBEBUILDER_ASSETS="$$(GO=$(GO) hack/envtest/build.sh)" STACKGATE_CAPI_DIR="$$(GO=$(GO) hack/capi/build.sh)" \
	  $(GO) test -p 1 -count=1 -timeout 85m $(TEST_ARGS) ./...
	$(MAKE) --no-print-directory test-race

## test-race: the tunnel's suite (every byte a test routes, its keepalive, re-dial and
##            Close) under the race detector.
test-race: test-deps
	$(GO) test -race -count=1 -timeout 10m $(TEST_ARGS) ./tunnel/

## test-deps: the Debian packages the tests use, installed when missing (hack/test-deps.sh).
test-deps:
	@hack/test-deps.sh

## lint: gofmt, go vet (also for darwin/arm64 and windows/amd64: everything but the Linux-only
##       packages, the local host and its tests, which build tags leave out), and go.mod tidy
##       (go mod tidy -diff).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...
	GOOS=windows GOARCH=amd64 $(GO) vet ./...
	$(GO) mod tidy -diff

## check-capo-deps: adding stackgate to CAPO's module at the pin (CAPO_VERSION, default v0.14.7)
##                  changes none of CAPO's require lines (hack/check-capo-deps.sh).
.PHONY: check-capo-deps
check-capo-deps:
	GO=$(GO) hack/check-capo-deps.sh

## check-capo: CAPO's own test/e2e at the pin (CAPO_VERSION), with hack/capo's patch putting stackgate in
##             place of its sshuttle and DevStack plumbing, vets and builds (every suite); docs/capo.md's
##             Go blocks are in the files they name (hack/capo/check.sh).
.PHONY: check-capo
check-capo:
	GO=$(GO) hack/capo/check.sh

## bench: tunnel and environment benchmarks, side by side.
bench: bench-tunnel bench-local bench-devstack bench-e2e bench-capo

## bench-tunnel: direct routing, OpenSSH -L and -D, sshuttle, and stackgate's tunnel in-process and through
##               its SOCKS5 / HTTP CONNECT port, on one topology; BENCH_TUNNEL_ARGS go to the bench (-h lists them).
bench-tunnel:
	$(GO) run ./tunnel/internal/bench $(BENCH_TUNNEL_ARGS)

.PHONY: local-up local-down local-status bench-local

## local-up: bring the local DevStack (namespaces controller/worker) up, or reuse it.
local-up:
	$(GO) run ./cmd/stackgate-local up

## local-down: stop and remove the local DevStack.
local-down:
	$(GO) run ./cmd/stackgate-local down

## local-status: processes and health of the local DevStack.
local-status:
	$(GO) run ./cmd/stackgate-local status

## bench-local: cold start, reuse, worker join and memory, on a separate instance "bench".
bench-local:
	$(GO) run ./cmd/stackgate-local bench

## bench-devstack: second-AZ detection latency, a full log collection on the local environment, redaction of 16 MiB of logs.
bench-devstack:
	$(GO) test -run '^$$' -bench 'SecondAZDetection|CollectLogs|Redact' -benchtime 5x -timeout 40m ./devstack/

.PHONY: e2e bench-e2e

E2E_GINKGO_FOCUS ?=
E2E_GINKGO_SKIP ?=
E2E_GINKGO_PARALLEL ?= 2
E2E_GINKGO_TIMEOUT ?= 2h
E2E_ARGS ?=
# smoke first: its specs need only testaz1 and start while the worker is still joining.
E2E_SUITES ?= ./suites/smoke ./suites/multiaz ./suites/capo

## e2e: the smoke, multi-az and capo suites on the local DevStack (brought up or reused), JUnit and logs in $(ARTIFACTS).
##      E2E_GINKGO_FOCUS / E2E_GINKGO_SKIP filter specs, E2E_GINKGO_PARALLEL sets the processes, E2E_GINKGO_TIMEOUT
##      bounds the run, E2E_GINKGO_ARGS go to ginkgo, E2E_ARGS to the suites (an -e2e.config=<file> there also
##      configures the local environment brought up first), E2E_SUITES lists the suites.
##      With STACKGATE_ENVIRONMENT or USE_EXISTING_DEVSTACK=true the suites attach instead of using the local host;
##      STACKGATE_LOCAL_INSTANCE=<name> makes the suites bring up (or reuse) that local instance themselves.
e2e:
	@mkdir -p $(ARTIFACTS)
	@# Compile first, so that the specs start as soon as the controller's API answers.
	$(foreach s,$(E2E_SUITES),$(GO) test -c -o $(CURDIR)/bin/e2e/$(notdir $(s))/$(notdir $(s)).test $(s) &&) true
	@if [ -z "$$STACKGATE_ENVIRONMENT$$STACKGATE_LOCAL_INSTANCE" ] && [ "$$USE_EXISTING_DEVSTACK" != "true" ]; then \
	  $(GO) build -o $(CURDIR)/bin/stackgate-local ./cmd/stackgate-local && $(CURDIR)/bin/stackgate-local $(filter -e2e.config=% --e2e.config=%,$(E2E_ARGS)) up; fi
	@# suites/capo's management cluster: kube-apiserver and the managers, built once and cached.
	KUBEBUILDER_ASSETS="$$(GO=$(GO) hack/envtest/build.sh)" STACKGATE_CAPI_DIR="$$(GO=$(GO) hack/capi/build.sh)" \
	$(GINKGO) -v --trace --nodes=$(E2E_GINKGO_PARALLEL) --timeout=$(E2E_GINKGO_TIMEOUT) \
	  $(if $(E2E_GINKGO_FOCUS),--focus="$(E2E_GINKGO_FOCUS)") $(if $(E2E_GINKGO_SKIP),--skip="$(E2E_GINKGO_SKIP)") \
	  --output-dir=$(ARTIFACTS) --junit-report=junit.e2e.xml --json-report=report.e2e.json $(E2E_GINKGO_ARGS) \
	  $(foreach s,$(E2E_SUITES),$(CURDIR)/bin/e2e/$(notdir $(s))/$(notdir $(s)).test) -- -e2e.artifacts-folder=$(ARTIFACTS) $(E2E_ARGS)

## bench-e2e: make e2e timed to the first spec, to the second AZ and in total, with -p 2 against serial.
bench-e2e:
	$(GO) run ./suites/internal/benche2e $(BENCH_E2E_ARGS)

## bench-capo: the kind-free management cluster with CAPO on the local DevStack (brought up or reused):
##             managers' warm build, management cluster ready, CAPO's without-lb flavor applied to
##             OpenStackCluster ready and to its servers ACTIVE, delete to nothing left (BENCH_CAPO_SAMPLES
##             samples, default 3), the management cluster's and the environment's memory (PSS).
.PHONY: bench-capo
bench-capo:
	KUBEBUILDER_ASSETS="$$(GO=$(GO) hack/envtest/build.sh)" STACKGATE_CAPI_DIR="$$(GO=$(GO) hack/capi/build.sh)" \
	  $(GO) test -count=1 -timeout 90m -v ./suites/capo -args -ginkgo.label-filter=bench -ginkgo.v

## capi: build (or reuse from the cache) the management cluster's managers (Cluster API core, kubeadm
##       bootstrap and control plane, CAPO, ORC at the versions hack/capi/main.go pins) and CAPO's
##       rendered e2e flavors; print the directory to use as STACKGATE_CAPI_DIR.
.PHONY: capi
capi:
	@GO=$(GO) hack/capi/build.sh

## envtest: build (or reuse from the cache) kube-apiserver and etcd for envtest
## and print the directory to use as KUBEBUILDER_ASSETS.
.PHONY: envtest
envtest:
	@GO=$(GO) hack/envtest/build.sh
