#!/usr/bin/python3
"""Benchmark mod_wsgi-rs against mod_wsgi 6.1.1 (built from the package
index) and Debian's mod_wsgi 4.9.4 under Apache httpd 2.4, in one run.

Normally started through bench/run.sh, which checks prerequisites, builds
(or reuses) the mod_wsgi 6.1.1 venv, snapshots the modules and creates the
work directory.  Run with /usr/bin/python3 (standard library only).

Every measurement starts its own Apache (event MPM, the same sizing for
every server) through the integration suite's harness
(tests/integration/harness.py), so tests and benchmark share one Apache
config writer and one process owner.  It checks that the response is
correct, warms up, runs wrk while reading the server's CPU time from /proc,
runs wrk again at 64 connections for latency, stops Apache and scans its
error log.  After the rounds, each daemon scenario runs once more for
N requests on a fresh server to read the resident memory of its daemons.

Scenarios are data (see SCENARIOS below): adding one is adding a dict.
`bench.py --cleanup WORKDIR` stops whatever servers a killed run left
behind (run.sh calls it on exit).
"""

import datetime
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
APPS_SRC = os.path.join(HERE, 'apps')
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))
import harness  # noqa: E402  (the integration suite's Apache owner)

MIB = 1024 * 1024
CLK_TCK = os.sysconf('SC_CLK_TCK')
PF_KTHREAD = 0x00200000          # /proc/PID/stat flags: a kernel thread

# --------------------------------------------------------------------------
# Data: servers, WSGI modes, static references, scenarios
# --------------------------------------------------------------------------

# The WSGI modules measured, in their base order (rotated every round).
# `so` names the environment variable run.sh sets to the module snapshot;
# a mod_wsgi is shown as "mod_wsgi <version>" when run.sh passes `version`.
SERVERS = {
    'ours': dict(so='MOD_WSGI_RS_SO', name='mod_wsgi-rs'),
    'mw6': dict(so='MOD_WSGI6_SO', name='mod_wsgi 6', version='MOD_WSGI6_VERSION'),
    'mw4': dict(so='MOD_WSGI4_SO', name='mod_wsgi 4', version='MOD_WSGI4_VERSION'),
}
MODULES = ['ours', 'mw6', 'mw4']
REFERENCE = 'mw6'            # denominator of the targets (issue 10)
RSS_SERVERS = ['ours', 'mw6']

# Fixed MPM sizing for 2 cores, identical for every server: exactly 2 child
# processes x 25 threads for the whole run (no spawning/reaping mid-run:
# ServerLimit caps the processes, MaxSpareThreads >= all threads).
MPM_CONF = """\
StartServers            2
ServerLimit             2
ThreadLimit             25
ThreadsPerChild         25
MaxRequestWorkers       50
MinSpareThreads         10
MaxSpareThreads         50
MaxConnectionsPerChild  0
"""

# Keep-alive connections are never closed by request count.
GLOBAL_CONF = """\
MaxKeepAliveRequests 0
KeepAliveTimeout 5
"""

DAEMON_PROCESSES = 2

# How the app is mounted.  {app} is the app file (bench substitutes it);
# {root} is left for the harness (the instance's ServerRoot).
MODES = {
    'embedded': """\
WSGIScriptAlias / {app}
WSGIApplicationGroup %{GLOBAL}
""",
    # The same daemon group for every module.  WSGIRestrictEmbedded On:
    # Apache's MPM children never start Python, so the daemons' RSS is the
    # whole Python cost.  display-name makes them "(wsgi:bench)".
    'daemon': """\
WSGIRestrictEmbedded On
WSGISocketPrefix {root}/run/wsgi
WSGIDaemonProcess bench processes=%d threads=15 display-name=%%{GROUP}
WSGIProcessGroup bench
WSGIScriptAlias / {app}
WSGIApplicationGroup %%{GLOBAL}
""" % DAEMON_PROCESSES,
    # The app twice, in Apache's children, each in the application group
    # mod_wsgi gives it by default (%{RESOURCE}): two sub-interpreters.
    'groups': """\
WSGIScriptAlias /a {app}
WSGIScriptAlias /b {app}
""",
}

# A pattern, not one repeated byte, so that a shifted or repeated piece of
# the file is caught by the check.
BLOB_10M = bytes(range(256)) * (10 * MIB // 256)

# Static files served by an Apache with no WSGI module: the ceiling.
# name -> (file name, contents)
STATIC_REFS = {
    'hello': ('hello.txt', b'Hello, world!\n'),
    'blob_1m': ('blob_1m.bin', b'x' * MIB),
    'blob_10m': ('blob_10m.bin', BLOB_10M),
}


def _check_hello(r):
    problems = []
    if r.body != b'Hello, world!\n':
        problems.append('body %r != %r' % (r.body[:60], b'Hello, world!\n'))
    if r.header('Content-Length') != '14':
        problems.append('Content-Length %r != 14' % r.header('Content-Length'))
    return problems


def _check_stream(r):
    problems = []
    if len(r.body) != MIB or r.body.strip(b'x'):
        problems.append('body is %d bytes, expected %d x' % (len(r.body), MIB))
    if r.header('Content-Length') is not None:
        problems.append('unexpected Content-Length %r (the app sets none)'
                        % r.header('Content-Length'))
    if not r.chunked or not r.complete:
        problems.append('not a complete chunked body (Transfer-Encoding %r)'
                        % r.header('Transfer-Encoding'))
    return problems


def _check_upload(r):
    if r.body != str(10 * MIB).encode():
        return ['body %r, expected %d' % (r.body[:60], 10 * MIB)]
    return []


def _check_file(r):
    problems = []
    if r.header('Content-Length') != str(len(BLOB_10M)):
        problems.append('Content-Length %r != %d'
                        % (r.header('Content-Length'), len(BLOB_10M)))
    if r.body != BLOB_10M:
        problems.append('body of %d bytes differs from the file (%d bytes)'
                        % (len(r.body), len(BLOB_10M)))
    return problems


# One entry per scenario.  Keys:
#   name         short id (BENCH_SCENARIOS selects by it)
#   app          file in bench/apps/ mounted at /
#   mode         key of MODES (embedded | daemon)
#   wrk_script   optional Lua file in bench/apps/ (must not define done())
#   check        (method, request body, fn(harness.Response) -> [problems])
#   static_ref   key of STATIC_REFS measured as the ceiling, or None
#   path         the path checked and given to wrk (default /)
#   pair         the scenario it is compared with, for the ratio of their
#                requests/s: a daemon scenario's embedded twin, or the
#                %{GLOBAL} twin of one run in sub-interpreters
#   target       issue 10's minimum ours / mod_wsgi 6 requests/s, or None
#   min_over_pair  minimum ours / ours of the pair, or None
#   what         one-line description
# An embedded scenario comes right before its daemon twin, so the
# daemon/embedded ratios compare measurements taken close in time.
SCENARIOS = [
    dict(name='hello', app='hello.wsgi', mode='embedded',
         check=('GET', None, _check_hello), static_ref='hello', target=1.5,
         what="14-byte 'Hello, world!' with Content-Length"),
    dict(name='hello_daemon', app='hello.wsgi', mode='daemon',
         check=('GET', None, _check_hello), static_ref='hello', pair='hello',
         target=2.5, min_over_pair=0.8,
         what='the same in daemon mode (processes=2 threads=15)'),
    dict(name='stream_1m', app='stream_1m.wsgi', mode='embedded',
         check=('GET', None, _check_stream), static_ref='blob_1m',
         what='1 MiB as 16 x 64 KiB yields, no Content-Length (chunked)'),
    dict(name='stream_1m_daemon', app='stream_1m.wsgi', mode='daemon',
         check=('GET', None, _check_stream), static_ref='blob_1m',
         pair='stream_1m', target=2.5, what='the same in daemon mode'),
    dict(name='file_10m', app='file_10m.wsgi', mode='embedded',
         check=('GET', None, _check_file), static_ref='blob_10m',
         what='a 10 MiB file through wsgi.file_wrapper, with Content-Length'),
    dict(name='file_10m_daemon', app='file_10m.wsgi', mode='daemon',
         check=('GET', None, _check_file), static_ref='blob_10m',
         pair='file_10m', target=4.0, min_over_pair=0.9,
         what='the same in daemon mode'),
    dict(name='upload_10m', app='upload.wsgi', mode='embedded',
         wrk_script='upload_10m.lua', target=1.0,
         check=('POST', b'u' * (10 * MIB), _check_upload),
         what='POST 10 MiB read from wsgi.input in 64 KiB pieces'),
    dict(name='upload_10m_daemon', app='upload.wsgi', mode='daemon',
         wrk_script='upload_10m.lua', pair='upload_10m', target=1.5,
         check=('POST', b'u' * (10 * MIB), _check_upload),
         what='the same in daemon mode'),
    dict(name='hello_groups', app='hello.wsgi', mode='groups', path='/a',
         wrk_script='two_groups.lua', check=('GET', None, _check_hello),
         static_ref='hello', pair='hello', min_over_pair=0.95,
         what='hello at /a and /b, two sub-interpreters (the default '
              'application groups); wrk alternates them (issue 8: at most 5% '
              'below hello in %{GLOBAL})'),
]

# wrk reporting hook appended to every wrk script: one machine-readable line.
# A scenario script may check response bodies: it collects its threads in
# the global table bench_threads (from setup()) and counts wrong answers in
# each thread's global bench_bad (from response()); they are summed here and
# reported as err_body.
WRK_DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  local bad = 0
  if bench_threads then
    for _, t in ipairs(bench_threads) do
      bad = bad + (tonumber(t:get("bench_bad")) or 0)
    end
  end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"bytes":%d,"duration_us":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,' ..
    '"err_timeout":%d,"err_body":%d,"lat_p50_us":%d,"lat_p90_us":%d,' ..
    '"lat_p99_us":%d,"lat_max_us":%d}\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout, bad,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
"""

# Appended (with the count filled in) for the memory runs: the wrk thread
# stops after that many responses and says so on stdout.  It wraps a
# response() the scenario script may define.
WRK_LIMIT_LUA = r"""
do
  local inner = response
  local seen = 0
  response = function(status, headers, body)
    if inner then inner(status, headers, body) end
    seen = seen + 1
    if seen == %d then
      io.write("BENCH_STOPPED\n")
      io.stdout:flush()
      wrk.thread:stop()
    end
  end
end
"""

ERR_KEYS = ('err_connect', 'err_read', 'err_write', 'err_status',
            'err_timeout', 'err_body')

# Error-log lines worth reporting.
BAD_LOG_RE = re.compile(r'\[[a-z_]*:(error|crit|alert|emerg)\]|exit signal'
                        r'|segfault|Segmentation|core dumped|Traceback|panick',
                        re.I)
# When wrk stops, the requests in flight are cut off: mod_wsgi logs an
# OSError (with the app's exception) for a response it could not finish
# writing, and its daemon-mode Apache child a line for an upload it could not
# finish reading.  Every line of such a request (same thread, same client)
# is counted apart; at most one request per connection per wrk run is
# expected, more is a problem.
CUTOFF_RE = re.compile(r'failed to write response data|Unable to proxy '
                       r'response to client|Request data read error when '
                       r'proxying data to daemon')
REQUEST_RE = re.compile(r'\[pid (\d+:tid \d+)\] \[(?:client|remote) ([^\]]+)\]')
# The event MPM saying that all 50 workers are busy: expected at 64
# connections with responses that take long; noted, not a problem.
CAPACITY_RE = re.compile(r'AH00484|AH10159')


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------

def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v not in (None, '') else default


def env_float(name, default):
    v = os.environ.get(name)
    return float(v) if v not in (None, '') else default


def select_scenarios(sel):
    names = [s['name'] for s in SCENARIOS]
    if sel in ('', 'all'):
        return list(SCENARIOS)
    if sel == 'embedded':
        return [s for s in SCENARIOS if s['mode'] == 'embedded']
    if sel == 'daemon':
        # the daemon scenarios and the embedded twins they are compared with
        return [s for s in SCENARIOS if s['mode'] == 'daemon'
                or any(d.get('pair') == s['name'] for d in SCENARIOS)]
    wanted = [x.strip() for x in sel.split(',') if x.strip()]
    bad = [w for w in wanted if w not in names]
    if bad:
        sys.exit('bench: unknown scenario(s) %s; known: %s (or "all", '
                 '"embedded", "daemon")' % (', '.join(bad), ', '.join(names)))
    return [s for s in SCENARIOS if s['name'] in wanted]


class Settings:
    def __init__(self):
        self.quick = os.environ.get('BENCH_QUICK', '') not in ('', '0')
        self.duration = env_int('BENCH_DURATION', 3 if self.quick else 10)
        self.warmup = env_int('BENCH_WARMUP', 1 if self.quick else 2)
        self.rounds = env_int('BENCH_ROUNDS', 1 if self.quick else 3)
        self.threads = env_int('BENCH_THREADS', 2)
        self.connections = env_int('BENCH_CONNECTIONS', 32)
        self.lat_connections = env_int('BENCH_LATENCY_CONNECTIONS', 64)
        self.lat_duration = env_int('BENCH_LATENCY_DURATION', self.duration)
        self.rss_requests = env_int('BENCH_RSS_REQUESTS',
                                    1000 if self.quick else 10000)
        self.rss_max_seconds = env_int('BENCH_RSS_MAX_SECONDS', 900)
        self.max_foreign = env_float('BENCH_MAX_FOREIGN', 0.10)
        self.idle_wait = env_int('BENCH_IDLE_WAIT', 0 if self.quick else 30)
        self.static = os.environ.get('BENCH_STATIC', '1') not in ('', '0')
        self.work = os.environ['BENCH_WORK']          # set by run.sh
        self.out = os.environ.get('BENCH_OUT') or os.path.join(self.work, 'out')
        self.commit = os.environ.get('BENCH_COMMIT', 'unknown')
        self.so = {k: os.environ[v['so']] for k, v in SERVERS.items()}
        self.names = {k: 'mod_wsgi ' + os.environ[v['version']]
                      if os.environ.get(v.get('version', '')) else v['name']
                      for k, v in SERVERS.items()}
        self.names['static'] = 'static file'
        self.scenarios = select_scenarios(
            os.environ.get('BENCH_SCENARIOS', '').strip())
        self.apache_cpus, self.wrk_cpus = cpu_split(
            os.environ.get('BENCH_PIN', 'auto'))


def cpu_split(pin):
    """(CPUs for Apache, CPUs for wrk), or (None, None) for no pinning.

    "split" gives wrk a quarter of the CPUs (at least one) and Apache the
    rest.  "auto" splits only with 4 or more CPUs: on 2 cores Apache would
    get a single core, which serialises the child <-> daemon hand-off on one
    CPU and so measures a deployment nobody runs (see README.md)."""
    cpus = sorted(os.sched_getaffinity(0))
    if pin == 'auto':
        pin = 'split' if len(cpus) >= 4 else 'none'
    if pin == 'none':
        return None, None
    if pin != 'split' or len(cpus) < 2:
        sys.exit('bench: BENCH_PIN must be auto, none or split (split needs '
                 '2 or more CPUs)')
    n = max(1, len(cpus) // 4)
    return set(cpus[:-n]), set(cpus[-n:])


# --------------------------------------------------------------------------
# /proc: process trees, CPU time, memory
# --------------------------------------------------------------------------

def proc_table():
    """pid -> (ppid, is kernel thread, CPU ticks of the process and of its
    children it has reaped).  Counting reaped children keeps a sum over a
    tree constant when a member exits and is reaped inside the tree."""
    table = {}
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d) as f:
                # fields after "(comm)": state ppid ... flags(9) ...
                # utime(14) stime(15) cutime(16) cstime(17)
                v = f.read().rsplit(')', 1)[1].split()
            table[int(d)] = (int(v[1]), bool(int(v[6]) & PF_KTHREAD),
                             sum(int(x) for x in v[11:15]))
        except (OSError, IndexError, ValueError):
            continue
    return table


def tree(table, root):
    """`root` and all its descendants present in `table`."""
    kids = {}
    for pid, (ppid, _, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            out.append(pid)
            todo += kids.get(pid, [])
    return out


class CpuSample:
    """CPU ticks used so far by one server's process tree and by every
    other user-space process (foreign load), and the machine's steal time."""

    def __init__(self, parent):
        table = proc_table()
        mine = set(tree(table, parent)) if parent else set()
        me = os.getpid()       # the driver; wrk is reaped into its cutime
        self.server = sum(table[p][2] for p in mine)
        self.foreign = sum(t[2] for p, t in table.items()
                           if p not in mine and p != me and not t[1])
        with open('/proc/stat') as f:
            self.steal = int(f.readline().split()[8])
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.children = ru.ru_utime + ru.ru_stime
        self.time = time.monotonic()


def cpu_delta(before, after, requests):
    """Server CPU µs per request, and the shares of the machine's CPU time
    taken by wrk, by foreign processes and by steal while measuring."""
    capacity = (after.time - before.time) * os.cpu_count()
    return dict(
        server_cpu_s=round((after.server - before.server) / CLK_TCK, 3),
        server_cpu_us_per_req=(after.server - before.server) / CLK_TCK
        / requests * 1e6 if requests else None,
        wrk_cpu_share=round((after.children - before.children) / capacity, 3),
        foreign_cpu=round((after.foreign - before.foreign) / CLK_TCK
                          / capacity, 3),
        steal=round((after.steal - before.steal) / CLK_TCK / capacity, 3))


def cpu_busy(interval=0.5):
    """Fraction of all CPU time used by anything during `interval`."""
    def sample():
        with open('/proc/stat') as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]          # total, idle + iowait
    t0, i0 = sample()
    time.sleep(interval)
    t1, i1 = sample()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_idle(settings, label, name):
    """Foreign CPU load just before a measurement (no server of ours is
    running then); waits up to BENCH_IDLE_WAIT seconds for it to drop."""
    deadline = time.monotonic() + settings.idle_wait
    busy = cpu_busy()
    if busy > settings.max_foreign and settings.idle_wait:
        print('  %-6s %-18s machine %.0f%% busy, waiting up to %ds for it '
              'to go idle' % (label, name, busy * 100, settings.idle_wait),
              flush=True)
        while busy > settings.max_foreign and time.monotonic() < deadline:
            busy = cpu_busy(2.0)
    return round(busy, 3)


def cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read().split(b'\0')
    except OSError:
        return []


def argv0(pid):
    return (cmdline(pid) or [b''])[0].decode('utf-8', 'replace')


def vm_rss_kib(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def daemon_rss(parent):
    """{pid: VmRSS KiB} of the WSGI daemons (argv[0] "(wsgi:bench)") in
    the process tree of Apache parent `parent`."""
    rss = {}
    for pid in tree(proc_table(), parent):
        if argv0(pid).startswith('(wsgi:'):
            kib = vm_rss_kib(pid)
            if kib is not None:
                rss[pid] = kib
    return rss


def alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


def kill_tree(pids, grace=10.0):
    """Wait up to `grace` seconds for `pids` to exit, then SIGKILL the rest.
    Returns the pids that had to be killed."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    left = [p for p in pids if alive(p)]
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    return left


# --------------------------------------------------------------------------
# One Apache instance
# --------------------------------------------------------------------------

class BenchError(Exception):
    pass


class Server:
    """One harness.Apache for one measurement, plus what the harness does
    not own: the daemons (they rename themselves, so the harness does not
    recognise them), CPU pinning and a registry file for run.sh's cleanup."""

    def __init__(self, settings, label, scenario=None, static_ref=None, tag=''):
        self.s = settings
        self.label = label
        self.scenario = scenario
        self.static_ref = static_ref
        self.tag = tag
        self.wrk_connections = 0      # sum over wrk runs (cut-off bound)
        if scenario:
            config = MODES[scenario['mode']].replace(
                '{app}', os.path.join(settings.apps, scenario['app']))
            self.path = scenario.get('path', '/')
        else:
            config = '# static reference: no WSGI module'
            self.path = '/' + STATIC_REFS[static_ref][0]
        self.h = harness.Apache(
            'event', config, so=settings.so.get(label), loglevel='warn',
            mpm_conf=MPM_CONF, global_config=GLOBAL_CONF,
            load_wsgi=scenario is not None, name='bench',
            pre_start=self._write_static if static_ref else None)
        self.registry = os.path.join(settings.work, 'live',
                                     '%d' % self.h.port)

    def _write_static(self, h):
        fname, content = STATIC_REFS[self.static_ref]
        path = os.path.join(h.htdocs, fname)
        with open(path, 'wb') as f:
            f.write(content)
        os.chmod(path, 0o644)

    def start(self):
        os.makedirs(os.path.dirname(self.registry), exist_ok=True)
        with open(self.registry, 'w') as f:
            f.write('%s\n%s\n' % (self.h.conf_path, self.h.root))
        saved = os.sched_getaffinity(0)
        if self.s.apache_cpus:          # inherited by every Apache process
            os.sched_setaffinity(0, self.s.apache_cpus)
        try:
            self.h.start(timeout=60)
        finally:
            os.sched_setaffinity(0, saved)
        with open(self.registry, 'a') as f:
            f.write('%d\n' % self.h.parent)

    @property
    def parent(self):
        return self.h.parent

    def url(self):
        return 'http://127.0.0.1:%d%s' % (self.h.port, self.path)

    def check(self):
        """Problems with one response, [] when it is right."""
        if not self.scenario:
            fname, content = STATIC_REFS[self.static_ref]
            r = self.h.get(self.path, timeout=30)
            if r.status != 200 or r.body != content:
                return ['static %s: status %d, %d bytes'
                        % (fname, r.status, len(r.body))]
            return []
        method, body, fn = self.scenario['check']
        hdrs = {'Content-Type': 'application/octet-stream'} if body else None
        r = self.h.request(method, self.path, headers=hdrs, body=body,
                           timeout=60)
        if r.status != 200:
            return ['status %d: %r' % (r.status, r.body[:200])]
        return fn(r)

    def wrk(self, duration, connections, latency=False, limit=None):
        self.wrk_connections += connections
        return run_wrk(self.s, self.url(), self.scenario, duration,
                       connections, latency, limit, self.tag)

    def finish(self):
        """Stop everything of this server, scan and keep its error log.
        Returns result fields (problems found)."""
        res = {}
        pids = set(tree(proc_table(), self.parent)) if self.parent else set()
        self.h.stop()
        left = kill_tree(pids)
        if left:
            res['leftover_killed'] = left
        res.update(classify_log(self.h.error_log(), self.wrk_connections))
        dest = os.path.join(self.s.out, 'logs')
        os.makedirs(dest, exist_ok=True)
        if os.path.exists(self.h.errlog):
            shutil.copy(self.h.errlog, os.path.join(dest, self.tag + '.error.log'))
        shutil.copy(self.h.conf_path, os.path.join(dest, self.tag + '.httpd.conf'))
        self.h.cleanup()
        if os.path.exists(self.registry):
            os.unlink(self.registry)
        return res


def classify_log(text, connections):
    """Error-log lines worth reporting, after setting apart the requests wrk
    cut off (at most `connections` of them) and the MPM capacity notices."""
    bad = [l for l in text.splitlines() if BAD_LOG_RE.search(l)]
    res = {}
    capacity = [l for l in bad if CAPACITY_RE.search(l)]
    if capacity:
        res['log_capacity_lines'] = len(capacity)
        bad = [l for l in bad if not CAPACITY_RE.search(l)]
    def request(line):          # (pid:tid, client) or None
        m = REQUEST_RE.search(line)
        return m.groups() if m else None
    cut = {request(l) for l in bad if CUTOFF_RE.search(l)} - {None}
    if cut and len(cut) <= connections:
        res['log_cutoff_requests'] = len(cut)
        bad = [l for l in bad if request(l) not in cut]
    if bad:
        res['log_problems'] = bad
    return res


def cleanup_registry(work):
    """Stop the servers a killed run left behind (see Server.start)."""
    live = os.path.join(work, 'live')
    for fn in os.listdir(live) if os.path.isdir(live) else []:
        with open(os.path.join(live, fn)) as f:
            lines = f.read().split()
        conf, root = lines[0], lines[1]
        parent = int(lines[2]) if len(lines) > 2 else None
        # the pid file's process, if it still is that Apache (not a reused pid)
        pids = set(tree(proc_table(), parent)) \
            if parent and conf.encode() in cmdline(parent) else set()
        subprocess.run([harness.APACHE_BIN, '-f', conf, '-k', 'stop'],
                       env=harness.APACHE_ENV, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        left = kill_tree(pids)
        print('bench: stopped a leftover server (%s)%s' % (
            conf, ', killed %s' % left if left else ''), file=sys.stderr)
        if not os.environ.get('MWRS_KEEP'):
            shutil.rmtree(root, ignore_errors=True)
        os.unlink(os.path.join(live, fn))
    return 0


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------

def run_wrk(settings, url, scenario, duration, connections, latency=False,
            limit=None, tag=''):
    lua = ''
    if scenario and scenario.get('wrk_script'):
        with open(os.path.join(APPS_SRC, scenario['wrk_script'])) as f:
            lua = f.read()
    # A memory run uses one wrk thread: a thread that stops early would
    # leave its connections open and stalled, holding server workers.  That
    # thread also gets every body (response() is defined), so with 10 MiB
    # bodies some responses wait long on the client: the memory run only
    # needs them to complete.
    threads, timeout = (1, 120) if limit else (settings.threads, 10)
    if limit:
        lua += WRK_LIMIT_LUA % limit
    script = os.path.join(settings.work, 'wrk-%s.lua' % tag)
    with open(script, 'w') as f:
        f.write(lua + WRK_DONE_LUA)
    cmd = ['wrk', '-t%d' % threads, '-c%d' % connections,
           '-d%ds' % duration, '--timeout', '%ds' % timeout, '-s', script]
    if latency:
        cmd.append('--latency')
    cmd.append(url)
    if settings.wrk_cpus:
        cmd = ['taskset', '-c', ','.join(map(str, sorted(settings.wrk_cpus)))] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out = []
        for line in proc.stdout:
            out.append(line)
            if line.startswith('BENCH_STOPPED'):
                # wrk's main thread sleeps for -d whatever its threads do;
                # SIGINT ends that, and it reports as usual
                proc.send_signal(signal.SIGINT)
        out, err = ''.join(out), proc.stderr.read()
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with open(os.path.join(settings.out, 'logs', tag + '.wrk.txt'), 'a') as f:
        f.write('$ %s\n%s%s\n' % (' '.join(cmd), out, err))
    m = re.search(r'^BENCH_JSON (\{.*\})$', out, re.M)
    if rc != 0 or not m:
        raise BenchError('wrk failed (rc %d): %s %s' % (rc, out, err))
    d = json.loads(m.group(1))
    d['rps'] = d['requests'] / (d['duration_us'] / 1e6)
    d['errors'] = sum(d[k] for k in ERR_KEYS)
    return d


def say(label, name, text):
    print('  %-6s %-18s %s' % (label, name, text), flush=True)


def on_fresh_server(settings, res, label, scenario, static_ref, tag, work):
    """Start a server, check one response, run `work(server)`, which fills
    in `res`, then stop the server and scan its error log.  Returns `res`."""
    name = res['scenario']
    srv = Server(settings, label, scenario, static_ref, tag)
    try:
        srv.start()
        problems = srv.check()
        if problems:
            res['check_failed'] = problems
            say(label, name, 'CHECK FAILED: ' + '; '.join(problems))
        else:
            work(srv)
    except (harness.ApacheError, BenchError, subprocess.TimeoutExpired,
            OSError) as e:
        res['failed'] = str(e)
        say(label, name, 'FAILED: %s' % e)
    finally:
        res.update(srv.finish())
        report_log(label, name, res)
    return res


def measure(settings, label, scenario, static_ref, rnd):
    """Warm up, measure throughput and CPU, then latency at 64
    connections, on a fresh server.  Returns a result dict."""
    name = scenario['name'] if scenario else 'static:' + static_ref
    res = dict(server=label, scenario=name, round=rnd,
               idle_before=wait_idle(settings, label, name))

    def work(srv):
        if settings.warmup > 0:
            srv.wrk(settings.warmup, settings.connections)
        before = CpuSample(srv.parent)
        d = srv.wrk(settings.duration, settings.connections)
        res.update(d)
        res.update(cpu_delta(before, CpuSample(srv.parent), d['requests']))
        lat = srv.wrk(settings.lat_duration, settings.lat_connections,
                      latency=True)
        res.update({k + '_64': v for k, v in lat.items()})
        say(label, name, '%9.1f req/s  %7.1f us CPU/req  p99@%d %7.2f ms  '
            'errors %d/%d  foreign CPU %.0f%%' % (
                d['rps'], res['server_cpu_us_per_req'] or 0,
                settings.lat_connections, lat['lat_p99_us'] / 1e3,
                d['errors'], lat['errors'], res['foreign_cpu'] * 100))
    return on_fresh_server(settings, res, label, scenario, static_ref,
                           '%s-%s-r%d' % (label, name.replace(':', '-'), rnd),
                           work)


def rss_after_requests(settings, label, scenario):
    """N requests of the scenario on a fresh server, then VmRSS per
    daemon.  Returns a result dict."""
    name = scenario['name']
    n = settings.rss_requests
    res = dict(server=label, scenario=name, round=0, phase='rss',
               idle_before=wait_idle(settings, label, name))

    def work(srv):
        res['rss_start_kib'] = sorted(daemon_rss(srv.parent).values())
        before = CpuSample(srv.parent)
        d = srv.wrk(settings.rss_max_seconds, settings.connections, limit=n)
        res['foreign_cpu'] = cpu_delta(before, CpuSample(srv.parent),
                                       d['requests'])['foreign_cpu']
        res.update({k: d[k] for k in ('requests', 'errors') + ERR_KEYS})
        rss = daemon_rss(srv.parent)
        res['rss_kib'] = sorted(rss.values())
        res['daemon_pids'] = sorted(rss)
        if d['requests'] < n:
            res['failed'] = 'only %d of %d requests within %d s' % (
                d['requests'], n, settings.rss_max_seconds)
        say(label, name, 'after %d requests: VmRSS per daemon %s MiB '
            '(at start %s)' % (d['requests'], mib_list(res['rss_kib']),
                               mib_list(res['rss_start_kib'])))
    return on_fresh_server(settings, res, label, scenario, None,
                           '%s-%s-rss' % (label, name), work)


def mib_list(kibs):
    return ' '.join('%.1f' % (k / 1024) for k in kibs)


def report_log(label, name, res):
    if res.get('log_cutoff_requests'):
        say(label, name, 'error log: %d request(s) cut off when wrk stopped '
            '(expected)' % res['log_cutoff_requests'])
    if res.get('log_problems'):
        say(label, name, '%d error-log line(s), e.g.: %s' % (
            len(res['log_problems']), res['log_problems'][0][:300]))
    if res.get('leftover_killed'):
        say(label, name, 'killed leftover process(es) %s'
            % res['leftover_killed'])


# --------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------

def fmt(v, spec='%.1f'):
    return spec % v if v is not None else 'n/a'


class Table:
    """The measurements of one run, indexed by (server, scenario, round)."""

    def __init__(self, settings, results):
        self.s = settings
        self.at = {(r['server'], r['scenario'], r['round']): r for r in results
                   if r.get('phase') != 'rss'}
        self.rss = {(r['server'], r['scenario']): r for r in results
                    if r.get('phase') == 'rss'}

    def value(self, server, scen, key):
        """Median over rounds of one server's `key`."""
        v = [self.at[(server, scen, n)].get(key)
             for n in range(1, self.s.rounds + 1)
             if (server, scen, n) in self.at]
        v = [x for x in v if x is not None]
        return statistics.median(v) if v else None

    def ratios(self, num, den, key='rps'):
        """Per-round ratios num/den, each a (server, scenario), taken only
        from the same round."""
        out = []
        for n in range(1, self.s.rounds + 1):
            a = self.at.get(num + (n,), {}).get(key)
            b = self.at.get(den + (n,), {}).get(key)
            if a and b:
                out.append(a / b)
        return out


def spread(ratios, spec='%.2f'):
    """Median of per-round ratios with (min–max)."""
    if not ratios:
        return 'n/a'
    med = spec % statistics.median(ratios)
    if len(ratios) == 1:
        return med
    return '%s (%s–%s)' % (med, spec % min(ratios), spec % max(ratios))


def median_or_none(v):
    return statistics.median(v) if v else None


def summarize(s, results):
    t = Table(s, results)
    N = s.names
    ref = REFERENCE
    scs = s.scenarios
    lines = []

    lines.append('| Scenario | Server | req/s | server CPU µs/req | p99 @%d '
                 'conn, ms | ours / this server, req/s |' % s.lat_connections)
    lines.append('|---|---|---:|---:|---:|---:|')
    for sc in scs:
        nm = sc['name']
        rows = [(x, nm) for x in MODULES]
        if sc.get('static_ref') and s.static:
            rows.append(('static', 'static:' + sc['static_ref']))
        for server, scen in rows:
            p99 = t.value(server, scen, 'lat_p99_us_64')
            ratio = spread(t.ratios(('ours', nm), (server, scen))) \
                if server != 'ours' else ''
            lines.append('| %s | %s | %s | %s | %s | %s |' % (
                nm, N[server], fmt(t.value(server, scen, 'rps')),
                fmt(t.value(server, scen, 'server_cpu_us_per_req')),
                fmt(p99 / 1e3 if p99 else None, '%.2f'),
                '**%s**' % ratio if server == ref else ratio))
    lines.append('')
    lines.append('Medians over rounds. Server CPU: user + system time of the '
                 'Apache parent and all its descendants (MPM children and '
                 'daemons) during the throughput run, per request. Ratios: '
                 'the median of the per-round ratios (min–max), each taken '
                 'within one round.')

    pairs = [sc for sc in scs if sc.get('pair') in [x['name'] for x in scs]]
    if pairs:
        lines.append('')
        lines.append('| Against its pair, req/s | %s |'
                     % ' | '.join(N[x] for x in MODULES))
        lines.append('|---|---:|---:|---:|')
        for sc in pairs:
            lines.append('| %s / %s | %s |' % (sc['name'], sc['pair'], ' | '.join(
                spread(t.ratios((x, sc['name']), (x, sc['pair'])))
                for x in MODULES)))

    if t.rss:
        lines.append('')
        lines.append('| RSS per daemon after %d requests, MiB (at start) | %s '
                     '| %s | ours / %s, largest daemon |'
                     % (s.rss_requests, N['ours'], N[ref], N[ref]))
        lines.append('|---|---|---|---:|')
        for sc in scs:
            if sc['mode'] != 'daemon':
                continue
            cells = []
            for x in RSS_SERVERS:
                r = t.rss.get((x, sc['name']), {})
                cells.append('%s (%s)' % (mib_list(r.get('rss_kib', [])) or 'n/a',
                                          mib_list(r.get('rss_start_kib', []))))
            lines.append('| %s | %s | %s | %s |' % (
                sc['name'], cells[0], cells[1],
                fmt(rss_ratio(t, sc['name']), '%.2f')))

    lines.append('')
    lines.append('| Target (issue 10), against %s | measured | target | met |'
                 % N[ref])
    lines.append('|---|---:|---:|---|')
    for crit, val, op, goal in targets(s, t):
        ok = val is not None and (val >= goal if op == '≥' else val <= goal)
        lines.append('| %s | %s | %s %.2f | %s |' % (
            crit, fmt(val, '%.2f'), op, goal,
            'n/a' if val is None else ('yes' if ok else '**no**')))
    return '\n'.join(lines)


def rss_ratio(t, scen):
    a = t.rss.get(('ours', scen), {}).get('rss_kib')
    b = t.rss.get((REFERENCE, scen), {}).get('rss_kib')
    return max(a) / max(b) if a and b else None


def targets(s, t):
    """(criterion, measured, op, goal) for issue 10's targets: ratios are
    medians of per-round ratios."""
    ref = s.names[REFERENCE]
    names = [x['name'] for x in s.scenarios]
    out = []
    for sc in s.scenarios:
        nm = sc['name']
        if sc.get('target'):
            out.append(('%s: ours / %s req/s' % (nm, ref), median_or_none(
                t.ratios(('ours', nm), (REFERENCE, nm))), '≥', sc['target']))
        if sc.get('min_over_pair') and sc['pair'] in names:
            out.append(('%s: ours / ours %s' % (nm, sc['pair']),
                        median_or_none(t.ratios(('ours', nm), ('ours', sc['pair']))),
                        '≥', sc['min_over_pair']))
    for sc in s.scenarios:
        nm = sc['name']
        out.append(('%s: p99 @%d connections, ours / %s' % (
            nm, s.lat_connections, ref), median_or_none(t.ratios(
                ('ours', nm), (REFERENCE, nm), 'lat_p99_us_64')), '≤', 1.0))
    for sc in s.scenarios:
        if sc['mode'] == 'daemon' and t.rss:
            out.append(('%s: RSS of the largest daemon after %d requests, '
                        'ours / %s' % (sc['name'], s.rss_requests, ref),
                        rss_ratio(t, sc['name']), '≤', 1.0))
    return out


def find_problems(s, results):
    """(problems, notes, measurements under foreign load)."""
    problems, loaded = [], []
    read_64, capacity, cutoff = (
        'wrk read/write errors at %d connections (the event MPM closes idle '
        'keep-alive connections while all workers are busy)'
        % s.lat_connections,
        'error-log lines saying all workers are busy (AH00484/AH10159)',
        'requests cut off when wrk stopped, in the error log')
    notes = {}              # what -> server -> [measurements, sum]

    def note(what, server, n):
        v = notes.setdefault(what, {}).setdefault(server, [0, 0])
        v[0] += 1
        v[1] += n
    for r in results:
        where = '%s%s %s' % ('' if r['server'] == 'static' else
                             s.names[r['server']] + ' ', r['scenario'],
                             'memory run' if r.get('phase')
                             else 'round %d' % r['round'])
        for k in ('check_failed', 'failed', 'log_problems', 'leftover_killed'):
            if r.get(k):
                v = r[k] if isinstance(r[k], list) else [r[k]]
                problems.append('%s: %s: %s' % (where, k, '; '.join(
                    str(x) for x in v[:3]) + (' (+%d more)' % (len(v) - 3)
                                              if len(v) > 3 else '')))
        # A few read errors are normal with the event MPM under full load
        # (it closes idle keep-alive connections when all workers are busy,
        # which at 64 connections happens a lot): wrong statuses, timeouts,
        # wrong bodies, failed connects, or over 0.1 % in a throughput run
        # are problems.
        for suffix, conns in (('', s.connections), ('_64', s.lat_connections)):
            errs = r.get('errors' + suffix)
            if not errs:
                continue
            hard = any(r.get(k + suffix) for k in (
                'err_status', 'err_timeout', 'err_body', 'err_connect'))
            if hard or not suffix and not r.get('phase') \
                    and errs > 0.001 * r['requests']:
                problems.append('%s: wrk reported %d errors at %d connections '
                                '(%s)' % (where, errs, conns, ', '.join(
                                    '%s=%d' % (k[4:], r[k + suffix])
                                    for k in ERR_KEYS if r.get(k + suffix))))
            elif suffix:
                note(read_64, r['server'], errs)
        if r.get('log_capacity_lines'):
            note(capacity, r['server'], r['log_capacity_lines'])
        if r.get('log_cutoff_requests'):
            note(cutoff, r['server'], r['log_cutoff_requests'])
        if r.get('phase') == 'rss' and 'rss_kib' in r \
                and len(r['rss_kib']) != DAEMON_PROCESSES:
            problems.append('%s: found %d daemon process(es), expected %d'
                            % (where, len(r['rss_kib']), DAEMON_PROCESSES))
        busy = max(r.get('idle_before', 0), r.get('foreign_cpu', 0))
        if busy > s.max_foreign:
            loaded.append('%s (%.0f%%)' % (where, busy * 100))
    return problems, ['%s: %s' % (what, '; '.join(
        '%s %d in %d measurement(s)' % (s.names[server], total, count)
        for server, (count, total) in by.items()))
        for what, by in notes.items()], loaded


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def prepare_apps(settings):
    """World-readable copy of bench/apps plus the 10 MiB file (www-data
    must read them)."""
    settings.apps = os.path.join(settings.work, 'apps')
    os.makedirs(settings.apps, exist_ok=True)
    os.chmod(settings.work, 0o755)
    os.chmod(settings.apps, 0o755)
    for fn in os.listdir(APPS_SRC):
        shutil.copy(os.path.join(APPS_SRC, fn), settings.apps)
    with open(os.path.join(settings.apps, 'blob_10m.bin'), 'wb') as f:
        f.write(BLOB_10M)
    for fn in os.listdir(settings.apps):
        os.chmod(os.path.join(settings.apps, fn), 0o644)


def round_order(rnd, index, servers):
    """Servers of one scenario in one round: the base order rotated by
    round and scenario, so that no server is always first (or last)."""
    k = (rnd - 1 + index) % len(servers)
    return servers[k:] + servers[:k]


def raise_exit(signum, frame):
    # finally-blocks stop the running server; a second signal (run.sh
    # forwards the first) must not interrupt that
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    sys.exit(128 + signum)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == '--cleanup':
        return cleanup_registry(sys.argv[2])
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_exit)
    s = Settings()
    os.environ.pop('MWRS_EXTRA_CONFIG', None)   # the harness would add it
    os.makedirs(os.path.join(s.out, 'logs'), exist_ok=True)
    prepare_apps(s)
    started = datetime.datetime.now()
    print('bench: %s mode, %d round(s), wrk -t%d -c%d -d%ds (warm-up %ds), '
          'latency at -c%d -d%ds, memory runs: %s, pinning %s; '
          'scenarios: %s' % (
              'quick' if s.quick else 'full', s.rounds, s.threads,
              s.connections, s.duration, s.warmup, s.lat_connections,
              s.lat_duration, '%d requests' % s.rss_requests
              if s.rss_requests else 'none',
              'Apache %s / wrk %s' % (sorted(s.apache_cpus), sorted(s.wrk_cpus))
              if s.wrk_cpus else 'off',
              ', '.join(x['name'] for x in s.scenarios)))
    print('bench: %s' % ', '.join('%s = %s' % (k, s.names[k]) for k in MODULES))
    print('bench: logs and raw results in %s' % s.out, flush=True)

    results = []
    for rnd in range(1, s.rounds + 1):
        print('round %d/%d' % (rnd, s.rounds), flush=True)
        statics = set()
        for i, sc in enumerate(s.scenarios):
            servers = list(MODULES)
            ref = sc.get('static_ref') if s.static else None
            if ref and ref not in statics:
                statics.add(ref)
                servers.append('static')
            for label in round_order(rnd, i, servers):
                results.append(measure(s, label, sc if label != 'static'
                                       else None, ref, rnd))
    if s.rss_requests > 0:
        print('memory: VmRSS per daemon after %d requests on a fresh server'
              % s.rss_requests, flush=True)
        for sc in s.scenarios:
            if sc['mode'] == 'daemon':
                for label in RSS_SERVERS:
                    results.append(rss_after_requests(s, label, sc))

    table = summarize(s, results)
    problems, notes, loaded = find_problems(s, results)
    header = ('mod_wsgi-rs (commit %s) vs %s, %s, %d cores, %s mode, '
              '%d round(s) in rotating order, wrk -t%d -c%d -d%ds, '
              'p99 at -c%d' % (
                  s.commit, ' and '.join(s.names[x] for x in MODULES[1:]),
                  started.strftime('%Y-%m-%d %H:%M'), os.cpu_count(),
                  'quick' if s.quick else 'full', s.rounds, s.threads,
                  s.connections, s.duration, s.lat_connections))
    banner = ''
    if loaded:
        banner = ('**NOT FOR PUBLICATION: %d of %d measurements ran with more '
                  'than %.0f%% of the CPU used by other processes**: %s\n\n'
                  % (len(loaded), len(results), s.max_foreign * 100,
                     ', '.join(loaded)))
    text = '%s%s\n\n%s\n' % (banner, header, table)
    if notes:
        text += '\nNotes (expected, not problems):\n' + ''.join(
            '- %s\n' % n for n in notes)
    if problems:
        text += '\nProblems:\n' + ''.join('- %s\n' % p for p in problems)
    if banner:
        text += '\n' + banner
    print('\n' + text)
    with open(os.path.join(s.out, 'results.json'), 'w') as f:
        json.dump(dict(header=header, settings={
            k: v for k, v in vars(s).items() if k != 'scenarios'},
            scenarios=[x['name'] for x in s.scenarios], results=results,
            problems=problems, notes=notes, foreign_load=loaded), f, indent=1,
            default=str)
    with open(os.path.join(s.out, 'summary.md'), 'w') as f:
        f.write(text)
    print('bench: summary written to %s' % os.path.join(s.out, 'summary.md'))
    if any(r.get('failed') or r.get('check_failed') for r in results):
        return 1
    return 3 if loaded else 0


if __name__ == '__main__':
    sys.exit(main())
