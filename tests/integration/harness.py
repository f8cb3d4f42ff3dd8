"""Test harness for the mod_wsgi-rs integration suite.

``Apache`` owns one private httpd instance: a temporary, world-readable
ServerRoot under /tmp, a free loopback port, its own httpd.conf, error log,
pid file and copies of the test applications.  The instance is started with
``/usr/sbin/apache2 -f <conf> -k start`` and always stopped (and, if needed,
killed) by ``stop()``, which is idempotent.

The HTTP helpers speak HTTP/1.1 over raw sockets so that tests can send
malformed or chunked requests and inspect truncated responses byte by byte.
"""

import atexit
import fcntl
import hashlib
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

APACHE_BIN = '/usr/sbin/apache2'
MODULES_DIR = '/usr/lib/apache2/modules'
SYSTEM_PYTHON = '/usr/bin/python3'

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


WWW_UID = pwd.getpwnam('www-data').pw_uid
WWW_GID = pwd.getpwnam('www-data').pw_gid

# Every instance that was started and not yet stopped; stopped at exit.
_LIVE = set()
_LIVE_LOCK = threading.Lock()

# Modules loaded into every instance (besides the MPM and wsgi_module).
BASE_MODULES = ['authz_core', 'alias', 'env', 'mime', 'dir']

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


def _read_cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read().split(b'\0')
    except OSError:
        return None


def _read_comm(pid):
    try:
        with open('/proc/%d/comm' % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def _ppid(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            data = f.read()
        # comm may contain spaces; fields after the last ')'.
        return int(data.rsplit(')', 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _is_zombie(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            data = f.read()
        return data.rsplit(')', 1)[1].split()[0] == 'Z'
    except (OSError, IndexError):
        return True


def _pid_alive(pid):
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


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
        self._prepare_tree()
        if ssl:
            self._make_cert()
        if pre_start is not None:
            pre_start(self)
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
        # Everything readable by www-data; the state dir writable by it.
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

    def make_venv(self):
        """Create a venv (system python, no pip) at {venv}."""
        subprocess.run([SYSTEM_PYTHON, '-m', 'venv', '--without-pip', self.venv],
                       check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for dirpath, dirnames, filenames in os.walk(self.venv):
            os.chmod(dirpath, 0o755)

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
            'User www-data',
            'Group www-data',
            'ErrorLog "%s"' % self.errlog,
            'LogLevel %s' % self.loglevel,
            'ServerTokens Full',
            'TypesConfig /etc/mime.types',
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
        # to make Debian's mod_wsgi 4.9.4 stop quickly under event).
        if os.environ.get('MWRS_EXTRA_CONFIG') and self.load_wsgi:
            lines.append(os.environ['MWRS_EXTRA_CONFIG'])
        lines.append('# ---- test snippet ----')
        lines.append(self.config)
        with open(self.conf_path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        os.chmod(self.conf_path, 0o644)

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
        with _LIVE_LOCK:
            _LIVE.add(self)
        self.started = True
        p = self._ctl('start')
        if p.returncode != 0:
            out = p.stdout.decode('utf-8', 'replace')
            self.stop()
            raise ApacheError('apache2 -k start failed (%d): %s\n--- error log ---\n%s'
                              % (p.returncode, out, self.error_log()))
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.parent = self.read_pidfile()
            if self.parent is not None:
                break
            time.sleep(0.05)
        if self.parent is None:
            log = self.error_log()
            self.stop()
            raise ApacheError('no pid file after start\n--- error log ---\n' + log)
        self._known_pids.add(self.parent)
        self.wait_ready(deadline)
        return self

    def wait_ready(self, deadline):
        """Wait until a child answers (any HTTP status) or fail with the log."""
        last = None
        while time.time() < deadline:
            if not _pid_alive(self.parent):
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

    def _note_pids(self):
        for pid in self.instance_pids():
            self._known_pids.add(pid)

    def instance_pids(self):
        """All live (non-zombie) apache2 processes belonging to this instance."""
        conf = self.conf_path.encode()
        pids = []
        for name in os.listdir('/proc'):
            if not name.isdigit():
                continue
            pid = int(name)
            cmd = _read_cmdline(pid)
            if not cmd or conf not in cmd:
                continue
            if _read_comm(pid) != 'apache2':
                continue
            if _is_zombie(pid):
                continue
            pids.append(pid)
        return sorted(pids)

    def child_pids(self):
        parent = self.read_pidfile() or self.parent
        return [p for p in self.instance_pids() if p != parent and _ppid(p) == parent]

    def graceful(self, wait=True):
        p = self._ctl('graceful')
        if p.returncode != 0:
            raise ApacheError('graceful failed: %s' % p.stdout.decode('utf-8', 'replace'))
        if wait:
            self._wait_generation()

    def restart(self, wait=True):
        p = self._ctl('restart')
        if p.returncode != 0:
            raise ApacheError('restart failed: %s' % p.stdout.decode('utf-8', 'replace'))
        if wait:
            self._wait_generation()

    def _wait_generation(self, timeout=15.0):
        deadline = time.time() + timeout
        self.wait_ready(deadline)
        self.parent = self.read_pidfile() or self.parent

    def stop(self, kill=True, timeout=15.0):
        """Stop the instance.  With ``kill`` any process still alive after
        ``timeout`` is SIGKILLed.  Returns the pids still alive afterwards
        (before killing, if ``kill`` is false)."""
        if not self.started:
            return []
        parent = self.read_pidfile() or self.parent
        try:
            self._ctl('stop', timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not _pid_alive(parent) and not self.instance_pids():
                break
            time.sleep(0.05)
        left = self.instance_pids()
        if kill:
            for _ in range(3):
                pids = self.instance_pids()
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.2)
            self.started = False
            with _LIVE_LOCK:
                _LIVE.discard(self)
        return left

    def cleanup(self):
        self.stop()
        if os.environ.get('MWRS_KEEP'):
            return
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.cleanup()
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
        path = self.state_file(name)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(path):
                time.sleep(0.02)
                with open(path) as f:
                    return f.read()
            time.sleep(0.05)
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


def stop_all():
    with _LIVE_LOCK:
        live = list(_LIVE)
    for a in live:
        try:
            a.stop()
        except Exception:
            pass


atexit.register(stop_all)
