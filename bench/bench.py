#!/usr/bin/python3
"""Benchmark mod_wsgi-rs against Debian's mod_wsgi under Apache httpd 2.4.

Normally started through bench/run.sh, which checks prerequisites, creates the
work directory and guarantees that no Apache is left running.  Run with
/usr/bin/python3 (standard library only).

Every measurement starts its own Apache (event MPM, same sizing for every
server) in a fresh ServerRoot under the work directory, checks that the
response is correct, warms up, runs wrk, stops Apache and scans its error log.

Scenarios are data (see SCENARIOS below): adding one is adding a dict.
"""

import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
APPS_SRC = os.path.join(HERE, 'apps')
APACHE = '/usr/sbin/apache2'
APACHE_MODULES = '/usr/lib/apache2/modules'
MIB = 1024 * 1024

# --------------------------------------------------------------------------
# Data: servers, WSGI modes, static references, scenarios
# --------------------------------------------------------------------------

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

DAEMON_PROCESSES = 2

# How the app is mounted.  {app} is the app file, {root} the ServerRoot.
MODES = {
    'embedded': """\
WSGIScriptAlias / {app}
WSGIApplicationGroup %{{GLOBAL}}
""",
    # Same daemon group for both modules.  WSGIRestrictEmbedded On: Apache's
    # MPM children never start Python (only the daemons do), so the RSS
    # measured for the daemons is the whole Python cost.  display-name makes
    # the daemons recognisable as "(wsgi:bench)" in /proc/PID/cmdline.
    'daemon': """\
WSGIRestrictEmbedded On
WSGISocketPrefix {root}/run/wsgi
WSGIDaemonProcess bench processes={daemon_processes} threads=15 display-name=%{{GROUP}}
WSGIProcessGroup bench
WSGIScriptAlias / {app}
WSGIApplicationGroup %{{GLOBAL}}
""",
}

# Static files served by a plain Apache (no WSGI module loaded) as a ceiling
# reference.  name -> (file name, contents)
STATIC_REFS = {
    'hello': ('hello.txt', b'Hello, world!\n'),
    'blob_1m': ('blob_1m.bin', b'x' * MIB),
}


def _check_hello(status, headers, body):
    problems = []
    if body != b'Hello, world!\n':
        problems.append('body %r != %r' % (body[:60], b'Hello, world!\n'))
    if headers.get('content-length') != '14':
        problems.append('Content-Length %r != 14' % headers.get('content-length'))
    return problems


def _check_stream(status, headers, body):
    problems = []
    if len(body) != MIB or body.strip(b'x'):
        problems.append('body is %d bytes, expected %d x' % (len(body), MIB))
    if 'content-length' in headers:
        problems.append('unexpected Content-Length %r (app sets none)'
                        % headers['content-length'])
    if headers.get('transfer-encoding', '').lower() != 'chunked':
        problems.append('Transfer-Encoding %r, expected chunked'
                        % headers.get('transfer-encoding'))
    return problems


def _check_upload(status, headers, body):
    if body != str(10 * MIB).encode():
        return ['body %r, expected %d' % (body[:60], 10 * MIB)]
    return []


# When wrk stops, the 10 MiB uploads in flight are cut off.  In embedded mode
# the app swallows the resulting OSError (see apps/upload.wsgi); in daemon
# mode mod_wsgi's Apache child logs this line itself for each of them:
#   mod_wsgi (pid=N): Request data read error when proxying data to daemon
#   process: Partial results are valid but processing is incomplete.
UPLOAD_CUTOFF_LOG = r'Request data read error when proxying data to daemon'

# One entry per scenario.  Keys:
#   name         short id (BENCH_SCENARIOS selects by it)
#   app          file in bench/apps/ mounted at /
#   mode         key of MODES (embedded | daemon)
#   extra_conf   additional Apache config lines (formatted like MODES)
#   path         URL path requested
#   wrk_script   optional lua file in bench/apps/ (must not define done())
#   wrk_args     extra wrk arguments
#   check        dict(method, body, check=fn(status, headers, body) -> [problems])
#   static_ref   key of STATIC_REFS to measure as ceiling, or None
#   default      run when BENCH_SCENARIOS is unset
#   daemon_pair  (daemon scenarios) the embedded scenario it is compared with
#                for the daemon/embedded ratio
#   target       acceptance target for ours/mod_wsgi requests/s, or None
#   min_over_embedded  acceptance target for ours daemon/ours embedded, or None
#   cutoff_log   optional regex: error-log lines caused by wrk cutting off the
#                requests in flight when it stops (at most one per connection
#                per wrk run); counted apart, flagged only above that bound
#   metrics      columns reported: 'rps' (requests/s), 'mibps' (response MiB/s)
#   what         one-line description
SCENARIOS = [
    # Pairs are adjacent (embedded, then its daemon twin) so that the
    # daemon/embedded ratio compares measurements taken close in time.
    dict(name='hello', app='hello.wsgi', mode='embedded', extra_conf='',
         path='/', wrk_script=None, wrk_args=[],
         check=dict(method='GET', body=None, check=_check_hello),
         static_ref='hello', default=True, metrics=['rps'],
         what="embedded, 14-byte 'Hello, world!' with Content-Length"),
    dict(name='hello_daemon', app='hello.wsgi', mode='daemon', extra_conf='',
         path='/', wrk_script=None, wrk_args=[],
         check=dict(method='GET', body=None, check=_check_hello),
         static_ref='hello', default=False, metrics=['rps'],
         daemon_pair='hello', target=2.0, min_over_embedded=0.85,
         what='daemon mode (processes=2 threads=15), hello world'),
    dict(name='stream_1m', app='stream_1m.wsgi', mode='embedded', extra_conf='',
         path='/', wrk_script=None, wrk_args=[],
         check=dict(method='GET', body=None, check=_check_stream),
         static_ref='blob_1m', default=True, metrics=['rps', 'mibps'],
         what='embedded, 1 MiB as 16 x 64 KiB yields, no Content-Length'),
    dict(name='stream_1m_daemon', app='stream_1m.wsgi', mode='daemon',
         extra_conf='', path='/', wrk_script=None, wrk_args=[],
         check=dict(method='GET', body=None, check=_check_stream),
         static_ref='blob_1m', default=False, metrics=['rps', 'mibps'],
         daemon_pair='stream_1m', target=2.5,
         what='daemon mode, 1 MiB as 16 x 64 KiB yields, no Content-Length'),
    dict(name='upload_10m', app='upload.wsgi', mode='embedded', extra_conf='',
         path='/', wrk_script='upload_10m.lua', wrk_args=[],
         check=dict(method='POST', body=b'u' * (10 * MIB), check=_check_upload),
         static_ref=None, default=False, metrics=['rps'],
         cutoff_log=UPLOAD_CUTOFF_LOG,
         what='embedded, POST 10 MiB read from wsgi.input, tiny response'),
    dict(name='upload_10m_daemon', app='upload.wsgi', mode='daemon',
         extra_conf='', path='/', wrk_script='upload_10m.lua', wrk_args=[],
         check=dict(method='POST', body=b'u' * (10 * MIB), check=_check_upload),
         static_ref=None, default=False, metrics=['rps'],
         daemon_pair='upload_10m', target=1.5, cutoff_log=UPLOAD_CUTOFF_LOG,
         what='daemon mode, POST 10 MiB read from wsgi.input, tiny response'),
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
    '"err_timeout":%d,"err_body":%d,"lat_p50_us":%d,"lat_p99_us":%d,' ..
    '"lat_max_us":%d}\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout, bad,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""

# Error-log lines worth reporting.
BAD_LOG_RE = re.compile(
    r'\[[a-z_]*:(error|crit|alert|emerg)\]|exit signal|segfault|Segmentation'
    r'|core dumped|Traceback|panick', re.I)


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------

def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v not in (None, '') else default


class Settings:
    def __init__(self):
        self.quick = os.environ.get('BENCH_QUICK', '') not in ('', '0')
        self.duration = env_int('BENCH_DURATION', 3 if self.quick else 10)
        self.warmup = env_int('BENCH_WARMUP', 1 if self.quick else 2)
        self.rounds = env_int('BENCH_ROUNDS', 1 if self.quick else 3)
        self.threads = env_int('BENCH_THREADS', 2)
        self.connections = env_int('BENCH_CONNECTIONS', 32)
        self.static = os.environ.get('BENCH_STATIC', '1') not in ('', '0')
        self.work = os.environ['BENCH_WORK']          # set by run.sh
        self.out = os.environ.get('BENCH_OUT') or os.path.join(self.work, 'out')
        self.ours = os.environ['MOD_WSGI_RS_SO']
        self.theirs = os.environ['MOD_WSGI_SO']
        sel = os.environ.get('BENCH_SCENARIOS', '').strip()
        names = [s['name'] for s in SCENARIOS]
        if not sel:
            self.scenarios = [s for s in SCENARIOS if s['default']]
        elif sel == 'all':
            self.scenarios = list(SCENARIOS)
        elif sel == 'daemon':
            # the daemon scenarios + the embedded hello they are compared with
            self.scenarios = [s for s in SCENARIOS
                              if s['mode'] == 'daemon' or s['name'] == 'hello']
        else:
            wanted = [x.strip() for x in sel.split(',') if x.strip()]
            bad = [w for w in wanted if w not in names]
            if bad:
                sys.exit('bench: unknown scenario(s) %s; known: %s '
                         '(or "all", "daemon")'
                         % (', '.join(bad), ', '.join(names)))
            self.scenarios = [s for s in SCENARIOS if s['name'] in wanted]


# --------------------------------------------------------------------------
# Apache instance handling
# --------------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


# Environment variable marking every process of one of our servers.  WSGI
# daemon processes rename themselves (display-name), so their command line
# no longer shows the ServerRoot; their environment still does (run.sh's
# cleanup matches it too).
ROOT_MARKER = 'MOD_WSGI_RS_BENCH_ROOT'


def clean_env(root=None):
    # No pyenv, no PYTHON* variables: Apache's children run as www-data.
    env = {'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
           'LANG': 'C.UTF-8'}
    if root:
        env[ROOT_MARKER] = root
    return env


def procs_matching(root):
    """PIDs of the Apache processes of ServerRoot `root`: command line
    mentioning it, or started with our environment marker for it."""
    pids = []
    marker = ('%s=%s' % (ROOT_MARKER, root)).encode()
    for d in os.listdir('/proc'):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open('/proc/%s/cmdline' % d, 'rb') as f:
                cmd = f.read().replace(b'\0', b' ').decode('utf-8', 'replace')
            if root in cmd and 'apache2' in cmd:
                pids.append(int(d))
                continue
            with open('/proc/%s/environ' % d, 'rb') as f:
                if marker in f.read().split(b'\0'):
                    pids.append(int(d))
        except OSError:
            continue
    return pids


def children_of(ppid):
    pids = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d) as f:
                stat = f.read()
            if int(stat.rsplit(')', 1)[1].split()[1]) == ppid:
                pids.append(int(d))
        except (OSError, IndexError, ValueError):
            continue
    return pids


def argv0(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read().split(b'\0', 1)[0].strip().decode('utf-8', 'replace')
    except OSError:
        return ''


def vm_rss_kib(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def daemon_pids(parent):
    """The WSGI daemon processes of the Apache whose parent is `parent`.

    With display-name=%{GROUP} both modules set argv[0] to "(wsgi:bench)".
    Without it: the children of the parent whose argv[0] differs from the
    parent's (the MPM children keep it)."""
    kids = [p for p in children_of(parent) if alive(p)]
    found = [p for p in kids if argv0(p).startswith('(wsgi:')]
    if not found:
        mine = argv0(parent)
        found = [p for p in kids if argv0(p) and argv0(p) != mine]
    return sorted(found)


def alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


class Apache:
    """One Apache instance in its own ServerRoot."""

    def __init__(self, settings, label, module_so, scenario, static_ref=None):
        self.s = settings
        self.label = label
        self.port = free_port()
        self.root = os.path.join(settings.work, 'srv-%s-%s-%d' % (
            label, scenario['name'] if scenario else static_ref, self.port))
        self.conf = os.path.join(self.root, 'httpd.conf')
        self.errlog = os.path.join(self.root, 'logs', 'error.log')
        self.pidfile = os.path.join(self.root, 'run', 'httpd.pid')
        self.parent = None
        for d in ('', 'logs', 'run', 'htdocs'):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
            os.chmod(os.path.join(self.root, d), 0o755)
        if module_so:
            module_conf = 'LoadModule wsgi_module %s\n' % module_so
            fmt = dict(app=os.path.join(settings.apps, scenario['app']),
                       root=self.root, daemon_processes=DAEMON_PROCESSES)
            module_conf += MODES[scenario['mode']].format(**fmt)
            module_conf += scenario.get('extra_conf', '').format(**fmt)
        else:
            fname, content = STATIC_REFS[static_ref]
            path = os.path.join(self.root, 'htdocs', fname)
            with open(path, 'wb') as f:
                f.write(content)
            os.chmod(path, 0o644)
            module_conf = '# static reference: no WSGI module\n'
        with open(self.conf, 'w') as f:
            f.write(CONF_TEMPLATE.format(
                root=self.root, port=self.port, mpm=MPM_CONF,
                modules=APACHE_MODULES, apps=settings.apps,
                module_conf=module_conf))

    def start(self):
        r = subprocess.run([APACHE, '-f', self.conf, '-k', 'start'],
                           env=clean_env(self.root), capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise BenchError('%s: apache2 -k start failed (rc %d): %s%s'
                             % (self.label, r.returncode, r.stdout, r.stderr)
                             + self.log_tail())
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), 0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise BenchError('%s: port %d never opened' % (self.label, self.port)
                             + self.log_tail())
        # The port can open before the parent has written its pid file.
        while True:
            try:
                with open(self.pidfile) as f:
                    self.parent = int(f.read().strip())
                break
            except (OSError, ValueError):
                self.parent = None
                if time.time() > deadline:
                    break
                time.sleep(0.05)

    def stop(self):
        pids = set(procs_matching(self.root))
        if self.parent:
            pids.add(self.parent)
            pids.update(children_of(self.parent))
        if os.path.exists(self.pidfile):
            try:
                subprocess.run([APACHE, '-f', self.conf, '-k', 'stop'],
                               env=clean_env(self.root), capture_output=True, timeout=30)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.time() + 15
        while time.time() < deadline and any(alive(p) for p in pids):
            time.sleep(0.1)
            pids.update(procs_matching(self.root))
        left = [p for p in pids | set(procs_matching(self.root)) if alive(p)]
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        if left:
            print('  warning: %s: killed %d leftover process(es) %s'
                  % (self.label, len(left), left), flush=True)
        return left

    def url(self, path):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def log_tail(self, n=30):
        try:
            with open(self.errlog, errors='replace') as f:
                lines = f.readlines()
        except OSError:
            return '\n  (no error log)'
        return '\n  --- %s (last %d lines) ---\n  ' % (self.errlog, n) + \
            '  '.join(lines[-n:])

    def bad_log_lines(self):
        try:
            with open(self.errlog, errors='replace') as f:
                return [l.rstrip('\n') for l in f if BAD_LOG_RE.search(l)]
        except OSError:
            return []


CONF_TEMPLATE = """\
# Generated by bench/bench.py
ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {root}/run/httpd.pid
DefaultRuntimeDir {root}/run
Mutex file:{root}/run default
ErrorLog {root}/logs/error.log
LogLevel warn
# no access log (same for every server)

LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so

User www-data
Group www-data

{mpm}
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 5
Timeout 60

DocumentRoot {root}/htdocs
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory {root}/htdocs>
    Require all granted
</Directory>
<Directory {apps}>
    Require all granted
</Directory>

{module_conf}
"""


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------

def check_response(apache, scenario, path):
    c = scenario['check']
    conn = http.client.HTTPConnection('127.0.0.1', apache.port, timeout=30)
    try:
        hdrs = {'Content-Type': 'application/octet-stream'} if c['body'] else {}
        conn.request(c['method'], path, body=c['body'], headers=hdrs)
        r = conn.getresponse()
        body = r.read()
        headers = {k.lower(): v for k, v in r.getheaders()}
        status = r.status
    finally:
        conn.close()
    problems = [] if status == 200 else ['status %d' % status]
    if c.get('check') and not problems:
        problems += c['check'](status, headers, body)
    return problems


def check_static(apache, static_ref):
    fname, content = STATIC_REFS[static_ref]
    conn = http.client.HTTPConnection('127.0.0.1', apache.port, timeout=30)
    try:
        conn.request('GET', '/' + fname)
        r = conn.getresponse()
        body = r.read()
    finally:
        conn.close()
    if r.status != 200 or body != content:
        return ['static %s: status %d, %d bytes' % (fname, r.status, len(body))]
    return []


def run_wrk(settings, url, scenario, duration):
    lua = ''
    if scenario and scenario.get('wrk_script'):
        with open(os.path.join(APPS_SRC, scenario['wrk_script'])) as f:
            lua = f.read()
    script = os.path.join(settings.work, 'wrk-%s.lua' % (
        scenario['name'] if scenario else 'static'))
    with open(script, 'w') as f:
        f.write(lua + WRK_DONE_LUA)
    cmd = ['wrk', '-t%d' % settings.threads, '-c%d' % settings.connections,
           '-d%ds' % duration, '--timeout', '10s', '-s', script]
    cmd += (scenario or {}).get('wrk_args', [])
    cmd.append(url)
    r = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=duration + 60)
    m = re.search(r'^BENCH_JSON (\{.*\})$', r.stdout, re.M)
    if r.returncode != 0 or not m:
        raise BenchError('wrk failed (rc %d): %s %s'
                         % (r.returncode, r.stdout, r.stderr))
    d = json.loads(m.group(1))
    secs = d['duration_us'] / 1e6
    d['rps'] = d['requests'] / secs
    d['mibps'] = d['bytes'] / secs / MIB
    d['errors'] = sum(d[k] for k in d if k.startswith('err_'))
    return d


def cpu_busy(interval=0.5):
    """Fraction of CPU time used by anything during `interval` (0..1)."""
    def sample():
        with open('/proc/stat') as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]          # total, idle + iowait
    t0, i0 = sample()
    time.sleep(interval)
    t1, i1 = sample()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def measure(settings, label, module_so, scenario, static_ref=None):
    """Start a server, check, warm up, measure, stop.  Returns a result dict."""
    name = scenario['name'] if scenario else 'static:' + static_ref
    # Our previous server is stopped: whatever uses CPU now is foreign load.
    busy = cpu_busy()
    res = dict(server=label, scenario=name, background_cpu=round(busy, 3))
    if busy > 0.15:
        print('  %-8s %-17s warning: machine not idle before this run '
              '(%.0f%% CPU busy), numbers will be noisy'
              % (label, name, busy * 100), flush=True)
    apache = Apache(settings, label, module_so, scenario, static_ref)
    path = scenario['path'] if scenario else '/' + STATIC_REFS[static_ref][0]
    try:
        apache.start()
        problems = (check_response(apache, scenario, path) if scenario
                    else check_static(apache, static_ref))
        if problems:
            res['check_failed'] = problems
            print('  %-8s %-17s CHECK FAILED: %s' % (label, name,
                                                    '; '.join(problems)),
                  flush=True)
        else:
            if settings.warmup > 0:
                run_wrk(settings, apache.url(path), scenario, settings.warmup)
            d = run_wrk(settings, apache.url(path), scenario, settings.duration)
            res.update(d)
            print('  %-8s %-17s %9.1f req/s %8.1f MiB/s  p50 %6.2f ms  '
                  'p99 %7.2f ms  errors %d'
                  % (label, name, d['rps'], d['mibps'], d['lat_p50_us'] / 1e3,
                     d['lat_p99_us'] / 1e3, d['errors']), flush=True)
            if scenario and scenario['mode'] == 'daemon' and apache.parent:
                # Right after the measurement, Apache still running.
                pids = daemon_pids(apache.parent)
                rss = [vm_rss_kib(p) for p in pids]
                res['daemon_pids'] = pids
                res['daemon_rss_kib'] = [r for r in rss if r is not None]
                if res['daemon_rss_kib']:
                    print('  %-8s %-17s %d daemon process(es), VmRSS MiB: %s'
                          % (label, name, len(res['daemon_rss_kib']),
                             ' '.join('%.1f' % (r / 1024)
                                      for r in res['daemon_rss_kib'])),
                          flush=True)
                else:
                    print('  %-8s %-17s no daemon process found for RSS'
                          % (label, name), flush=True)
    except (BenchError, subprocess.TimeoutExpired, OSError) as e:
        res['failed'] = str(e)
        print('  %-8s %-17s FAILED: %s' % (label, name, e), flush=True)
    finally:
        left = apache.stop()
        if left:
            res['leftover_killed'] = left
        bad = apache.bad_log_lines()
        cut_re = scenario.get('cutoff_log') if scenario else None
        if cut_re:
            cut = [l for l in bad if re.search(cut_re, l)]
            res['log_cutoff_lines'] = len(cut)
            # warm-up + measurement: at most one per connection per wrk run
            if len(cut) <= 2 * settings.connections:
                bad = [l for l in bad if not re.search(cut_re, l)]
                if cut:
                    print('  %-8s %-17s %d error-log line(s) from uploads cut '
                          'off when wrk stopped (expected)'
                          % (label, name, len(cut)), flush=True)
        if bad:
            res['log_problems'] = bad
            print('  %-8s %-17s %d error-log line(s), e.g.: %s'
                  % (label, name, len(bad), bad[0][:300]), flush=True)
        dest = os.path.join(settings.out, 'logs')
        os.makedirs(dest, exist_ok=True)
        if os.path.exists(apache.errlog):
            shutil.copy(apache.errlog, os.path.join(
                dest, '%s-%s-%d.error.log' % (label, name.replace(':', '-'),
                                              apache.port)))
        shutil.copy(apache.conf, os.path.join(
            dest, '%s-%s-%d.httpd.conf' % (label, name.replace(':', '-'),
                                           apache.port)))
    return res


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def prepare_apps(settings):
    """World-readable copy of bench/apps (www-data must read the apps)."""
    settings.apps = os.path.join(settings.work, 'apps')
    os.makedirs(settings.apps, exist_ok=True)
    os.chmod(settings.work, 0o755)
    os.chmod(settings.apps, 0o755)
    for fn in os.listdir(APPS_SRC):
        dst = os.path.join(settings.apps, fn)
        shutil.copy(os.path.join(APPS_SRC, fn), dst)
        os.chmod(dst, 0o644)


def med(values):
    return statistics.median(values) if values else None


def fmt(v, spec='%.1f'):
    return spec % v if v is not None else 'n/a'


def ratio(a, b):
    return a / b if a and b else None


def summarize(settings, results):
    by = {}
    for r in results:
        by.setdefault((r['server'], r['scenario']), []).append(r)

    def agg(server, scen, key):
        vals = [r[key] for r in by.get((server, scen), []) if key in r]
        return med(vals)

    lines = []
    lines.append('| Scenario | Metric | mod_wsgi-rs | mod_wsgi | ours/mod_wsgi '
                 '| static | static/mod_wsgi |')
    lines.append('|---|---|---:|---:|---:|---:|---:|')
    for sc in settings.scenarios:
        st = ('static:' + sc['static_ref']) if (sc['static_ref'] and
                                                 settings.static) else None
        for key in sc['metrics']:
            metric = {'rps': 'requests/s', 'mibps': 'MiB/s'}[key]
            ours = agg('ours', sc['name'], key)
            theirs = agg('mod_wsgi', sc['name'], key)
            stat = agg('static', st, key) if st else None
            lines.append('| %s | %s | %s | %s | %s | %s | %s |' % (
                sc['name'], metric, fmt(ours), fmt(theirs),
                fmt(ratio(ours, theirs), '%.2f'), fmt(stat),
                fmt(ratio(stat, theirs), '%.2f')))
    lines.append('')
    # Per-round ratios show how much of a ratio is noise.
    lines.append('Per-round ours/mod_wsgi (requests/s): ' + '; '.join(
        '%s %s' % (sc['name'], ' '.join(
            fmt(ratio(a.get('rps'), b.get('rps')), '%.2f')
            for a, b in zip(by.get(('ours', sc['name']), []),
                            by.get(('mod_wsgi', sc['name']), []))))
        for sc in settings.scenarios))
    lines.append('')
    lines.append('| Scenario | Server | p50 ms | p99 ms | wrk errors (sum) |')
    lines.append('|---|---|---:|---:|---:|')
    for sc in settings.scenarios:
        for server, scen in (('ours', sc['name']), ('mod_wsgi', sc['name'])):
            p50, p99 = agg(server, scen, 'lat_p50_us'), agg(server, scen,
                                                            'lat_p99_us')
            errs = sum(r.get('errors', 0) for r in by.get((server, scen), []))
            lines.append('| %s | %s | %s | %s | %d |' % (
                scen, 'mod_wsgi-rs' if server == 'ours' else 'mod_wsgi',
                fmt(p50 / 1e3 if p50 else None, '%.2f'),
                fmt(p99 / 1e3 if p99 else None, '%.2f'), errs))

    names = [sc['name'] for sc in settings.scenarios]
    daemon_scs = [sc for sc in settings.scenarios if sc['mode'] == 'daemon']
    accept = []          # (criterion, measured, target text, met)

    # Daemon vs embedded, per module, from the same run.
    pairs = [sc for sc in daemon_scs if sc.get('daemon_pair') in names]
    if pairs:
        lines.append('')
        lines.append('| Daemon vs embedded (requests/s) | mod_wsgi-rs '
                     'daemon/embedded | mod_wsgi daemon/embedded |')
        lines.append('|---|---:|---:|')
        for sc in pairs:
            emb = sc['daemon_pair']
            r_ours = ratio(agg('ours', sc['name'], 'rps'), agg('ours', emb, 'rps'))
            r_theirs = ratio(agg('mod_wsgi', sc['name'], 'rps'),
                             agg('mod_wsgi', emb, 'rps'))
            lines.append('| %s / %s | %s | %s |' % (
                sc['name'], emb, fmt(r_ours, '**%.2f**'), fmt(r_theirs, '%.2f')))
            if sc.get('min_over_embedded'):
                accept.append(('%s: ours daemon / ours embedded (%s)'
                               % (sc['name'], emb), r_ours,
                               sc['min_over_embedded']))
        lines.append('')
        lines.append('Per-round ours daemon/embedded (requests/s): ' + '; '.join(
            '%s %s' % (sc['name'], ' '.join(
                fmt(ratio(a.get('rps'), b.get('rps')), '%.2f')
                for a, b in zip(by.get(('ours', sc['name']), []),
                                by.get(('ours', sc['daemon_pair']), []))))
            for sc in pairs))

    # Resident memory of the daemon processes, sampled right after each
    # measurement (Apache still running): all samples of all rounds.
    if daemon_scs:
        lines.append('')
        lines.append('| Scenario | Server | daemon samples | mean RSS/daemon MiB '
                     '| max RSS/daemon MiB | ours/mod_wsgi mean | ours/mod_wsgi max |')
        lines.append('|---|---|---:|---:|---:|---:|---:|')
        every = {'ours': [], 'mod_wsgi': []}
        for sc in daemon_scs:
            st = {}
            for server in ('ours', 'mod_wsgi'):
                v = [x for r in by.get((server, sc['name']), [])
                     for x in r.get('daemon_rss_kib', [])]
                every[server] += v
                st[server] = (len(v), statistics.mean(v) / 1024 if v else None,
                              max(v) / 1024 if v else None)
            for server in ('ours', 'mod_wsgi'):
                n, mean, mx = st[server]
                lines.append('| %s | %s | %d | %s | %s | %s | %s |' % (
                    sc['name'], 'mod_wsgi-rs' if server == 'ours' else 'mod_wsgi',
                    n, fmt(mean), fmt(mx),
                    fmt(ratio(st['ours'][1], st['mod_wsgi'][1]), '**%.2f**')
                    if server == 'ours' else '',
                    fmt(ratio(st['ours'][2], st['mod_wsgi'][2]), '**%.2f**')
                    if server == 'ours' else ''))
        o, t = every['ours'], every['mod_wsgi']
        if o and t:
            accept.append(('RSS per daemon, mean over all daemon scenarios: '
                           'ours %.1f MiB / mod_wsgi %.1f MiB'
                           % (statistics.mean(o) / 1024, statistics.mean(t) / 1024),
                           statistics.mean(o) / statistics.mean(t), -1.0))
            accept.append(('RSS per daemon, max over all daemon scenarios: '
                           'ours %.1f MiB / mod_wsgi %.1f MiB'
                           % (max(o) / 1024, max(t) / 1024),
                           max(o) / max(t), -1.0))

    # Acceptance targets (ours/mod_wsgi, daemon scenarios) go first.
    accept = [('%s: ours/mod_wsgi requests/s' % sc['name'],
               ratio(agg('ours', sc['name'], 'rps'),
                     agg('mod_wsgi', sc['name'], 'rps')), sc['target'])
              for sc in daemon_scs if sc.get('target')] + accept
    cut = {}
    for r in results:
        if r.get('log_cutoff_lines'):
            k = (r['server'], r['scenario'])
            cut[k] = cut.get(k, 0) + r['log_cutoff_lines']
    if cut:
        lines.append('')
        lines.append('Error-log lines from uploads cut off when wrk stopped '
                     '(expected, not counted as problems): ' + '; '.join(
                         '%s %s %d' % (srv, scen, n)
                         for (srv, scen), n in sorted(cut.items())))
    if accept:
        lines.append('')
        lines.append('| Daemon-mode acceptance | measured | target | met |')
        lines.append('|---|---:|---:|---|')
        for crit, val, target in accept:
            if target < 0:     # "at most": ours/mod_wsgi <= 1
                ttxt, ok = '≤ 1.00', val is not None and val <= 1.0
            else:
                ttxt, ok = '≥ %.2f' % target, val is not None and val >= target
            lines.append('| %s | %s | %s | %s |' % (
                crit, fmt(val, '%.2f'), ttxt,
                'n/a' if val is None else ('yes' if ok else '**no**')))
    return '\n'.join(lines)


def main():
    s = Settings()
    os.makedirs(s.out, exist_ok=True)
    prepare_apps(s)
    started = datetime.datetime.now()
    print('bench: %s mode, %d round(s), wrk -t%d -c%d -d%ds (warm-up %ds), '
          'scenarios: %s' % ('quick' if s.quick else 'full', s.rounds,
                             s.threads, s.connections, s.duration, s.warmup,
                             ', '.join(x['name'] for x in s.scenarios)))
    print('bench: logs and raw results in %s' % s.out, flush=True)

    servers = [('ours', s.ours), ('mod_wsgi', s.theirs)]
    results = []
    for rnd in range(1, s.rounds + 1):
        print('round %d/%d' % (rnd, s.rounds), flush=True)
        for sc in s.scenarios:
            for label, so in servers:        # ours, theirs, (next round) ...
                results.append(dict(measure(s, label, so, sc), round=rnd))
            if sc['static_ref'] and s.static:
                key = 'static:' + sc['static_ref']
                done = [r for r in results if r['scenario'] == key
                        and r['round'] == rnd]
                if not done:
                    results.append(dict(measure(s, 'static', None, None,
                                                sc['static_ref']), round=rnd))

    table = summarize(s, results)
    header = ('mod_wsgi-rs vs mod_wsgi, %s, %d cores, %s mode, %d round(s) '
              'interleaved, wrk -t%d -c%d -d%ds, medians over rounds'
              % (started.strftime('%Y-%m-%d %H:%M'), os.cpu_count(),
                 'quick' if s.quick else 'full', s.rounds, s.threads,
                 s.connections, s.duration))
    print()
    print(header)
    print()
    print(table)

    problems = []
    for r in results:
        for k in ('check_failed', 'failed', 'log_problems', 'leftover_killed'):
            if r.get(k):
                problems.append('%s %s round %d: %s: %s' % (
                    r['server'], r['scenario'], r['round'], k,
                    r[k] if not isinstance(r[k], list) else
                    '; '.join(str(x) for x in r[k][:3])
                    + (' (+%d more)' % (len(r[k]) - 3) if len(r[k]) > 3 else '')))
        # A handful of read errors is normal with the event MPM under full
        # load (it closes idle keep-alive connections when all workers are
        # busy); flag only bad statuses, timeouts or more than 0.1 %.
        if r.get('errors') and (r.get('err_status') or r.get('err_timeout')
                                or r.get('err_body')
                                or r['errors'] > 0.001 * r['requests']):
            problems.append('%s %s round %d: wrk reported %d errors (%s)' % (
                r['server'], r['scenario'], r['round'], r['errors'],
                ', '.join('%s=%d' % (k[4:], r[k]) for k in sorted(r)
                          if k.startswith('err_') and r[k])))
        if ('daemon_rss_kib' in r
                and len(r['daemon_rss_kib']) != DAEMON_PROCESSES):
            problems.append('%s %s round %d: found %d daemon process(es), '
                            'expected %d (pids %s)' % (
                                r['server'], r['scenario'], r['round'],
                                len(r['daemon_rss_kib']), DAEMON_PROCESSES,
                                r.get('daemon_pids')))
    busy = [r['background_cpu'] for r in results]
    if busy and max(busy) > 0.15:
        problems.append('machine was not idle: up to %.0f%% CPU busy before '
                        'a run (median %.0f%%); ratios are unreliable'
                        % (max(busy) * 100, med(busy) * 100))
    if problems:
        print('\nProblems:')
        for p in problems:
            print('  - ' + p)

    with open(os.path.join(s.out, 'results.json'), 'w') as f:
        json.dump(dict(header=header, settings={
            k: v for k, v in vars(s).items() if k != 'scenarios'},
            scenarios=[x['name'] for x in s.scenarios],
            results=results, problems=problems), f, indent=1, default=str)
    with open(os.path.join(s.out, 'summary.md'), 'w') as f:
        f.write(header + '\n\n' + table + '\n')
        if problems:
            f.write('\nProblems:\n' + ''.join('- %s\n' % p for p in problems))
    print('\nbench: summary written to %s' % os.path.join(s.out, 'summary.md'))
    return 1 if any(r.get('failed') or r.get('check_failed')
                    for r in results) else 0


if __name__ == '__main__':
    sys.exit(main())
