"""Helpers for the daemon-mode integration tests (test_daemon_*.py).

Everything here builds on harness.Apache and only reads /proc or talks to
the instance; nothing is mocked.  The generic helpers (processes, HTTP,
load) live in harness.py and are re-exported here under their old names.
"""
import contextlib
import ctypes
import datetime
import glob
import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import struct
import subprocess
import time
from typing import NamedTuple

import harness
from harness import (Apache, Load, alive, burst, cmdline, crash_lines, CRASH_PATTERNS,  # noqa: F401
                     describe_pids, get_json, ppid, status_field, try_get, uids, wait_for)

# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------


def proc_stat(pid):
    """(state, ppid) or None."""
    st = harness.proc_stat(pid)
    return (st.state, st.ppid) if st else None


def title(group):
    return ('(wsgi:%s)' % group).encode()


def daemon_pids(apache, group=None):
    """Live children of the instance's parent whose process title is
    ``(wsgi:GROUP)`` (any group if None).  Needs display-name=%{GROUP}."""
    parent = apache.read_pidfile() or apache.parent
    out = []
    for pid in apache.observe():
        if ppid(pid) != parent:
            continue
        cmd = cmdline(pid) or b''
        if group is None:
            if cmd.startswith(b'(wsgi:'):
                out.append(pid)
        elif cmd.startswith(title(group)):
            out.append(pid)
    return sorted(out)


def wait_daemons(apache, group, count, timeout=15.0, exclude=()):
    """Waits until ``count`` daemons of ``group`` run (none in exclude)."""
    def ready():
        pids = [p for p in daemon_pids(apache, group) if p not in exclude]
        return pids if len(pids) >= count else None
    pids = wait_for(ready, timeout)
    assert pids, ('expected %d daemon(s) of %r (not %r); have %r\n--- error log ---\n%s'
                  % (count, group, list(exclude), daemon_pids(apache, group),
                     apache.error_log()[-4000:]))
    return pids


def wait_replaced(apache, group, old_pid, timeout=15.0):
    """Waits until ``old_pid`` is gone and another daemon of ``group`` runs;
    returns the new pid (of a group with processes=1)."""
    assert wait_for(lambda: not alive(old_pid), timeout), describe_pids([old_pid])
    return wait_daemons(apache, group, 1, timeout, exclude={old_pid})[0]


@contextlib.contextmanager
def running(config, name, groups, mpm='event', **kw):
    """An Apache with ``config`` whose daemon groups (``{group: processes}``)
    are all up; stopped on exit."""
    with Apache(mpm, config, name=name, **kw) as a:
        for group, count in groups.items():
            wait_daemons(a, group, count)
        yield a


# The MPMs daemon-mode suites run under by default: Apache's side of daemon
# mode (the client) runs in threaded (event, worker) and forked (prefork)
# children alike.
DAEMON_MPMS = ('event', 'worker', 'prefork')


def daemon_fixture(config, name, groups, mpms=DAEMON_MPMS, **kw):
    """A module-scoped pytest fixture: one Apache with ``config`` per MPM in
    ``mpms``, handed out once the daemon groups (``{group: processes}``) run."""
    def wait_all(a):
        for group, count in groups.items():
            wait_daemons(a, group, count)
    return harness.server_fixture(config, name, mpms=mpms, setup=wait_all, **kw)


def processes_using(root):
    """Pids of every live process with an open file, cwd or command line
    inside ``root`` (an instance's temporary ServerRoot).  Daemons keep the
    instance's error log open as stderr, so they are found even after their
    titles were changed and they were re-parented."""
    found = []
    me = os.getpid()
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid == me or not alive(pid):
            continue
        hit = False
        cmd = cmdline(pid) or b''
        if root.encode() in cmd:
            hit = True
        else:
            try:
                for fd in os.listdir('/proc/%d/fd' % pid):
                    try:
                        if os.readlink('/proc/%d/fd/%s' % (pid, fd)).startswith(root + '/'):
                            hit = True
                            break
                    except OSError:
                        pass
            except OSError:
                pass
        if hit and alive(pid):
            found.append(pid)
    return sorted(found)


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------


def stream_get(apache, path, host='127.0.0.1', timeout=30.0):
    """An http.client response for streaming reads (caller closes conn)."""
    conn = http.client.HTTPConnection('127.0.0.1', apache.port, timeout=timeout)
    conn.putrequest('GET', path, skip_host=True)
    conn.putheader('Host', host)
    conn.putheader('Connection', 'close')
    conn.endheaders()
    return conn, conn.getresponse()


# --------------------------------------------------------------------------
# The daemon socket and its protocol (core/src/protocol.rs)
# --------------------------------------------------------------------------

HELLO, REQUEST, PROOF, CHALLENGE = 0x01, 0x02, 0x05, 0x17
PROTOCOL_VERSION = 2
NONCE_LEN = PROOF_LEN = 32


class Listener(NamedTuple):
    """A listening UNIX socket as ss reports it."""
    inode: str
    queued: int
    backlog: int


def listeners(paths):
    """The listening sockets placed at ``paths``: a list of Listener. ss
    shows a socket by the name it was bound to, in the private directory
    it was made in (``/proc/self/fd/N/<file name>``), so they are found by
    file name, which holds Apache's pid."""
    names = {os.path.basename(p) for p in paths}
    out = subprocess.run(['ss', '-xlnH'], stdout=subprocess.PIPE, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[:2] == ['u_str', 'LISTEN'] and os.path.basename(fields[4]) in names:
            found.append(Listener(fields[5], int(fields[2]), int(fields[3])))
    return found


def daemon_sockets(apache):
    """The daemon sockets of the instance (DefaultRuntimeDir/wsgi.*.sock)."""
    return sorted(glob.glob(os.path.join(apache.run_dir, 'wsgi.*.sock')))


def frame(kind, payload):
    return struct.pack('>BI', kind, len(payload)) + payload


def hello_frame(nonce=None, version=PROTOCOL_VERSION):
    """The child's first frame: a version and a nonce (random if None)."""
    return frame(HELLO, bytes([version]) + (os.urandom(NONCE_LEN) if nonce is None else nonce))


def proof_frame(proof=None):
    """A Proof frame (random, so wrong, if None)."""
    return frame(PROOF, os.urandom(PROOF_LEN) if proof is None else proof)


def split_frames(data):
    """[(kind, payload)] of the whole frames at the start of data, and the
    bytes left after them."""
    frames = []
    while len(data) >= 5:
        kind, n = struct.unpack('>BI', data[:5])
        if len(data) < 5 + n:
            break
        frames.append((kind, data[5:5 + n]))
        data = data[5 + n:]
    return frames, data


def is_challenge(data):
    """Whether data is exactly one daemon Challenge frame of this protocol."""
    frames, rest = split_frames(data)
    return (rest == b'' and len(frames) == 1 and frames[0][0] == CHALLENGE
            and len(frames[0][1]) == 1 + NONCE_LEN + PROOF_LEN and frames[0][1][0] == PROTOCOL_VERSION)


SECRET_LEN = 32


def handshake_proof(secret, side, group, child_nonce, daemon_nonce, child_pid):
    """A handshake proof (see core/src/handshake.rs): HMAC-SHA256 keyed with
    the group's secret over who proves it, the protocol version, the group,
    both nonces and the Apache child's pid."""
    label = ('mod_wsgi-rs %s proof' % side).encode()
    group = group.encode()
    transcript = (bytes([len(label)]) + label + bytes([PROTOCOL_VERSION])
                  + struct.pack('>I', len(group)) + group + child_nonce + daemon_nonce
                  + struct.pack('>I', child_pid))
    return hmac.new(secret, transcript, hashlib.sha256).digest()


def authenticate(sock, secret, group):
    """The child's side of the daemon handshake for ``group``, done with
    ``secret`` (a group secret is SECRET_LEN random bytes): Hello, the
    daemon's Challenge, then our proof. With any secret but the group's
    own, the daemon must never run a request sent afterwards; the tests
    that check this use a random secret of the right shape."""
    nonce = os.urandom(NONCE_LEN)
    sock.sendall(hello_frame(nonce))
    head = _recv_exactly(sock, 5)
    kind, length = struct.unpack('>BI', head)
    payload = _recv_exactly(sock, length)
    assert kind == CHALLENGE and len(payload) == 1 + NONCE_LEN + PROOF_LEN, (kind, payload.hex())
    daemon_nonce = payload[1:1 + NONCE_LEN]
    sock.sendall(proof_frame(handshake_proof(secret, 'child', group, nonce, daemon_nonce, os.getpid())))


def _recv_exactly(sock, n):
    data = b''
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionResetError('the daemon closed the connection during the handshake')
        data += chunk
    return data


def forged_request(apache, socket_path, uri, secret=None, group=''):
    """Connects to a daemon socket as root, does the handshake for
    ``group`` with ``secret`` (default: a random one of the right shape,
    i.e. not the group's), sends a well-formed request for
    daemon/marker.wsgi with REQUEST_URI ``uri``, and reads until the daemon
    closes.  Returns (bytes received after the handshake, how) with how one
    of 'eof', 'reset', 'timeout' (see recv_until_closed)."""
    script = os.path.join(apache.apps, 'daemon', 'marker.wsgi')
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(socket_path)
        s.settimeout(5)
        try:
            authenticate(s, secret if secret is not None else os.urandom(SECRET_LEN), group)
            s.sendall(request_frame(script, minimal_environ(script, uri)))
        except (BrokenPipeError, ConnectionResetError):
            pass
        return recv_until_closed(s, timeout=5)
    finally:
        s.close()


def _blob(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack('>I', len(b)) + b


def request_frame(script, environ, callable_='application', mtime=0):
    payload = (_blob(script) + struct.pack('>q', mtime) + _blob(callable_) + b'\x00'
               + _blob('') + struct.pack('>q', int(time.time() * 1e6))
               + struct.pack('>I', len(environ)))
    for k, v in environ.items():
        payload += _blob(k) + _blob(v)
    return frame(REQUEST, payload)


def minimal_environ(script, uri='/'):
    return {
        'REQUEST_METHOD': 'GET', 'REQUEST_URI': uri, 'SCRIPT_NAME': uri,
        'PATH_INFO': '', 'QUERY_STRING': '', 'SERVER_NAME': '127.0.0.1',
        'SERVER_PORT': '80', 'SERVER_PROTOCOL': 'HTTP/1.1', 'REMOTE_ADDR': '127.0.0.1',
        'SCRIPT_FILENAME': script, 'wsgi.url_scheme': 'http',
        'mod_wsgi.process_group': 'x', 'mod_wsgi.application_group': '',
    }


def recv_until_closed(sock, timeout=5.0):
    """Reads until EOF/reset; returns (bytes, how) where how is 'eof',
    'reset' or 'timeout'."""
    sock.settimeout(timeout)
    data = b''
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, 'reset'
        except socket.timeout:
            return data, 'timeout'
        if not chunk:
            return data, 'eof'
        data += chunk
    return data, 'timeout'


def run_as(uid, gid, code, timeout=20):
    """Runs ``python3 -c code`` as uid/gid (no supplementary groups);
    returns (exit code, combined output)."""
    p = subprocess.run([harness.SYSTEM_PYTHON, '-c', code], user=uid, group=gid,
                       extra_groups=[], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, env=harness.APACHE_ENV, cwd='/')
    return p.returncode, p.stdout.decode('utf-8', 'replace')


# --------------------------------------------------------------------------
# An Apache started inside a user namespace
# --------------------------------------------------------------------------

CLONE_NEWUSER = 0x10000000


def run_in_userns(argv, idmap, env=None, cwd=None):
    """Runs argv as root inside a new user namespace whose uid and gid maps
    are ``idmap`` (uid_map/gid_map text, e.g. "0 0 34" maps 0..33 to
    themselves, so www-data (33) exists and nobody (65534) does not).
    Returns (exit code, output).  The namespace shares the network, pid and
    mount namespaces with the caller, so the server is reachable and can be
    signalled from outside."""
    libc = ctypes.CDLL(None, use_errno=True)
    out_r, out_w = os.pipe()
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(r1)
            os.close(w2)
            os.close(out_r)
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            if libc.unshare(CLONE_NEWUSER) != 0:
                os.write(w1, b'E')
                os._exit(120)
            os.write(w1, b'U')
            if os.read(r2, 1) != b'M':
                os._exit(121)
            os.setgroups([])
            os.setgid(0)
            os.setuid(0)
            if cwd:
                os.chdir(cwd)
            os.execve(argv[0], argv, env if env is not None else dict(os.environ))
        except BaseException as e:  # noqa: BLE001
            try:
                os.write(2, ('userns child: %r\n' % (e,)).encode())
            finally:
                os._exit(122)
    os.close(w1)
    os.close(r2)
    os.close(out_w)
    try:
        if os.read(r1, 1) != b'U':
            raise OSError('unshare(CLONE_NEWUSER) failed')
        with open('/proc/%d/uid_map' % pid, 'w') as f:
            f.write(idmap)
        with open('/proc/%d/gid_map' % pid, 'w') as f:
            f.write(idmap)
        os.write(w2, b'M')
    finally:
        os.close(w2)
        os.close(r1)
    chunks = []
    while True:
        data = os.read(out_r, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(out_r)
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st), b''.join(chunks).decode('utf-8', 'replace')


class UsernsApache(Apache):
    """An Apache whose ``-k start`` runs inside a user namespace mapping
    only uids/gids 0..33 (root .. www-data).  Stop, graceful and the
    fallback kill act from outside, which works since pids and signals are
    shared."""

    IDMAP = '0 0 34\n'

    def _ctl(self, action, timeout=30):
        if action != 'start':
            return super()._ctl(action, timeout)
        code, out = run_in_userns([harness.APACHE_BIN, '-f', self.conf_path, '-k', 'start'],
                                  self.IDMAP, env=harness.APACHE_ENV, cwd=self.root)
        return subprocess.CompletedProcess([], code, out.encode(), None)


def userns_available():
    try:
        code, out = run_in_userns(['/bin/true'], '0 0 34\n')
        return code == 0
    except OSError:
        return False


# --------------------------------------------------------------------------
# Logs
# --------------------------------------------------------------------------

LOG_TIME = re.compile(r'^\[(\w{3} \w{3} \d+ \d\d:\d\d:\d\d)\.(\d+) (\d{4})\]')


def log_lines(text, needle):
    return [line for line in text.splitlines() if needle in line]


def log_seconds(line):
    """The time of an Apache error-log line, in seconds since the epoch
    (local time, as Apache writes it), or None."""
    m = LOG_TIME.match(line)
    if not m:
        return None
    when = datetime.datetime.strptime('%s %s' % (m.group(1), m.group(3)), '%a %b %d %H:%M:%S %Y')
    return when.timestamp() + float('0.' + m.group(2))


def parse_json(body):
    return json.loads(body.decode('utf-8'))


def kill(pid, sig):
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def runs(apache, token):
    """Pids of the processes that ran the request named ``token`` of the
    apps/daemon/exchange.wsgi app (one line per run, in order)."""
    try:
        with open(apache.state_file('runs-' + token)) as f:
            return [int(line) for line in f.read().split()]
    except FileNotFoundError:
        return []
