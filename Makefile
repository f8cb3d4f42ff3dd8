# mod_wsgi-rs build, install, run and test.
#   make              build target/release/libmod_wsgi_rs.so
#   make install      copy it into Apache's module directory (+ Debian conf)
#   make run          serve examples/hello.wsgi on http://127.0.0.1:8000/
#   make test         unit tests and integration tests against real Apache
#   make bench        compare with mod_wsgi 6.1.1 and 4.9.4 (see bench/README.md)

# The Python to embed. Apache's children run as www-data, so it must be a
# Python they can read: the system one by default.
PYTHON ?= /usr/bin/python3
APXS ?= apxs
PORT ?= 8000
export PATH := $(HOME)/.cargo/bin:$(PATH)

MODULE := target/release/libmod_wsgi_rs.so
LIBEXECDIR = $(shell $(APXS) -q LIBEXECDIR)
SYSCONFDIR = $(shell $(APXS) -q SYSCONFDIR)

.PHONY: all build install run test unit-test integration-test bench clean

all: build

build:
	PYO3_PYTHON=$(PYTHON) APXS=$(APXS) cargo build --release

$(MODULE): build

install: build
	install -d $(DESTDIR)$(LIBEXECDIR)
	install -m 644 $(MODULE) $(DESTDIR)$(LIBEXECDIR)/mod_wsgi_rs.so
	if [ -d $(DESTDIR)$(SYSCONFDIR)/mods-available ]; then \
		install -m 644 conf/wsgi_rs.load conf/wsgi_rs.conf $(DESTDIR)$(SYSCONFDIR)/mods-available/; \
	fi

run: build
	PYTHON=$(PYTHON) PORT=$(PORT) ./scripts/run-example.sh examples/hello.wsgi

unit-test:
	PYO3_PYTHON=$(PYTHON) cargo test --release -p wsgi_core

integration-test: build
	MOD_WSGI_RS_SO=$(CURDIR)/$(MODULE) $(PYTHON) -m pytest tests/integration -q

test: unit-test integration-test

bench: build
	MOD_WSGI_RS_SO=$(CURDIR)/$(MODULE) ./bench/run.sh

clean:
	cargo clean
