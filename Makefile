# mod_wsgi-rs build, install, run and test.
#   make              build the module and mod_wsgi-express (target/release/)
#   make install      install what `make` built: the module into Apache's
#                     module directory (+ Debian conf), mod_wsgi-express
#                     into $(BINDIR); it does not build (as root, run `make`
#                     as your own user first)
#   make uninstall    remove what `make install` put in place
#   make check        clippy, with warnings as errors
#   make run          serve examples/hello.wsgi on http://localhost:8000/
#                     with mod_wsgi-express start-server
#   make test         unit tests and integration tests against real Apache
#   make quick-test   the integration tests not marked slow
#   make bench        compare with mod_wsgi 6.1.1 and 4.9.4 (see bench/README.md)

# The Python to embed. Apache's children run as www-data, so it must be a
# Python they can read: the system one by default.
PYTHON ?= /usr/bin/python3
APXS ?= apxs
PORT ?= 8000
BINDIR ?= /usr/local/bin
export PATH := $(HOME)/.cargo/bin:$(PATH)

MODULE := target/release/libmod_wsgi_rs.so
EXPRESS := target/release/mod_wsgi-express
LIBEXECDIR = $(shell $(APXS) -q LIBEXECDIR)
SYSCONFDIR = $(shell $(APXS) -q SYSCONFDIR)
# As root, Apache's children and the daemons need an unprivileged account.
RUN_AS = $(if $(filter 0,$(shell id -u)),--user www-data --group www-data)

.PHONY: all build install uninstall check run test unit-test integration-test quick-test bench clean

all: build

build:
	PYO3_PYTHON=$(PYTHON) APXS=$(APXS) cargo build --release -p mod_wsgi_rs -p mod_wsgi_express

$(MODULE) $(EXPRESS): build

install:
	@for f in $(MODULE) $(EXPRESS); do \
		[ -f $$f ] || { echo "$$f is missing: run make first" >&2; exit 1; }; \
	done
	install -d $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(BINDIR)
	install -m 644 $(MODULE) $(DESTDIR)$(LIBEXECDIR)/mod_wsgi_rs.so
	install -m 755 $(EXPRESS) $(DESTDIR)$(BINDIR)/mod_wsgi-express
	@# Debian's layout: a2enmod wsgi_rs loads it. Elsewhere, add the
	@# LoadModule line printed by `mod_wsgi-express module-config`.
	if [ -d $(SYSCONFDIR)/mods-available ]; then \
		install -d $(DESTDIR)$(SYSCONFDIR)/mods-available; \
		sed 's|@LIBEXECDIR@|$(LIBEXECDIR)|' conf/wsgi_rs.load.in > $(DESTDIR)$(SYSCONFDIR)/mods-available/wsgi_rs.load; \
		chmod 644 $(DESTDIR)$(SYSCONFDIR)/mods-available/wsgi_rs.load; \
		install -m 644 conf/wsgi_rs.conf $(DESTDIR)$(SYSCONFDIR)/mods-available/; \
	else \
		echo "no mods-available directory: load the module with the line 'mod_wsgi-express module-config' prints"; \
	fi

uninstall:
	rm -f $(DESTDIR)$(LIBEXECDIR)/mod_wsgi_rs.so $(DESTDIR)$(BINDIR)/mod_wsgi-express
	rm -f $(DESTDIR)$(SYSCONFDIR)/mods-available/wsgi_rs.load $(DESTDIR)$(SYSCONFDIR)/mods-available/wsgi_rs.conf

check:
	PYO3_PYTHON=$(PYTHON) APXS=$(APXS) cargo clippy --release --workspace --all-targets -- -D warnings

run: build
	$(EXPRESS) start-server examples/hello.wsgi --port $(PORT) $(RUN_AS)

unit-test:
	PYO3_PYTHON=$(PYTHON) APXS=$(APXS) cargo test --release -p wsgi_core -p mod_wsgi_express

# pytest runs under TEST_PYTHON (install-deps.sh gives it pytest); the
# suite learns the embedded Python from MWRS_PYTHON. MWRS_REQUIRE_ALL=1 fails
# the run when a security test marked must_run was skipped (tests/README.md).
TEST_PYTHON ?= /usr/bin/python3
MWRS_REQUIRE_ALL ?= 1
INTEGRATION = MOD_WSGI_RS_SO=$(CURDIR)/$(MODULE) MWRS_PYTHON=$(PYTHON) \
	MWRS_REQUIRE_ALL=$(MWRS_REQUIRE_ALL) $(TEST_PYTHON) -m pytest tests/integration -q

integration-test: build
	$(INTEGRATION)

# The integration tests without those marked slow.
quick-test: build
	$(INTEGRATION) -m "not slow"

test: unit-test integration-test

bench: build
	MOD_WSGI_RS_SO=$(CURDIR)/$(MODULE) ./bench/run.sh

clean:
	cargo clean
