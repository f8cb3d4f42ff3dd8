#!/bin/bash
# Benchmark mod_wsgi-rs against Debian's mod_wsgi (see bench/README.md).
#
#   bench/run.sh                      # full run (~3 x 2 x 3 x 13 s: ~4 min)
#   BENCH_QUICK=1 bench/run.sh        # quick run (1 round, 3 s per measurement)
#   BENCH_SCENARIOS=daemon bench/run.sh   # daemon scenarios + embedded hello
#   BENCH_SCENARIOS=all bench/run.sh      # everything (~3 x 14 x 14 s: ~10 min)
#
# Environment:
#   MOD_WSGI_RS_SO     our module  (default: <repo>/target/release/libmod_wsgi_rs.so)
#   MOD_WSGI_SO        reference   (default: /usr/lib/apache2/modules/mod_wsgi.so)
#   BENCH_QUICK=1      3 s runs, 1 s warm-up, 1 round
#   BENCH_DURATION     seconds per measurement   (default 10, quick 3)
#   BENCH_WARMUP       warm-up seconds           (default 2, quick 1)
#   BENCH_ROUNDS       interleaved rounds        (default 3, quick 1)
#   BENCH_THREADS      wrk -t                    (default 2)
#   BENCH_CONNECTIONS  wrk -c                    (default 32)
#   BENCH_SCENARIOS    comma list, "daemon" or "all" (default: hello,stream_1m)
#   BENCH_STATIC=0     skip the static-file ceiling reference
#   BENCH_OUT          where logs/results go     (default /tmp/mod_wsgi_rs_bench-results-<timestamp>)
#   BENCH_KEEP=1       keep the temporary ServerRoots
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

MOD_WSGI_RS_SO="$(abspath "${MOD_WSGI_RS_SO:-target/release/libmod_wsgi_rs.so}")"
MOD_WSGI_SO="$(abspath "${MOD_WSGI_SO:-/usr/lib/apache2/modules/mod_wsgi.so}")"

# ---- prerequisites -------------------------------------------------------
[ "$(id -u)" = 0 ] || die "must run as root (Apache starts as root, children run as www-data)"
[ -x "$APACHE" ] || die "$APACHE not found (apt-get install apache2)"
[ -x "$PY" ] || die "$PY not found"
[ -f /usr/lib/apache2/modules/mod_mpm_event.so ] || die "mod_mpm_event.so missing"
id www-data >/dev/null 2>&1 || die "user www-data missing"
[ -f "$MOD_WSGI_RS_SO" ] || die "our module not found: $MOD_WSGI_RS_SO (build it: cargo build --release, or set MOD_WSGI_RS_SO)"
[ -f "$MOD_WSGI_SO" ] || die "mod_wsgi not found: $MOD_WSGI_SO (apt-get install libapache2-mod-wsgi-py3, or set MOD_WSGI_SO)"
for so in "$MOD_WSGI_RS_SO" "$MOD_WSGI_SO"; do
    if command -v nm >/dev/null 2>&1 && ! nm -D --defined-only "$so" 2>/dev/null | grep -qw wsgi_module; then
        die "$so does not export the symbol wsgi_module"
    fi
done
if ! command -v wrk >/dev/null 2>&1; then
    echo "bench: wrk not found, installing it with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null ||
        die "wrk is missing and apt-get install wrk failed"
    command -v wrk >/dev/null 2>&1 || die "wrk still missing"
fi

# ---- work dir + cleanup (never leave an Apache behind) -------------------
BENCH_WORK="$(mktemp -d /tmp/mod_wsgi_rs_bench.XXXXXX)"
chmod 755 "$BENCH_WORK"
export BENCH_WORK MOD_WSGI_RS_SO MOD_WSGI_SO
export BENCH_OUT="${BENCH_OUT:-/tmp/mod_wsgi_rs_bench-results-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$BENCH_OUT"
PY_PID=""

our_apache_pids() {
    # Apache processes started from a config inside our work dir (and only
    # those).  WSGI daemon processes rename themselves ("(wsgi:bench)"), so
    # they are found by the environment bench.py gives every server it starts
    # (MOD_WSGI_RS_BENCH_ROOT=<server root inside our work dir>).
    local d cmd
    for d in /proc/[0-9]*; do
        cmd="$( { tr '\0' ' ' < "$d/cmdline"; } 2>/dev/null)" || continue
        case "$cmd" in
            *apache2*"$BENCH_WORK"/*) echo "${d#/proc/}"; continue ;;
        esac
        if grep -qszF "MOD_WSGI_RS_BENCH_ROOT=$BENCH_WORK/" "$d/environ"; then
            echo "${d#/proc/}"
        fi
    done
}

cleanup() {
    local rc=$? pids i
    trap - EXIT INT TERM HUP
    if [ -n "$PY_PID" ] && kill -0 "$PY_PID" 2>/dev/null; then
        # its children first (wrk, apache2 -k ...), then the driver itself
        pids="$(pgrep -P "$PY_PID" || true)"
        [ -n "$pids" ] && kill -TERM $pids 2>/dev/null || true
        kill -TERM "$PY_PID" 2>/dev/null || true
        wait "$PY_PID" 2>/dev/null || true
    fi
    for conf in "$BENCH_WORK"/srv-*/httpd.conf; do
        [ -f "$conf" ] || continue
        if [ -f "$(dirname "$conf")/run/httpd.pid" ]; then
            env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$APACHE" -f "$conf" -k stop >/dev/null 2>&1 || true
        fi
    done
    for i in $(seq 50); do
        pids="$(our_apache_pids)"
        [ -z "$pids" ] && break
        [ "$i" = 30 ] && kill -TERM $pids 2>/dev/null || true
        sleep 0.2
    done
    pids="$(our_apache_pids)"
    if [ -n "$pids" ]; then
        echo "bench: killing leftover apache2 processes: $pids" >&2
        kill -KILL $pids 2>/dev/null || true
    fi
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
# the file Apache has mapped.
mkdir -p "$BENCH_WORK/modules"
cp "$MOD_WSGI_RS_SO" "$BENCH_WORK/modules/ours.so"
cp "$MOD_WSGI_SO" "$BENCH_WORK/modules/mod_wsgi.so"
chmod 755 "$BENCH_WORK/modules"; chmod 644 "$BENCH_WORK/modules/"*.so
echo "bench: ours     = $MOD_WSGI_RS_SO (sha256 $(sha256sum < "$MOD_WSGI_RS_SO" | cut -c1-16), $(date -r "$MOD_WSGI_RS_SO" '+%F %T'))"
echo "bench: mod_wsgi = $MOD_WSGI_SO (sha256 $(sha256sum < "$MOD_WSGI_SO" | cut -c1-16))"
export MOD_WSGI_RS_SO="$BENCH_WORK/modules/ours.so" MOD_WSGI_SO="$BENCH_WORK/modules/mod_wsgi.so"

"$PY" "$BENCH_DIR/bench.py" &
PY_PID=$!
wait "$PY_PID"
