# ossjobwatch development tasks. `make help` lists them.

GO       ?= go
PKGS     ?= ./...
BENCH    ?= .
BIN      := bin/ossjobwatch
STATICCHECK_VERSION ?= v0.8.2

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the binary into bin/.
	$(GO) build -o $(BIN) ./cmd/ossjobwatch

.PHONY: test
test: ## Run every test with the race detector (installs PostgreSQL and Chromium if missing).
	@bash .ci/install-postgres.sh
	@bash .ci/install-chromium.sh
	$(GO) test -race -count=1 $(PKGS)

.PHONY: vet
vet: ## Run go vet and check formatting.
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: lint
lint: vet ## Run staticcheck (fetched through the module proxy).
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

.PHONY: bench
bench: ## Run the benchmarks (BENCH=regexp to choose).
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem $(PKGS)

.PHONY: bench-console
bench-console: ## Measure the console's pages on 100,000 jobs and 1,000,000 events (p50/p95 per page).
	@bash .ci/install-postgres.sh
	$(GO) test -run '^$$' -bench '^BenchmarkConsole$$' -benchtime 40x -timeout 30m ./console

.PHONY: bench-scale
bench-scale: ## Run the fleet benchmark: 200 targets of 500 jobs on 3 replicas (OSSJOBWATCH_SCALE="targets=…,period=…" to change).
	@bash .ci/install-postgres.sh
	$(GO) test -run '^$$' -bench '^BenchmarkManyTargetsManyReplicas$$' -benchtime 1x -timeout 30m ./app

.PHONY: fuzz
fuzz: ## Fuzz the ListJobs decoder for a minute.
	$(GO) test -run '^$$' -fuzz FuzzDecodeListJobs -fuzztime 60s ./oss

.PHONY: demo
demo: ## Run the whole pipeline on this machine with a live view (Ctrl-C stops it).
	@bash .ci/install-postgres.sh >/dev/null
	@$(GO) build -o $(BIN) ./cmd/ossjobwatch
	@./$(BIN) demo

.PHONY: simulate
simulate: ## Run the OSS simulator on 127.0.0.1:9000.
	$(GO) run ./cmd/ossjobwatch simulate --listen 127.0.0.1:9000 --jobs 1000 --seed 1 --tick 5s

.PHONY: clean
clean: ## Remove build output.
	rm -rf bin
