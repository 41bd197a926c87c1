# hdfsftpd — build, run the embedded demo, test, benchmark, install.
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
DESTDIR    ?=
CARGO      ?= cargo
BIN        := target/release/hdfsftpd
DEMO_DIR   := target/demo
DEMO_PORT  ?= 2121

.PHONY: all build deps run run-hdfs test test-core lint bench soak fuzz clean

all: build

deps:
	@scripts/install/install-build-deps.sh

build: deps
	$(CARGO) build --release

# The embedded default: local storage, users file, plain FTP on 127.0.0.1.
run: build
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR) && cp -r test-data/demo $(DEMO_DIR)/root
	@echo "hdfsftpd demo on ftp://127.0.0.1:$(DEMO_PORT)/  user: demo  password: demo  (Ctrl-C stops it)"
	$(BIN) --bind 127.0.0.1 --ftp-port $(DEMO_PORT) --local-root $(DEMO_DIR)/root \
		--users-file test-data/users.sample --anonymous --pasv-ports 50000-50100

# A real HDFS (NameNode + 3 DataNodes, scripts/cluster/hdfs-cluster.sh) under target/demo-hdfs and hdfsftpd on it.
run-hdfs: build
	@scripts/cluster/run-hdfs.sh

# Every test: unit tests (the HDFS ones against a real JVM with the Hadoop client jars), then the
# integration suite (real binary, real clients, a throwaway KDC, a real HDFS from scripts/cluster/hdfs-cluster.sh).
test: build test-core
	@scripts/install/install-test-deps.sh
	@scripts/install/install-krb5.sh
	@jars="$$(scripts/cluster/provision-hadoop.sh | tail -n 1)" && export HDFSFTPD_HADOOP_JARS="$$jars" && \
		$(CARGO) test --release --workspace && \
		python3 -m pytest -ra --durations=15 tests/ && \
		HDFSFTPD_TEST_STORAGE=hdfs python3 -m pytest -ra --durations=10 $(HDFS_CLIENT_SUITE)

# The FTP core's unit tests without HDFS and Kerberos (`cargo test --workspace --no-default-features`),
# checked to build with no JDK on PATH and to link no libjvm, libhdfs or libkrb5 (scripts/test/test-core.sh).
test-core:
	@CARGO="$(CARGO)" scripts/test/test-core.sh

# The core client suite, run a second time with --storage hdfs on a real HDFS (one cluster for the run,
# each server in a tree of its own, homes owned by their users). Tests of what only a local disk has
# (symlinks, sparse files of several GiB) say so and are skipped there.
HDFS_CLIENT_SUITE := tests/test_transfers.py tests/test_listing.py tests/test_commands.py tests/test_ipv6.py \
	tests/test_abort.py tests/test_robustness.py tests/test_auth.py tests/test_limits.py \
	tests/test_hardening.py

# hdfsftpd next to vsftpd (installed from Debian when missing), pure-ftpd and ProFTPD (Debian's packages
# unpacked into a cache by scripts/bench/provision-bench-peers.sh, which bench.py runs), each row with
# hdfsftpd's ratio against the best peer; the HDFS path next to a direct libhdfs copy; and on a real
# cluster (scripts/cluster/hdfs-cluster.sh) next to Hadoop's Java CLI and the direct copy. Prints metric=...
# lines and writes target/bench.txt. BENCH_ARGS=--quick for a smoke run.
bench: build
	@scripts/install/install-test-deps.sh
	$(CARGO) build --release --example hdfs_copy -p hdfsftpd-ffi
	$(CARGO) build --release --example ftp_get
	python3 scripts/bench/bench.py $(BENCH_ARGS)

# hdfsftpd on a real HA cluster under 16 concurrent clients and scheduled faults for SOAK_MINUTES (60);
# every stored file checked byte for byte. Ends with "soak: N lost, N corrupted, N unclear, N hung".
SOAK_MINUTES ?= 60
soak: build
	@scripts/install/install-test-deps.sh
	@jars="$$(scripts/cluster/provision-hadoop.sh | tail -n 1)" && test -n "$$jars"
	python3 scripts/test/soak.py --minutes $(SOAK_MINUTES)

# Coverage-guided fuzzing (cargo fuzz on nightly; installs cargo-fuzz when missing): each target in fuzz/
# for FUZZ_SECONDS (60); fails on a crash, an input over 1 s or over 256 MiB. FUZZ_TARGETS picks targets
# (all by default). docs/fuzzing.md says more.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz:
	scripts/test/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Formatting, clippy with warnings as errors (with and without the hdfs and krb5 features), and no
# import cycle between src/'s modules; .ci/run runs it before the tests.
lint: deps
	$(CARGO) fmt --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	$(CARGO) clippy --workspace --all-targets --no-default-features --features fuzzing --target-dir target/core -- -D warnings
	python3 scripts/test/check-module-cycles.py

clean:
	$(CARGO) clean

# --- Installation --------------------------------------------------------------------------------
SBINDIR   := $(PREFIX)/sbin
MANDIR    := $(PREFIX)/share/man/man8
CONFDIR   := $(SYSCONFDIR)/hdfsftpd
INITDIR   := $(SYSCONFDIR)/init.d
RUNDIR    ?= /var/run
SUBST     := sed -e 's,@SBINDIR@,$(SBINDIR),g' -e 's,@SYSCONFDIR@,$(SYSCONFDIR),g' -e 's,@RUNDIR@,$(RUNDIR),g'

.PHONY: install uninstall
# Installs the binary, init script, man page and (only where none exists) the default config.
install: build
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR) $(DESTDIR)$(CONFDIR) $(DESTDIR)$(INITDIR)
	install -m 755 $(BIN) $(DESTDIR)$(SBINDIR)/hdfsftpd
	$(SUBST) scripts/install/hdfsftpd.init > target/hdfsftpd.init
	install -m 755 target/hdfsftpd.init $(DESTDIR)$(INITDIR)/hdfsftpd
	scripts/release/make-manpage.sh $(BIN) > target/hdfsftpd.8
	install -m 644 target/hdfsftpd.8 $(DESTDIR)$(MANDIR)/hdfsftpd.8
	$(SUBST) scripts/install/hdfsftpd.conf > target/hdfsftpd.conf
	@if [ -e $(DESTDIR)$(CONFDIR)/hdfsftpd.conf ]; then \
		echo "keeping existing $(DESTDIR)$(CONFDIR)/hdfsftpd.conf"; \
	else \
		install -m 644 target/hdfsftpd.conf $(DESTDIR)$(CONFDIR)/hdfsftpd.conf; \
	fi

# Removes what install added; the config only if it is still the shipped one.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/hdfsftpd $(DESTDIR)$(INITDIR)/hdfsftpd $(DESTDIR)$(MANDIR)/hdfsftpd.8
	@if [ -e $(DESTDIR)$(CONFDIR)/hdfsftpd.conf ]; then \
		$(SUBST) scripts/install/hdfsftpd.conf | cmp -s - $(DESTDIR)$(CONFDIR)/hdfsftpd.conf \
			&& rm -f $(DESTDIR)$(CONFDIR)/hdfsftpd.conf \
			|| echo "keeping modified $(DESTDIR)$(CONFDIR)/hdfsftpd.conf"; \
	fi
	-rmdir $(DESTDIR)$(CONFDIR) 2>/dev/null
