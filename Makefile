# hdfsftpd — build, run the embedded demo, test, benchmark, install.
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
DESTDIR    ?=
CARGO      ?= cargo
BIN        := target/release/hdfsftpd
DEMO_DIR   := target/demo
DEMO_PORT  ?= 2121

.PHONY: all build deps run test unit-test integration-test lint bench clean

all: build

deps:
	@scripts/install-build-deps.sh

build: deps
	$(CARGO) build --release

# The embedded default: local storage, users file, plain FTP on 127.0.0.1.
run: build
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR) && cp -r test-data/demo $(DEMO_DIR)/root
	@echo "hdfsftpd demo on ftp://127.0.0.1:$(DEMO_PORT)/  user: demo  password: demo  (Ctrl-C stops it)"
	$(BIN) --bind 127.0.0.1 --ftp-port $(DEMO_PORT) --local-root $(DEMO_DIR)/root \
		--users-file test-data/users.sample --anonymous --pasv-ports 50000-50100

test: build
	@scripts/install-test-deps.sh
	$(CARGO) test --release --workspace
	python3 -m pytest -ra tests/

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
