# nptools: build, test, demo, man, install, bench, fuzz.
#
# One target directory and one profile (release) serve the build, the tests
# and the demo, so the workspace is compiled once.

CARGO        ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target
BIN          := $(CARGO_TARGET_DIR)/release
TOOLS        := npargs npenv npmap npfiles npstack
PREFIX       ?= /usr/local
DESTDIR      ?=
FUZZ_SECONDS ?= 60

export NPTOOLS_BIN_DIR := $(BIN)

.PHONY: all build nodes packages test lint man install demo bench fuzz clean

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
test: build nodes packages
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
