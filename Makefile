# slicebox — build, install, demo and test.
#   make demo      build, install into PREFIX, run a real two-version pipeline
#   make test      every test (.ci/run calls exactly this)
#   make install / make uninstall / make bench (startup) / make bench-store
#   make osh       build OSH and YSH (Oils) from vendor/ and install them into PREFIX/bin

CARGO     ?= cargo
ROOT      := $(filter 0,$(shell id -u))
PREFIX    ?= $(if $(ROOT),/usr/local,$(HOME)/.local)
BINDIR    := $(PREFIX)/bin
LOADABLES := $(PREFIX)/lib/bash
INCDIR    := $(PREFIX)/include
DOCDIR    := $(PREFIX)/share/doc/slicebox
SHAREDIR  := $(PREFIX)/share/slicebox
MANDIR    := $(PREFIX)/share/man/man1
BASHCOMPDIR := $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  := $(PREFIX)/share/zsh/site-functions
# Generated from src/cli/spec.rs (`slicebox --generate …`); tests/generated.rs
# fails when these committed copies drift.
MANPAGES  := $(wildcard share/man/man1/*.1)
BUILTINS  := sandbox slice-add slice-list slice-show slice-rm slice-tag slice-gc slice-verify slice-diff store-stats slice-export slice-env layer-add layer-list layer-show layer-rm layer-mount layer-umount slice-push slice-pull
DOCS      := README.md docs/builtins.md docs/c-api.md docs/design.md docs/formats.md docs/performance.md docs/reliability.md
# The unprivileged user the rootless tests run as when `make test` runs as root.
SLICEBOX_TEST_USER ?= sbx
export SLICEBOX_TOOLCHAIN_CACHE ?= $(if $(ROOT),/var/cache/slicebox-toolchains,$(HOME)/.cache/slicebox-toolchains)

# The executable ships statically linked (static-pie): no dynamic loader,
# libc or libgcc_s to map at each exec, which is about 0.3 ms of every
# stage it starts (docs/performance.md). The bash builtin's library stays a
# shared object. Both land in DIST, which install, the tests and the
# benchmarks use.
HOST      := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
DIST      := target/dist

.PHONY: all build rust-version osh install uninstall demo test check-header lint unit-tests shell-tests install-check fuzz-smoke bench bench-compare bench-store clean

all: build

# Debian's own cargo (1.65 in bookworm) is older than the code needs: say
# so, and how to get a newer one, before cargo fails on syntax.
RUST_MIN  := $(shell sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
rust-version:
	@have=$$($(CARGO) --version 2>/dev/null | sed -n 's/^cargo \([0-9.]*\).*/\1/p'); \
	if [ -z "$$have" ]; then \
		echo "make: no cargo found: install Rust $(RUST_MIN) or newer with rustup (https://rustup.rs): curl --proto '=https' -sSf https://sh.rustup.rs | sh" >&2; exit 1; \
	elif [ "$$(printf '%s\n%s\n' "$(RUST_MIN)" "$$have" | sort -V | head -n 1)" != "$(RUST_MIN)" ]; then \
		echo "make: cargo $$have is older than Rust $(RUST_MIN), which slicebox needs: install a newer one with rustup (https://rustup.rs), then: . ~/.cargo/env" >&2; exit 1; \
	fi

build: rust-version
	$(CARGO) build --release --locked
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --locked --bin slicebox --target $(HOST)
	mkdir -p $(DIST)
	cp target/$(HOST)/release/slicebox target/release/libslicebox.so $(DIST)/

install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LOADABLES) $(DESTDIR)$(INCDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SHAREDIR)
	install -m 0755 $(DIST)/slicebox $(DESTDIR)$(BINDIR)/slicebox
	for b in $(BUILTINS); do ln -sf slicebox $(DESTDIR)$(BINDIR)/$$b; done
	install -m 0644 $(DIST)/libslicebox.so $(DESTDIR)$(LOADABLES)/libslicebox.so
	install -m 0644 include/slicebox.h $(DESTDIR)$(INCDIR)/slicebox.h
	install -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	install -m 0644 share/slicebox.ysh $(DESTDIR)$(SHAREDIR)/slicebox.ysh
	install -d $(DESTDIR)$(MANDIR) $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 0644 $(MANPAGES) $(DESTDIR)$(MANDIR)/
	install -m 0644 share/bash-completion/completions/slicebox $(DESTDIR)$(BASHCOMPDIR)/slicebox
	for b in $(BUILTINS); do ln -sf slicebox $(DESTDIR)$(BASHCOMPDIR)/$$b; done
	install -m 0644 share/zsh/site-functions/_slicebox $(DESTDIR)$(ZSHCOMPDIR)/_slicebox
	@echo "installed into $(PREFIX); in bash: BASH_LOADABLES_PATH=$(LOADABLES) enable -f libslicebox.so $(BUILTINS)"
	@echo "in YSH: use $(SHAREDIR)/slicebox.ysh"

# OSH and YSH for the shells without enable -f: the C++ build of Oils from
# the tarball in vendor/ (about 30 s on 2 cores), cached, then installed.
osh:
	@dir=$$(bash shell-tests/build-osh.sh) && \
	install -d $(DESTDIR)$(BINDIR) && \
	install -m 0755 "$$dir/bin/oils-for-unix" $(DESTDIR)$(BINDIR)/oils-for-unix && \
	ln -sf oils-for-unix $(DESTDIR)$(BINDIR)/osh && ln -sf oils-for-unix $(DESTDIR)$(BINDIR)/ysh && \
	echo "installed osh and ysh into $(BINDIR)"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/slicebox $(addprefix $(DESTDIR)$(BINDIR)/,$(BUILTINS))
	rm -f $(DESTDIR)$(LOADABLES)/libslicebox.so $(DESTDIR)$(INCDIR)/slicebox.h
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOCS))) $(DESTDIR)$(SHAREDIR)/slicebox.ysh
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/,$(notdir $(MANPAGES)))
	rm -f $(DESTDIR)$(BASHCOMPDIR)/slicebox $(addprefix $(DESTDIR)$(BASHCOMPDIR)/,$(BUILTINS))
	rm -f $(DESTDIR)$(ZSHCOMPDIR)/_slicebox
	-rmdir $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SHAREDIR) $(DESTDIR)$(LOADABLES) 2>/dev/null

demo: install
	PREFIX=$(PREFIX) bash shell-tests/demo.sh

# The committed header must be what build.rs generates from the code:
# build.rs rewrites it only when it differs, so any change is staleness.
check-header:
	@before=$$(cat include/slicebox.h | sha256sum); \
	$(CARGO) build --release --locked && \
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git diff --exit-code -- include/ ; \
	else \
		[ "$$before" = "$$(cat include/slicebox.h | sha256sum)" ]; \
	fi || { echo "include/slicebox.h is stale: commit the regenerated header" >&2; exit 1; }

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

unit-tests:
	$(CARGO) test --release --locked

shell-tests: build
	bash shell-tests/run-all.sh $(DIST)

install-check: build
	bash shell-tests/install-check.sh

# Each cargo-fuzz target for 60 s (docs/reliability.md, "Fuzzing").
fuzz-smoke:
	bash fuzz/run.sh 60

test: check-header lint unit-tests shell-tests install-check fuzz-smoke

bench: build
	bash bench/startup.sh $(DIST)

# A/B of this build against another one: make bench-compare OLD=/path/to/old/target/dist
bench-compare: build
	bash bench/compare.sh $(DIST) $(OLD)

# Needs a big real tree (default: a pyenv CPython) and ostree; ~20 minutes.
bench-store: build
	bash bench/store.sh

clean:
	$(CARGO) clean
