"""Test harness for the mod_wsgi-rs integration suite.

``Apache`` owns one private httpd instance: a temporary, world-readable
ServerRoot under /tmp, a free loopback port, its own httpd.conf, error log,
pid file and copies of the test applications.  The instance is started with
``apache2 -f <conf> -k start`` and stopped by ``stop()``, which is
idempotent.

The harness knows every process of an instance: Apache's parent detaches
into a session of its own, and everything it forks (its children, the
daemon processes, whatever an application starts) stays in that session
unless it asks for a new one; such processes are also followed through
their parents each time the instance is looked at.  ``stop()`` waits for
all of them to go, kills any that do not and reports them as leftovers:
``cleanup()`` (and so ``with Apache(...)``) then raises, and conftest.py
fails the running test.

The HTTP helpers speak HTTP/1.1 over raw sockets so that tests can send
malformed or chunked requests and inspect truncated responses byte by byte.

Paths and names that depend on the platform can be overridden from the
environment: MWRS_PYTHON (the Python the module was built for, default
/usr/bin/python3), MWRS_APACHE_BIN, MWRS_MODULES_DIR, MWRS_APACHE_USER.
"""

import atexit
import fcntl
import functools
import grp
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl as ssl_mod
import subprocess
import tempfile
import threading
import time
from typing import NamedTuple

import pytest

APACHE_BIN = os.environ.get('MWRS_APACHE_BIN', '/usr/sbin/apache2')
MODULES_DIR = os.environ.get('MWRS_MODULES_DIR', '/usr/lib/apache2/modules')
MIME_TYPES = os.environ.get('MWRS_MIME_TYPES', '/etc/mime.types')
APACHE_USER = os.environ.get('MWRS_APACHE_USER', 'www-data')
# The Python the module under test embeds (the Makefile's PYTHON). It must
# be readable by Apache's user, so not a build under /root.
PYTHON = os.environ.get('MWRS_PYTHON', '/usr/bin/python3')
SYSTEM_PYTHON = PYTHON

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
APPS_SRC = os.path.join(REPO, 'tests', 'apps')
DEFAULT_SO = os.path.join(REPO, 'target', 'release', 'libmod_wsgi_rs.so')


# Apache is run with a minimal, fixed environment so that nothing from the
# caller (PYTHONPATH, PYTHONDONTWRITEBYTECODE, a pyenv PATH, ...) leaks into
# the embedded interpreter.
APACHE_ENV = {
    'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'LANG': 'C',
}


def module_path():
    return os.environ.get('MOD_WSGI_RS_SO', DEFAULT_SO)


@functools.lru_cache(maxsize=None)
def apache_user():
    """The passwd entry of Apache's User (looked up on first use, so that
    collecting the suite does not depend on it)."""
    return pwd.getpwnam(APACHE_USER)


@functools.lru_cache(maxsize=None)
def python_info():
    """Version and prefixes of PYTHON, the interpreter the module embeds:
    {'version': [3, 11], 'prefix': ..., 'base_prefix': ...}."""
    code = ('import json, sys; print(json.dumps({"version": list(sys.version_info[:2]), '
            '"prefix": sys.prefix, "base_prefix": sys.base_prefix}))')
    out = subprocess.run([PYTHON, '-c', code], env=APACHE_ENV, check=True,
                         stdout=subprocess.PIPE).stdout
    return json.loads(out)


def python_version_text():
    """'3.11' for the Python the module embeds, as in the Server banner."""
    return '%d.%d' % tuple(python_info()['version'])


def __getattr__(name):
    # WWW_UID and WWW_GID are resolved when first used, not at import.
    if name == 'WWW_UID':
        return apache_user().pw_uid
    if name == 'WWW_GID':
        return apache_user().pw_gid
    raise AttributeError('module %r has no attribute %r' % (__name__, name))


# Every instance that was started and not yet stopped; stopped at exit.
_LIVE = set()
_LIVE_LOCK = threading.Lock()

# Leftover processes found by stop() that no test has been failed for yet:
# a list of (instance root, [descriptions]).
_UNREPORTED = []

# Modules loaded into every instance (besides the MPM and wsgi_module).
BASE_MODULES = ['authz_core', 'alias', 'env', 'mime', 'dir']

MPMS = ['event', 'worker', 'prefork']

MPM_CONF = {
    'event': """
StartServers 1
ServerLimit 2
ThreadLimit 4
ThreadsPerChild 4
MinSpareThreads 1
MaxSpareThreads 8
MaxRequestWorkers 8
""",
    'worker': """
StartServers 1
ServerLimit 2
ThreadLimit 4
ThreadsPerChild 4
MinSpareThreads 1
MaxSpareThreads 8
MaxRequestWorkers 8
""",
    'prefork': """
StartServers 2
MinSpareServers 1
MaxSpareServers 3
ServerLimit 4
MaxRequestWorkers 4
""",
}

# Exactly one process with exactly one request thread.
SINGLE_CONF = {
    'event': """
StartServers 1
ServerLimit 1
ThreadLimit 1
ThreadsPerChild 1
MinSpareThreads 1
MaxSpareThreads 1
MaxRequestWorkers 1
""",
    'worker': """
StartServers 1
ServerLimit 1
ThreadLimit 1
ThreadsPerChild 1
MinSpareThreads 1
MaxSpareThreads 1
MaxRequestWorkers 1
""",
    'prefork': """
StartServers 1
MinSpareServers 1
MaxSpareServers 1
ServerLimit 1
MaxRequestWorkers 1
""",
}

# Error-log text that means a process crashed or Rust panicked.
# (A child killed by SIGABRT shows as "exit signal Aborted".)
CRASH_PATTERNS = ('Segmentation fault', 'exit signal', 'AH00052', 'core dumped', 'panicked at',
                  'AH00060', 'AH00051')


def crash_lines(text):
    return [line for line in text.splitlines() if any(p in line for p in CRASH_PATTERNS)]


# Virtualenvs with packages from the package index, kept between runs.
VENV_CACHE = os.environ.get('MWRS_VENV_CACHE', '/var/cache/mod_wsgi-rs')


class VenvUnavailable(Exception):
    """Packages could not be installed from the package index (no network,
    no compiler, ...)."""


def cached_venv(name, requirements):
    """A virtualenv made with the system Python holding ``requirements``
    (pip specifiers), kept in $MWRS_VENV_CACHE (default
    /var/cache/mod_wsgi-rs) under a name that changes with them, readable
    by everyone so www-data can run applications from it. A concurrent
    test run waits for the one building it; a half-made one is rebuilt."""
    key = hashlib.sha256('\n'.join(requirements).encode()).hexdigest()[:12]
    venv = os.path.join(VENV_CACHE, '%s-%s' % (name, key))
    stamp = os.path.join(venv, 'installed')
    os.makedirs(VENV_CACHE, mode=0o755, exist_ok=True)
    with open(venv + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(stamp):
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        steps = [[SYSTEM_PYTHON, '-m', 'venv', venv],
                 [os.path.join(venv, 'bin', 'python'), '-m', 'pip', 'install', '--quiet']
                 + list(requirements)]
        for cmd in steps:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=900, preexec_fn=lambda: os.umask(0o022))
            if p.returncode != 0:
                raise VenvUnavailable('%s failed (%d):\n%s' % (' '.join(cmd), p.returncode,
                                                                p.stdout.decode('utf-8', 'replace')))
        with open(stamp, 'w') as f:
            f.write('\n'.join(requirements) + '\n')
        return venv


class ApacheError(Exception):
    pass


class LeftoverProcesses(ApacheError):
    """Processes of an instance were still alive after it was stopped."""


def self_signed_cert(cert, key):
    """A certificate for 127.0.0.1 valid for a day, and its key."""
    subprocess.run(
        ['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
         '-subj', '/CN=127.0.0.1', '-days', '1',
         '-keyout', key, '-out', cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(cert, 0o644)
    os.chmod(key, 0o600)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_for(pred, timeout=10.0, interval=0.05):
    """Polls pred() until it returns a truthy value (returned) or timeout
    (returns the last value)."""
    deadline = time.time() + timeout
    while True:
        value = pred()
        if value or time.time() >= deadline:
            return value
        time.sleep(interval)


# --------------------------------------------------------------------------
# /proc
# --------------------------------------------------------------------------

class ProcStat(NamedTuple):
    state: str
    ppid: int
    pgrp: int
    session: int
    starttime: int      # clock ticks after boot


def proc_stat(pid):
    """The ProcStat of pid, or None if it does not exist."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            data = f.read()
        # comm may contain spaces and parentheses; fields follow the last ')'.
        fields = data.rsplit(')', 1)[1].split()
        return ProcStat(fields[0], int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]))
    except (OSError, IndexError, ValueError):
        return None


def all_proc_stats():
    """{pid: ProcStat} of every process on the machine."""
    out = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            st = proc_stat(int(name))
            if st is not None:
                out[int(name)] = st
    return out


def cmdline(pid):
    """The raw /proc/PID/cmdline bytes, or None."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read()
    except OSError:
        return None


def comm(pid):
    try:
        with open('/proc/%d/comm' % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def ppid(pid):
    st = proc_stat(pid)
    return st.ppid if st else None


def alive(pid):
    """Whether pid exists and is not a zombie."""
    st = proc_stat(pid) if pid is not None else None
    return st is not None and st.state != 'Z'


def status_field(pid, name):
    """A numeric field of /proc/PID/status (kB for Vm* fields), or None."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(name + ':'):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def uids(pid):
    """(real, effective, saved, fs) uid of pid, or None."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('Uid:'):
                    return tuple(int(x) for x in line.split()[1:5])
    except OSError:
        pass
    return None


def describe_pids(pids):
    return ['%d %r uid=%r' % (p, (cmdline(p) or b'')[:60], uids(p)) for p in pids]


# The names the suite used before; kept for existing callers.
def _read_cmdline(pid):
    raw = cmdline(pid)
    return raw.split(b'\0') if raw is not None else None


_read_comm = comm
_ppid = ppid


def _is_zombie(pid):
    st = proc_stat(pid)
    return st is None or st.state == 'Z'


_pid_alive = alive


# --------------------------------------------------------------------------
# HTTP client
# --------------------------------------------------------------------------

class Response:
    """A parsed HTTP response; ``raw`` keeps every byte received."""

    def __init__(self, raw, method='GET'):
        self.raw = raw
        self.method = method
        head, sep, rest = raw.partition(b'\r\n\r\n')
        if not sep:
            raise ApacheError('incomplete response head: %r' % raw[:500])
        lines = head.split(b'\r\n')
        status_line = lines[0].decode('latin-1')
        parts = status_line.split(' ', 2)
        self.version = parts[0]
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ''
        self.header_bytes = head
        self.headers = []
        for line in lines[1:]:
            name, _, value = line.decode('latin-1').partition(':')
            self.headers.append((name.strip(), value.strip()))
        self.rest = rest  # bytes after the head, exactly as received
        self.chunked = 'chunked' in (self.header('Transfer-Encoding') or '').lower()
        self.complete = True
        if method == 'HEAD' or self.status in (204, 304) or 100 <= self.status < 200:
            self.body = rest
        elif self.chunked:
            self.body, self.complete = decode_chunked(rest)
        elif self.header('Content-Length') is not None:
            n = int(self.header('Content-Length'))
            self.body = rest[:n]
            self.complete = len(rest) >= n
        else:
            self.body = rest

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        import json
        return json.loads(self.body.decode('utf-8'))

    @property
    def text(self):
        return self.body.decode('utf-8', 'replace')

    def __repr__(self):
        return '<Response %d %r %d bytes>' % (self.status, self.reason, len(self.body))


def decode_chunked(data):
    """Decode a chunked body; returns (body, saw_terminating_chunk)."""
    out = []
    pos = 0
    while True:
        eol = data.find(b'\r\n', pos)
        if eol < 0:
            return b''.join(out), False
        size_field = data[pos:eol].split(b';', 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            return b''.join(out), False
        pos = eol + 2
        if size == 0:
            # Trailer section must end with an empty line.
            return b''.join(out), data.find(b'\r\n', pos) >= 0
        chunk = data[pos:pos + size]
        out.append(chunk)
        if len(chunk) < size or data[pos + size:pos + size + 2] != b'\r\n':
            return b''.join(out), False
        pos += size + 2


def connect(port, use_ssl=False, timeout=15.0):
    sock = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    if use_ssl:
        ctx = ssl_mod.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl_mod.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname='127.0.0.1')
    return sock


def probe_timings(server, path='/env', attempts=3, timeout=5):
    """(ok, seconds) for a few plain GETs: shows whether the server still
    answers while another request is stuck on a slow client."""
    timings = []
    for _ in range(attempts):
        t0 = time.time()
        try:
            ok = server.get(path, timeout=timeout).status == 200
        except OSError:
            ok = False
        timings.append((ok, time.time() - t0))
    return timings


def recv_all(sock, limit=None):
    chunks = []
    total = 0
    while True:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, ssl_mod.SSLError):
            break
        if not data:
            break
        chunks.append(data)
        total += len(data)
        if limit is not None and total >= limit:
            break
    return b''.join(chunks)


def raw_request(port, data, use_ssl=False, timeout=15.0, half_close=False, info=None):
    """Send raw bytes and return every byte received until the server closes.
    If ``info`` is a dict, the client's local port is stored in it."""
    sock = connect(port, use_ssl, timeout)
    try:
        if info is not None:
            info['client_port'] = sock.getsockname()[1]
        sock.sendall(data)
        if half_close and not use_ssl:
            sock.shutdown(socket.SHUT_WR)
        return recv_all(sock)
    finally:
        sock.close()


class Connection:
    """A persistent (keep-alive) client connection reading one response at
    a time by its framing."""

    def __init__(self, port, use_ssl=False, timeout=15.0):
        self.sock = connect(port, use_ssl, timeout)
        self.port = port
        self.buf = b''

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ApacheError('connection closed by server; buffered %r' % self.buf[:200])
        self.buf += data

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self):
        while b'\r\n' not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method, path, headers=None, body=None):
        hdrs = list(headers.items() if isinstance(headers, dict) else (headers or []))
        if not any(k.lower() == 'connection' for k, _ in hdrs):
            hdrs.append(('Connection', 'keep-alive'))
        self.send(build_request(method, path, hdrs, body, port=self.port))
        return self.read_response(method)

    def read_response(self, method='GET'):
        while b'\r\n\r\n' not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b'\r\n\r\n', 1)
        probe = Response(head + b'\r\n\r\n', 'HEAD')
        te = (probe.header('Transfer-Encoding') or '').lower()
        if method == 'HEAD' or probe.status in (204, 304) or probe.status < 200:
            body = b''
        elif 'chunked' in te:
            parts = []
            while True:
                size_line = self._line()
                size = int(size_line.split(b';')[0], 16)
                parts.append(size_line + b'\r\n')
                if size == 0:
                    while True:
                        trailer = self._line()
                        parts.append(trailer + b'\r\n')
                        if not trailer:
                            break
                    break
                parts.append(self._take(size + 2))
            body = b''.join(parts)
        elif probe.header('Content-Length') is not None:
            body = self._take(int(probe.header('Content-Length')))
        else:
            while True:
                try:
                    self._fill()
                except ApacheError:
                    break
            body, self.buf = self.buf, b''
        return Response(head + b'\r\n\r\n' + body, method)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def build_request(method, path, headers=None, body=None, host='127.0.0.1', port=None,
                  version='HTTP/1.1'):
    hdrs = []
    names = set()
    for k, v in (headers.items() if isinstance(headers, dict) else (headers or [])):
        hdrs.append((k, v))
        names.add(k.lower())
    if 'host' not in names and host is not None:
        hdrs.insert(0, ('Host', '%s:%d' % (host, port) if port else host))
    if 'connection' not in names:
        hdrs.append(('Connection', 'close'))
    if body is not None and 'content-length' not in names and 'transfer-encoding' not in names:
        hdrs.append(('Content-Length', str(len(body))))
    out = ['%s %s %s\r\n' % (method, path, version)]
    for k, v in hdrs:
        out.append('%s: %s\r\n' % (k, v))
    out.append('\r\n')
    data = ''.join(out).encode('latin-1')
    if body is not None:
        data += body
    return data


def chunk_encode(body, sizes):
    """Chunk-encode ``body`` using the chunk sizes in ``sizes`` (cycled)."""
    out = []
    pos = 0
    i = 0
    while pos < len(body):
        n = sizes[i % len(sizes)]
        piece = body[pos:pos + n]
        out.append(b'%x\r\n' % len(piece) + piece + b'\r\n')
        pos += n
        i += 1
    out.append(b'0\r\n\r\n')
    return b''.join(out)


def get_json(apache, path, host=None, timeout=15.0, headers=None, **kw):
    """GET path, assert 200 and return the parsed JSON body."""
    headers = list(headers.items() if isinstance(headers, dict) else (headers or []))
    if host:
        headers.append(('Host', host))
    r = apache.get(path, headers=headers or None, timeout=timeout, **kw)
    assert r.status == 200, (path, r.status, r.body[:500], apache.error_log()[-3000:])
    return r.json()


def try_get(apache, path, host=None, timeout=15.0):
    """(status or exception name, parsed JSON or None, seconds taken)."""
    t0 = time.time()
    headers = {'Host': host} if host else None
    try:
        r = apache.get(path, headers=headers, timeout=timeout)
    except Exception as e:  # noqa: BLE001 - any failure is a data point
        return type(e).__name__, None, time.time() - t0
    data = None
    if r.status == 200:
        try:
            data = r.json()
        except ValueError:
            data = None
    return r.status, data, time.time() - t0


def burst(apache, path, n, host=None, timeout=15.0):
    """n concurrent GETs; returns the try_get() results in order."""
    results = [None] * n

    def one(i):
        results[i] = try_get(apache, path, host, timeout)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def pid_of(data):
    """The serving pid in a JSON answer of the test apps (daemon/info.wsgi
    puts it at the top, environ.wsgi under 'process')."""
    if not isinstance(data, dict):
        return None
    if 'pid' in data:
        return data['pid']
    return (data.get('process') or {}).get('pid')


class Load:
    """Background clients sending GETs back to back until stopped.
    ``results`` is a list of (start time, status or exception name, pid or
    None, end time), one per request."""

    def __init__(self, apache, path='/env', host=None, clients=1, timeout=15.0):
        self.apache = apache
        self.path = path
        self.host = host
        self.timeout = timeout
        self.results = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self):
        while not self.stopping.is_set():
            t0 = time.time()
            status, data, _ = try_get(self.apache, self.path, self.host, self.timeout)
            with self.lock:
                self.results.append((t0, status, pid_of(data), time.time()))
            if status != 200:
                time.sleep(0.02)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(self.timeout + 5)

    def __exit__(self, *exc):
        self.stop()
        return False

    def snapshot(self):
        with self.lock:
            return list(self.results)

    def wait_answered(self, n=5, since=0.0, timeout=15.0):
        """Waits until n requests begun at or after ``since`` have been
        answered with 200; returns whether they were."""
        return wait_for(lambda: sum(1 for r in self.snapshot() if r[0] >= since and r[1] == 200) >= n,
                        timeout)

    @property
    def ok(self):
        return sum(1 for r in self.snapshot() if r[1] == 200)

    @property
    def failed(self):
        return [r[1] for r in self.snapshot() if r[1] != 200]

    @property
    def pids(self):
        return {r[2] for r in self.snapshot() if r[1] == 200 and r[2] is not None}



def server_side(port, client_port):
    """The server side of the TCP connection from 127.0.0.1:client_port to
    127.0.0.1:port, as {'send_q': bytes queued, 'pid': owner or None}, or
    None while no process has accepted it yet."""
    out = subprocess.run(['ss', '-tnpH', 'state', 'established'], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == '127.0.0.1:%d' % port \
                and fields[3] == '127.0.0.1:%d' % client_port:
            m = re.search(r'pid=(\d+)', line)
            return {'send_q': int(fields[1]), 'pid': int(m.group(1)) if m else None}
    return None


def connection_owner(port, client_port):
    """The pid of the process holding the server side of that connection
    (None while it waits in the listen queue)."""
    info = server_side(port, client_port)
    return info['pid'] if info else None


def wait_send_blocked(port, client_port, timeout=15.0):
    """Waits until the server's writes to a client that stopped reading
    block: data is queued and the queue no longer grows.  Returns whether
    that was seen."""
    last = [None]

    def blocked():
        info = server_side(port, client_port)
        queued = info['send_q'] if info else 0
        steady = queued > 0 and queued == last[0]
        last[0] = queued
        return steady
    return wait_for(blocked, timeout, interval=0.2)


# --------------------------------------------------------------------------
# Apache instance
# --------------------------------------------------------------------------

class Apache:
    """One private Apache httpd instance.

    ``config`` is a snippet appended to the generated httpd.conf.  The
    placeholders {root}, {apps}, {state}, {htdocs}, {port}, {sslport} and
    {venv} are replaced (plain text substitution, so Apache's own ``%{...}``
    syntax is untouched).
    """

    def __init__(self, mpm='event', config='', *, so=None, loglevel='info',
                 single=False, mpm_conf=None, ssl=False, modules=(),
                 global_config='', pre_start=None, load_wsgi=True, name='t'):
        if mpm not in MPM_CONF:
            raise ValueError('unknown MPM %r' % mpm)
        self.mpm = mpm
        self.so = so or module_path()
        self.loglevel = loglevel
        self.ssl = ssl
        self.modules = list(modules)
        self.load_wsgi = load_wsgi
        self.mpm_conf = mpm_conf if mpm_conf is not None else (
            SINGLE_CONF[mpm] if single else MPM_CONF[mpm])
        self.root = tempfile.mkdtemp(prefix='mwrs-%s-%s-' % (name, mpm), dir='/tmp')
        os.chmod(self.root, 0o755)
        self.apps = os.path.join(self.root, 'apps')
        self.state = os.path.join(self.root, 'state')
        self.htdocs = os.path.join(self.root, 'htdocs')
        self.run_dir = os.path.join(self.root, 'run')
        self.logs = os.path.join(self.root, 'logs')
        self.venv = os.path.join(self.root, 'venv')
        self.conf_path = os.path.join(self.root, 'httpd.conf')
        self.pidfile = os.path.join(self.run_dir, 'httpd.pid')
        self.errlog = os.path.join(self.logs, 'error.log')
        self.port = free_port()
        self.sslport = free_port() if ssl else None
        self.parent = None
        self.started = False
        self._known_pids = set()
        # Process tracking (see observe()).
        self.session = None
        self._parent_start = None
        self._seen = {}
        self._seen_lock = threading.Lock()
        self.leftovers = []
        self._leftovers_reported = False
        # How long stop() waits for every process to go by default.
        self.stop_timeout = 15.0
        self._prepare_tree()
        if ssl:
            self._make_cert()
        if pre_start is not None:
            pre_start(self)
        self._config_src = config
        self._global_src = global_config
        self.config = self.subst(config)
        self.global_config = self.subst(global_config)
        self.write_config()

    # -- setup ---------------------------------------------------------------

    def subst(self, text):
        repl = {
            '{root}': self.root, '{apps}': self.apps, '{state}': self.state,
            '{htdocs}': self.htdocs, '{port}': str(self.port),
            '{sslport}': str(self.sslport), '{venv}': self.venv,
        }
        for k, v in repl.items():
            text = text.replace(k, v)
        return text

    def _prepare_tree(self):
        shutil.copytree(APPS_SRC, self.apps,
                        ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        for d in (self.htdocs, self.run_dir, self.logs):
            os.makedirs(d, exist_ok=True)
        os.makedirs(self.state, exist_ok=True)
        # Everything readable by Apache's user; the state dir writable by it.
        for dirpath, dirnames, filenames in os.walk(self.apps):
            os.chmod(dirpath, 0o755)
            for fn in filenames:
                os.chmod(os.path.join(dirpath, fn), 0o644)
        for d in (self.htdocs, self.run_dir, self.logs):
            os.chmod(d, 0o755)
        os.chmod(self.state, 0o777)
        with open(os.path.join(self.htdocs, 'ready.txt'), 'w') as f:
            f.write('ready\n')
        os.chmod(os.path.join(self.htdocs, 'ready.txt'), 0o644)

    def _make_cert(self):
        self.cert = os.path.join(self.root, 'cert.pem')
        self.key = os.path.join(self.root, 'key.pem')
        self_signed_cert(self.cert, self.key)

    def make_venv(self, path=None):
        """Create a venv (no pip) of PYTHON, the Python the module embeds,
        at ``path`` (default {venv}); returns its path."""
        path = path or self.venv
        subprocess.run([PYTHON, '-m', 'venv', '--without-pip', path],
                       check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for dirpath, dirnames, filenames in os.walk(path):
            os.chmod(dirpath, 0o755)
        return path

    def write_config(self):
        lines = [
            'ServerRoot "%s"' % self.root,
            'DefaultRuntimeDir "%s"' % self.run_dir,
            'PidFile "%s"' % self.pidfile,
            'Mutex file:%s default' % self.run_dir,
            'LoadModule mpm_%s_module %s/mod_mpm_%s.so' % (self.mpm, MODULES_DIR, self.mpm),
        ]
        mods = BASE_MODULES + [m for m in self.modules if m not in BASE_MODULES]
        if self.ssl and 'ssl' not in mods:
            mods.append('ssl')
        for m in mods:
            lines.append('LoadModule %s_module %s/mod_%s.so' % (m, MODULES_DIR, m))
        if self.load_wsgi:
            lines.append('LoadModule wsgi_module %s' % self.so)
        lines += [
            'Listen 127.0.0.1:%d' % self.port,
            'ServerName 127.0.0.1',
            'ServerAdmin admin@example.test',
            'User %s' % APACHE_USER,
            'Group %s' % grp.getgrgid(apache_user().pw_gid).gr_name,
            'ErrorLog "%s"' % self.errlog,
            'LogLevel %s' % self.loglevel,
            'ServerTokens Full',
            'TypesConfig %s' % MIME_TYPES,
            'DocumentRoot "%s"' % self.htdocs,
            'KeepAlive On',
            'Timeout 30',
            'GracefulShutdownTimeout 5',
            '<Directory />',
            '    AllowOverride None',
            '    Require all granted',
            '</Directory>',
            self.mpm_conf,
        ]
        if self.ssl:
            lines += [
                'Listen 127.0.0.1:%d' % self.sslport,
                '<VirtualHost 127.0.0.1:%d>' % self.sslport,
                '    ServerName 127.0.0.1',
                '    SSLEngine on',
                '    SSLCertificateFile "%s"' % self.cert,
                '    SSLCertificateKeyFile "%s"' % self.key,
                '</VirtualHost>',
            ]
        if self.global_config:
            lines.append(self.global_config)
        # Debugging aid only (e.g. MWRS_EXTRA_CONFIG='WSGIDestroyInterpreter Off'
        # to make Debian's mod_wsgi 4.9.4 stop quickly under event); the
        # session summary says so when it is set.
        if os.environ.get('MWRS_EXTRA_CONFIG') and self.load_wsgi:
            lines.append(os.environ['MWRS_EXTRA_CONFIG'])
        lines.append('# ---- test snippet ----')
        lines.append(self.config)
        with open(self.conf_path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        os.chmod(self.conf_path, 0o644)

    def _new_ports(self):
        """Another free port (and TLS port): someone took ours between
        free_port() and Apache's bind."""
        self.port = free_port()
        self.sslport = free_port() if self.ssl else None
        self.config = self.subst(self._config_src)
        self.global_config = self.subst(self._global_src)
        self.write_config()

    # -- control -------------------------------------------------------------

    def _ctl(self, action, timeout=30):
        return subprocess.run([APACHE_BIN, '-f', self.conf_path, '-k', action],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, cwd=self.root, env=APACHE_ENV)

    def config_test(self):
        """Run ``apache2 -t``; returns (exit code, combined output)."""
        p = subprocess.run([APACHE_BIN, '-t', '-f', self.conf_path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60, cwd=self.root, env=APACHE_ENV)
        return p.returncode, p.stdout.decode('utf-8', 'replace')

    def read_pidfile(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def start(self, timeout=15.0):
        for _ in range(3):
            try:
                return self._start(timeout)
            except _PortTaken:
                self._new_ports()
        raise ApacheError('port taken three times in a row')

    def _start(self, timeout):
        with _LIVE_LOCK:
            _LIVE.add(self)
        self.started = True
        p = self._ctl('start')
        if p.returncode != 0:
            out = p.stdout.decode('utf-8', 'replace')
            self.stop()
            if 'Address already in use' in out:
                raise _PortTaken()
            raise ApacheError('apache2 -k start failed (%d): %s\n--- error log ---\n%s'
                              % (p.returncode, out, self.error_log()))
        deadline = time.time() + timeout
        self.parent = wait_for(self.read_pidfile, timeout)
        if self.parent is None:
            self.stop()
            raise ApacheError('no pid file after start\n--- error log ---\n' + self.error_log())
        self._track(self.parent)
        self._known_pids.add(self.parent)
        self.wait_ready(deadline)
        return self

    def wait_ready(self, deadline):
        """Wait until a child answers (any HTTP status) or fail with the log."""
        last = None
        while time.time() < deadline:
            if not alive(self.parent):
                log = self.error_log()
                self.stop()
                raise ApacheError('apache parent exited during start\n--- error log ---\n' + log)
            try:
                raw = raw_request(self.port, build_request('GET', '/ready.txt', port=self.port),
                                  timeout=max(0.5, min(3.0, deadline - time.time())))
                if raw.startswith(b'HTTP/'):
                    self._note_pids()
                    return
                last = 'empty reply'
            except OSError as e:
                last = repr(e)
            time.sleep(0.1)
        log = self.error_log()
        self.stop()
        raise ApacheError('server on port %d not ready (%s)\n--- error log ---\n%s'
                          % (self.port, last, log))

    # -- processes -----------------------------------------------------------

    def _track(self, parent):
        """Start following the process tree of ``parent``.  Apache's parent
        detaches into a session it leads, so the session id finds even
        processes that were re-parented or renamed themselves."""
        st = proc_stat(parent)
        if st is None:
            return
        self._parent_start = st.starttime
        self.session = parent if st.session == parent else None
        with self._seen_lock:
            self._seen[parent] = st.starttime

    def observe(self):
        """Live (non-zombie) pids of every process of this instance: its
        session, every process seen before, and their descendants.  Each is
        remembered, so that stop() can check that all of them are gone.
        Only this instance's processes are ever looked at."""
        if self._parent_start is None:
            return []
        stats = all_proc_stats()
        # If the parent is gone and its pid was reused by a new session
        # leader, processes started since then belong to someone else.
        leader = stats.get(self.session) if self.session else None
        foreign_since = (leader.starttime if leader and leader.starttime != self._parent_start
                         else None)
        with self._seen_lock:
            seen = dict(self._seen)
        mine = set()
        for pid, st in stats.items():
            if seen.get(pid) == st.starttime:
                mine.add(pid)
            elif (self.session is not None and st.session == self.session
                  and st.starttime >= self._parent_start
                  and (foreign_since is None or st.starttime < foreign_since)):
                mine.add(pid)
        children = {}
        for pid, st in stats.items():
            children.setdefault(st.ppid, []).append(pid)
        todo = list(mine)
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in mine:
                    mine.add(child)
                    todo.append(child)
        live = sorted(p for p in mine if stats[p].state != 'Z')
        with self._seen_lock:
            for p in live:
                self._seen[p] = stats[p].starttime
        return live

    def all_pids(self):
        """Every live process of this instance, daemons and whatever the
        applications started included."""
        return self.observe()

    def _note_pids(self):
        self.observe()
        for pid in self.instance_pids():
            self._known_pids.add(pid)

    def instance_pids(self):
        """All live (non-zombie) apache2 processes belonging to this instance
        (its parent and children, not the daemons, which rename themselves)."""
        conf = self.conf_path.encode()
        binary = os.path.basename(APACHE_BIN)
        pids = []
        for name in os.listdir('/proc'):
            if not name.isdigit():
                continue
            pid = int(name)
            cmd = _read_cmdline(pid)
            if not cmd or conf not in cmd:
                continue
            if comm(pid) != binary:
                continue
            if _is_zombie(pid):
                continue
            pids.append(pid)
        return sorted(pids)

    def child_pids(self):
        parent = self.read_pidfile() or self.parent
        return [p for p in self.instance_pids() if p != parent and ppid(p) == parent]

    def graceful(self, wait=True):
        self.observe()
        p = self._ctl('graceful')
        if p.returncode != 0:
            raise ApacheError('graceful failed: %s' % p.stdout.decode('utf-8', 'replace'))
        if wait:
            self._wait_generation()

    def restart(self, wait=True):
        self.observe()
        p = self._ctl('restart')
        if p.returncode != 0:
            raise ApacheError('restart failed: %s' % p.stdout.decode('utf-8', 'replace'))
        if wait:
            self._wait_generation()

    def _wait_generation(self, timeout=15.0):
        deadline = time.time() + timeout
        self.wait_ready(deadline)
        self.parent = self.read_pidfile() or self.parent

    def stop(self, kill=True, timeout=None):
        """Stop the instance and wait up to ``timeout`` (default
        ``stop_timeout``) for every one of its processes to go.  Returns the
        pids still alive then.  With ``kill`` those are SIGKILLed and
        reported as leftovers (see cleanup())."""
        if not self.started:
            return []
        timeout = self.stop_timeout if timeout is None else timeout
        self.observe()
        parent = self.read_pidfile() or self.parent
        try:
            self._ctl('stop', timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        wait_for(lambda: not alive(parent) and not self.all_pids(), timeout)
        left = self.all_pids()
        if kill:
            if left:
                self._kill_leftovers(left)
            self.started = False
            with _LIVE_LOCK:
                _LIVE.discard(self)
        return left

    def _kill_leftovers(self, pids):
        found = describe_pids(pids)
        for _ in range(3):
            for pid in self.all_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if wait_for(lambda: not self.all_pids(), 2.0):
                break
        self.leftovers.extend(found)
        _UNREPORTED.append((self.root, found))

    def cleanup(self, raise_leftovers=True):
        """Stop (see stop()) and remove the ServerRoot (kept if MWRS_KEEP is
        set).  Raises LeftoverProcesses if processes had to be killed."""
        self.stop()
        log_tail = self.error_log()[-3000:] if self.leftovers else ''
        if not os.environ.get('MWRS_KEEP'):
            shutil.rmtree(self.root, ignore_errors=True)
        if raise_leftovers and self.leftovers and not self._leftovers_reported:
            self._leftovers_reported = True
            _UNREPORTED[:] = [u for u in _UNREPORTED if u[0] != self.root]
            raise LeftoverProcesses('processes of %s still alive after stop (killed): %r\n'
                                    '--- error log ---\n%s' % (self.root, self.leftovers, log_tail))

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            # Leftovers stay unreported for conftest; the start error wins.
            self.cleanup(raise_leftovers=False)
            raise
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    # -- logs ----------------------------------------------------------------

    def error_log(self):
        try:
            with open(self.errlog, encoding='utf-8', errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def log_size(self):
        try:
            return os.path.getsize(self.errlog)
        except OSError:
            return 0

    def log_since(self, offset):
        try:
            with open(self.errlog, 'rb') as f:
                f.seek(offset)
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def wait_for_log(self, needle, offset=0, timeout=10.0):
        """Wait until ``needle`` (str or compiled regex) appears in the log
        after ``offset``; returns the matching text or None."""
        deadline = time.time() + timeout
        while True:
            text = self.log_since(offset)
            if isinstance(needle, str):
                if needle in text:
                    return text
            elif needle.search(text):
                return text
            if time.time() >= deadline:
                return None
            time.sleep(0.05)

    # -- state files written by apps -------------------------------------------

    def state_file(self, name):
        return os.path.join(self.state, name)

    def wait_state(self, name, timeout=10.0):
        """The text of state file ``name`` once it exists (apps write them
        under a temporary name and rename), or None after ``timeout``."""
        path = self.state_file(name)

        def read():
            try:
                with open(path) as f:
                    return f.read()
            except FileNotFoundError:
                return None
        if wait_for(lambda: os.path.exists(path), timeout):
            # An app writing in place may not have written yet.
            return wait_for(read, 0.5) or read()
        return None

    # -- HTTP ----------------------------------------------------------------

    def request(self, method, path, headers=None, body=None, *, https=False,
                host='127.0.0.1', timeout=15.0, version='HTTP/1.1'):
        port = self.sslport if https else self.port
        data = build_request(method, path, headers, body, host=host, port=port,
                             version=version)
        info = {}
        raw = raw_request(port, data, use_ssl=https, timeout=timeout, info=info)
        resp = Response(raw, method)
        resp.client_port = info.get('client_port')
        return resp

    def get(self, path, **kw):
        return self.request('GET', path, **kw)

    def post(self, path, body, **kw):
        return self.request('POST', path, body=body, **kw)

    def raw(self, data, https=False, timeout=15.0):
        return raw_request(self.sslport if https else self.port, data,
                           use_ssl=https, timeout=timeout)


class _PortTaken(Exception):
    pass


def config_test(snippet, mpm='event', name='cfg', **kw):
    """``apache2 -t`` of a fresh tree whose config ends with ``snippet``;
    returns (exit code, combined output)."""
    a = Apache(mpm, snippet, name=name, **kw)
    try:
        return a.config_test()
    finally:
        a.cleanup()


def assert_config_refused(snippet, expected, name='cfg'):
    """``apache2 -t`` of a tree whose config ends with ``snippet`` fails,
    with a message that contains ``expected``."""
    rc, out = config_test(snippet, name=name)
    assert rc != 0 and 'Syntax OK' not in out, out
    assert expected in out, out


def server_fixture(config, name, mpms=('event', 'prefork'), scope='module', setup=None, **kw):
    """A pytest fixture giving one running Apache with ``config`` per MPM in
    ``mpms``; ``setup(apache)`` runs once it answers.  Assign it to the
    fixture's name at module level: ``server = server_fixture(CONFIG, 'x')``."""
    @pytest.fixture(scope=scope, params=list(mpms))
    def fixture(request):
        with Apache(request.param, config, name=name, **kw) as a:
            if setup is not None:
                setup(a)
            yield a
    return fixture


def rewrite_script(path, text=None, old=None, new=None):
    """Rewrites a script, with ``text`` or by replacing ``old`` (which must
    be there) with ``new``, and moves its mtime 10 s past both now and the
    old mtime, so a reload check sees the change even within the file
    system's timestamp granularity."""
    st = os.stat(path)
    if text is None:
        with open(path) as f:
            current = f.read()
        assert old in current, (path, old)
        text = current.replace(old, new)
    with open(path, 'w') as f:
        f.write(text)
    future = max(time.time(), st.st_mtime) + 10
    os.utime(path, (future, future))


def take_unreported_leftovers():
    """Leftover processes no test was failed for yet (and forgets them)."""
    out = list(_UNREPORTED)
    del _UNREPORTED[:]
    return out


def stop_all():
    with _LIVE_LOCK:
        live = list(_LIVE)
    for a in live:
        try:
            a.stop()
        except Exception:
            pass


atexit.register(stop_all)
