#!/bin/bash
# Benchmark mod_wsgi-rs against mod_wsgi 6.1.1 (built from the package index)
# and Debian's mod_wsgi 4.9.4 in one run (see bench/README.md).
#
#   bench/run.sh                          # full run (about 45 minutes)
#   BENCH_QUICK=1 bench/run.sh            # quick run (about 5 minutes, not for publication)
#   BENCH_SCENARIOS=daemon bench/run.sh   # daemon scenarios and their embedded twins
#
# Environment (bench/README.md has the full list):
#   MOD_WSGI_RS_SO     our module (default: <repo>/target/release/libmod_wsgi_rs.so)
#   MOD_WSGI6_SO       mod_wsgi 6 module; default: mod_wsgi 6.1.1 built with pip in
#                      the venv the integration tests use (under MWRS_VENV_CACHE,
#                      default /var/cache/mod_wsgi-rs), built on first use
#   MOD_WSGI4_SO       Debian's module (default /usr/lib/apache2/modules/mod_wsgi.so)
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$BENCH_DIR/.." && pwd)"
PY=/usr/bin/python3
APACHE=/usr/sbin/apache2

die() { echo "bench: error: $*" >&2; exit 2; }

abspath() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *)  printf '%s\n' "$REPO_ROOT/$1" ;;
    esac
}

# apt-get install without letting the package start Debian's Apache service.
apt_install() {
    local policy=/usr/sbin/policy-rc.d created=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && created=1
    fi
    echo "bench: installing $* with apt-get" >&2
    local rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
    [ -n "$created" ] && rm -f "$policy"
    return $rc
}

MOD_WSGI_RS_SO="$(abspath "${MOD_WSGI_RS_SO:-target/release/libmod_wsgi_rs.so}")"
MOD_WSGI4_SO="$(abspath "${MOD_WSGI4_SO:-/usr/lib/apache2/modules/mod_wsgi.so}")"

# ---- prerequisites -------------------------------------------------------
[ "$(id -u)" = 0 ] || die "must run as root (Apache starts as root, children run as www-data)"
[ -x "$APACHE" ] || die "$APACHE not found (apt-get install apache2)"
[ -x "$PY" ] || die "$PY not found"
[ -f /usr/lib/apache2/modules/mod_mpm_event.so ] || die "mod_mpm_event.so missing"
id www-data >/dev/null 2>&1 || die "user www-data missing"
[ -f "$MOD_WSGI_RS_SO" ] || die "our module not found: $MOD_WSGI_RS_SO (build it: make build, or set MOD_WSGI_RS_SO)"
command -v wrk >/dev/null 2>&1 || apt_install wrk || die "wrk is missing and apt-get install wrk failed"
if [ ! -f "$MOD_WSGI4_SO" ] && [ "$MOD_WSGI4_SO" = /usr/lib/apache2/modules/mod_wsgi.so ]; then
    apt_install libapache2-mod-wsgi-py3 || die "apt-get install libapache2-mod-wsgi-py3 failed"
fi
[ -f "$MOD_WSGI4_SO" ] || die "mod_wsgi 4 not found: $MOD_WSGI4_SO"
MOD_WSGI4_VERSION="$(dpkg-query -W -f '${Version}' libapache2-mod-wsgi-py3 2>/dev/null | cut -d- -f1 || true)"

# mod_wsgi 6.1.1 from the package index, compiled against apache2-dev and
# /usr/bin/python3 (shared libpython) in a venv kept between runs: the one
# tests/integration/express_util.py makes for the tests, so it is built once.
if [ -z "${MOD_WSGI6_SO:-}" ]; then
    command -v apxs >/dev/null 2>&1 || apt_install apache2-dev || die "apxs missing (apt-get install apache2-dev)"
    "$PY" -c 'import ensurepip, sysconfig, os, sys
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null ||
        apt_install python3-venv python3-dev || die "apt-get install python3-venv python3-dev failed"
    venv="$("$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import express_util
print(express_util.ensure_venv())' "$REPO_ROOT/tests/integration")" ||
        die "building mod_wsgi 6 with pip failed (see above)"
    # "LoadModule wsgi_module "<path>"": the .so the build installed.  Its
    # WSGIPythonHome line is not used: every module runs /usr/bin/python3's
    # standard library, none of them a venv.
    MOD_WSGI6_SO="$("$venv/bin/mod_wsgi-express" module-config |
        sed -n 's/^LoadModule wsgi_module "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p')"
    MOD_WSGI6_VERSION="$("$venv/bin/pip" show mod_wsgi 2>/dev/null | sed -n 's/^Version: //p')"
fi
MOD_WSGI6_SO="$(abspath "$MOD_WSGI6_SO")"
[ -f "$MOD_WSGI6_SO" ] || die "mod_wsgi 6 not found: $MOD_WSGI6_SO"

for so in "$MOD_WSGI_RS_SO" "$MOD_WSGI6_SO" "$MOD_WSGI4_SO"; do
    if command -v nm >/dev/null 2>&1 && ! nm -D --defined-only "$so" 2>/dev/null | grep -w wsgi_module >/dev/null; then
        die "$so does not export the symbol wsgi_module"
    fi
done

# ---- work dir + cleanup (never leave an Apache behind) -------------------
BENCH_WORK="$(mktemp -d /tmp/mod_wsgi_rs_bench.XXXXXX)"
chmod 755 "$BENCH_WORK"
export BENCH_OUT="${BENCH_OUT:-/tmp/mod_wsgi_rs_bench-results-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$BENCH_OUT"
PY_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ -n "$PY_PID" ] && kill -0 "$PY_PID" 2>/dev/null; then
        # bench.py stops its running server on SIGTERM
        kill -TERM "$PY_PID" 2>/dev/null || true
        wait "$PY_PID" 2>/dev/null || true
    fi
    # servers bench.py could not stop itself (it was killed)
    "$PY" "$BENCH_DIR/bench.py" --cleanup "$BENCH_WORK" || true
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "bench: kept work dir $BENCH_WORK" >&2
    else
        rm -rf "$BENCH_WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Snapshot the modules: a rebuild during the run must not change (or truncate)
# the file Apache has mapped.  www-data must be able to read them.
mkdir -p "$BENCH_WORK/modules"
describe() { echo "$1 (sha256 $(sha256sum < "$1" | cut -c1-16), $(date -r "$1" '+%F %T'))"; }
echo "bench: ours         = $(describe "$MOD_WSGI_RS_SO")"
echo "bench: mod_wsgi ${MOD_WSGI6_VERSION:-6} = $(describe "$MOD_WSGI6_SO")"
echo "bench: mod_wsgi $MOD_WSGI4_VERSION = $(describe "$MOD_WSGI4_SO")"
cp "$MOD_WSGI_RS_SO" "$BENCH_WORK/modules/ours.so"
cp "$MOD_WSGI6_SO" "$BENCH_WORK/modules/mod_wsgi6.so"
cp "$MOD_WSGI4_SO" "$BENCH_WORK/modules/mod_wsgi4.so"
chmod 755 "$BENCH_WORK/modules"; chmod 644 "$BENCH_WORK/modules/"*.so

BENCH_COMMIT="$(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
export BENCH_WORK BENCH_COMMIT MOD_WSGI6_VERSION MOD_WSGI4_VERSION
# BENCH_KEEP=1: the harness keeps the servers' roots too
[ "${BENCH_KEEP:-0}" = 1 ] && export MWRS_KEEP=1
export MOD_WSGI_RS_SO="$BENCH_WORK/modules/ours.so"
export MOD_WSGI6_SO="$BENCH_WORK/modules/mod_wsgi6.so"
export MOD_WSGI4_SO="$BENCH_WORK/modules/mod_wsgi4.so"

"$PY" "$BENCH_DIR/bench.py" &
PY_PID=$!
wait "$PY_PID"
