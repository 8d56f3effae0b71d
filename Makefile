# nptools: build, test, demo, man, install, bench, fuzz.
#
# One target directory and one profile (release) serve the build, the tests
# and the demo, so the workspace is compiled once.

CARGO        ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target
BIN          := $(CARGO_TARGET_DIR)/release
TOOLS        := npargs npenv npmap npfiles npstack npgcore
PREFIX       ?= /usr/local
DESTDIR      ?=
FUZZ_SECONDS ?= 60

export NPTOOLS_BIN_DIR := $(BIN)

.PHONY: all build nodes packages test lint man install demo bench fuzz clean dist

all: build

build:
	$(CARGO) build --release $(addprefix -p ,$(TOOLS))

# The official node build of every release line npstack's V8 frame tests
# run against (20, 22, 24, 25, 26), pinned by sha512, into target/node/MAJOR.
nodes:
	tests/fetch-node.sh $(CARGO_TARGET_DIR)/node

# Real npm packages (pinned by their lockfile's integrity) that the
# debugger comparison runs hot, into target/npm.
packages:
	tests/fetch-packages.sh $(CARGO_TARGET_DIR)/npm

# The debugger comparison runs on its own, so that its figures per node
# release line show (--nocapture); the frames that differ are written to
# target/debugger-comparison/.
test: build nodes packages dist
	$(CARGO) test --release --workspace -- --test-threads=2 --skip debugger_node_
	$(CARGO) test --release -p nptools-tests --test npstack_debugger -- --test-threads=2 --nocapture debugger_node_

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

man:
	$(CARGO) run --release -q -p xtask -- man

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	    $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	    $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	for t in $(TOOLS); do \
	    install -m 755 $(BIN)/$$t $(DESTDIR)$(PREFIX)/bin/$$t && \
	    install -m 644 man/$$t.1 $(DESTDIR)$(PREFIX)/share/man/man1/$$t.1 && \
	    install -m 644 completions/$$t.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$t && \
	    install -m 644 completions/_$$t $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_$$t && \
	    install -m 644 completions/$$t.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/$$t.fish \
	    || exit 1; \
	done

demo: build
	demo/demo.sh

bench: build
	bench/run.py

# Static x86_64 binaries of the tools (static-pie, with glibc's libc.a), in
# a target dir of their own so the normal build stays as it is, and a
# tarball with them, the man pages and the completions:
# target/dist/nptools-VERSION-x86_64-linux.tar.gz. A static binary must not
# call glibc's NSS (getpwuid, getgrgid, getaddrinfo, ...), which would load
# the host's shared libraries at run time: a linker warning saying so, or an
# NSS entry point in a binary, fails the build.
DIST_DIR  := $(CARGO_TARGET_DIR)/dist
DIST_BIN  := $(DIST_DIR)/x86_64-unknown-linux-gnu/release
DIST_NAME := nptools-$(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)-x86_64-linux
dist:
	mkdir -p $(DIST_DIR)
	RUSTFLAGS='-C target-feature=+crt-static -W linker-messages' $(CARGO) build --release \
	    --target x86_64-unknown-linux-gnu --target-dir $(DIST_DIR) $(addprefix -p ,$(TOOLS)) \
	    >$(DIST_DIR)/build.log 2>&1; rc=$$?; cat $(DIST_DIR)/build.log; exit $$rc
	if grep -n 'statically linked applications requires' $(DIST_DIR)/build.log; then \
	    echo 'make dist: a static binary calls glibc NSS (see above)' >&2; \
	    rm -f $(addprefix $(DIST_BIN)/,$(TOOLS)); exit 1; fi
	for t in $(TOOLS); do \
	    file $(DIST_BIN)/$$t | grep -q 'static-pie linked\|statically linked' \
	        || { echo "make dist: $$t is not static" >&2; exit 1; }; \
	    if nm $(DIST_BIN)/$$t | grep -E ' [TtWw] (getpw|getgrgid|getgrnam|getgrent|getgrouplist|initgroups|getspnam|getaddrinfo|gethostby|getservby|getnetby|getprotoby|__nss_)'; then \
	        echo "make dist: $$t calls glibc NSS" >&2; exit 1; fi; \
	done
	rm -rf $(DIST_DIR)/$(DIST_NAME)
	mkdir -p $(DIST_DIR)/$(DIST_NAME)/bin $(DIST_DIR)/$(DIST_NAME)/man $(DIST_DIR)/$(DIST_NAME)/completions
	for t in $(TOOLS); do install -m 755 $(DIST_BIN)/$$t $(DIST_DIR)/$(DIST_NAME)/bin/$$t || exit 1; done
	cp man/*.1 $(DIST_DIR)/$(DIST_NAME)/man/
	cp completions/* $(DIST_DIR)/$(DIST_NAME)/completions/
	cp README.md $(DIST_DIR)/$(DIST_NAME)/
	tar -C $(DIST_DIR) -czf $(DIST_DIR)/$(DIST_NAME).tar.gz $(DIST_NAME)
	@echo "$(DIST_DIR)/$(DIST_NAME).tar.gz"

# cargo-fuzz needs nightly's sanitizer flags: use a nightly toolchain when
# rustup has one, else let stable accept them (RUSTC_BOOTSTRAP).
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	fuzz/seed.sh fuzz/corpus/core_reader
	cd fuzz && if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then \
	    $(CARGO) +nightly fuzz run core_reader corpus/core_reader -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096; \
	else \
	    RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run core_reader corpus/core_reader -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096; \
	fi

clean:
	$(CARGO) clean
