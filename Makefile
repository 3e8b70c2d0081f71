# auditexport: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
GO ?= go
# How long `make test` fuzzes each target; `make fuzz FUZZTIME=5m` for a longer run.
FUZZTIME ?= 5s
BENCHCOUNT ?= 5
SOAK ?= 5m

.PHONY: help run build generate lint test test-go test-servers s3-server fuzz bench soak clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## run the server on 127.0.0.1:8080 with data in ./data (embedded bbolt, nothing to install)
	$(GO) run ./cmd/auditexport serve

build: ## build bin/auditexport
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/auditexport ./cmd/auditexport

generate: ## regenerate the gqlgen code from schema.graphqls
	$(GO) generate ./graph/...

lint: ## gofmt, go vet and staticcheck
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

test: lint test-go fuzz ## everything: lint, all tests with the race detector, a short fuzz of every target

test-go: ## all tests with the race detector, against MinIO, PostgreSQL and Azurite on loopback started for the run, Chromium, and DuckDB reading exports back
	AUDITEXPORT_TEST_DUCKDB=$$(scripts/duckdb.sh install || true) scripts/with-test-servers.sh $(GO) test -race -count=1 ./...

test-servers: ## install what the tests run against: MinIO, PostgreSQL, Azurite, Chromium, DuckDB (in parallel; cached)
	scripts/install-test-servers.sh

s3-server: ## build the pinned MinIO and mc used by the tests (cached in $(go env GOPATH)/bin)
	scripts/s3-server.sh install

fuzz: ## run every fuzz target for FUZZTIME
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

bench: ## run every benchmark (BENCHCOUNT runs each) against a MinIO and a PostgreSQL on loopback, and DuckDB beside auditexport; report in bench/REPORT.md
	BENCHCOUNT=$(BENCHCOUNT) AUDITEXPORT_TEST_DUCKDB=$$(scripts/duckdb.sh install) AUDITEXPORT_TEST_SERVERS="s3 pg" scripts/with-test-servers.sh scripts/bench.sh

soak: ## the fault-injection soak test for SOAK (default 5m): kills, MinIO outages, revoked policies
	scripts/with-s3-server.sh $(GO) test -count=1 -timeout 2h -run '^TestSoak$$' -v ./cmd/auditexport/ -soak $(SOAK)

clean: ## remove build output
	rm -rf bin
