"""The handshake between an Apache child and a daemon, what a connection
gets before it has completed it, and how the child connects.

- Each side proves it knows the group's secret without sending it: a
  process of our own put in place of a daemon (its socket path now leads to
  us) learns nothing it can use on the real daemon, gets no request when it
  cannot prove itself, cannot relay a child to the real daemon, and is not
  even sent a Hello when it runs as another user than the group's.
- Before the handshake is done a connection holds no worker, has about two
  seconds to finish, and may send only handshake frames.
- Running out of file descriptors does not make the daemon spin.
- The child's connect never blocks: a full backlog gives 503 within
  connect-timeout, connect-timeout=0 is one attempt that waits
  socket-timeout, a busy group is not flooded with abandoned connections,
  and a socket removed by a restart says so.
"""
import glob
import json
import os
import select
import socket
import struct
import subprocess
import threading
import time

import pytest

import harness
from harness import WWW_UID, WWW_GID
import daemon_util as du

NOBODY = 65534

# Group index (their order below) -> name.
GROUPS = ['hs', 'capture', 'forge', 'relay', 'wronguid', 'gone', 'spread', 'zero', 'busy', 'fds']

CONFIG = r"""
WSGIDaemonProcess hs processes=1 threads=2 socket-timeout=30 display-name=%{GROUP}
WSGIDaemonProcess capture processes=1 threads=1 connect-timeout=3 display-name=%{GROUP}
WSGIDaemonProcess forge processes=1 threads=1 connect-timeout=3 display-name=%{GROUP}
WSGIDaemonProcess relay processes=1 threads=1 connect-timeout=3 display-name=%{GROUP}
WSGIDaemonProcess wronguid processes=1 threads=1 connect-timeout=3 display-name=%{GROUP}
WSGIDaemonProcess gone processes=1 threads=1 display-name=%{GROUP}
WSGIDaemonProcess spread processes=2 threads=1 connect-timeout=3 display-name=%{GROUP}
WSGIDaemonProcess zero processes=1 threads=1 connect-timeout=0 socket-timeout=10 display-name=%{GROUP}
WSGIDaemonProcess busy processes=1 threads=1 listen-backlog=1 connect-timeout=3 display-name=%{GROUP}
WSGIDaemonProcess fds processes=1 threads=2 display-name=%{GROUP}
WSGIScriptAlias /hs {apps}/daemon/marker.wsgi process-group=hs
WSGIScriptAlias /capture {apps}/daemon/marker.wsgi process-group=capture
WSGIScriptAlias /forge {apps}/daemon/marker.wsgi process-group=forge
WSGIScriptAlias /relay {apps}/daemon/marker.wsgi process-group=relay
WSGIScriptAlias /wronguid {apps}/daemon/marker.wsgi process-group=wronguid
WSGIScriptAlias /gone {apps}/daemon/marker.wsgi process-group=gone
WSGIScriptAlias /spread {apps}/daemon/info.wsgi process-group=spread
WSGIScriptAlias /zero {apps}/daemon/info.wsgi process-group=zero
WSGIScriptAlias /busy {apps}/daemon/info.wsgi process-group=busy
WSGIScriptAlias /fds {apps}/daemon/fds.wsgi process-group=fds
"""


@pytest.fixture(scope='module')
def server():
    # Refusals after the first are logged at debug level.
    groups = {name: 2 if name == 'spread' else 1 for name in GROUPS}
    with du.running(CONFIG, 'dhs', groups, loglevel='debug') as a:
        yield a


def group_socket(server, name, slot=0):
    """The socket of process ``slot`` of group ``name``:
    wsgi.<parent>.<generation>.<group index>.<slot>.sock."""
    index = GROUPS.index(name)
    paths = [p for p in glob.glob(os.path.join(server.run_dir, 'wsgi.*.sock'))
             if os.path.basename(p).split('.')[3:5] == [str(index), str(slot)]]
    assert len(paths) == 1, (name, paths, os.listdir(server.run_dir))
    return paths[0]


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def marker_calls(server, uri):
    calls = []
    for f in glob.glob(os.path.join(server.state, 'marker-called-*')):
        with open(f) as fh:
            calls += [line for line in fh.read().splitlines() if line.split()[0] == uri]
    return calls


def forged_request(server, uri):
    script = os.path.join(server.apps, 'daemon', 'marker.wsgi')
    return du.request_frame(script, du.minimal_environ(script, uri))


def closed(sock):
    """Whether the peer has closed ``sock`` (EOF or reset), without
    waiting; data that came first is read and dropped."""
    while select.select([sock], [], [], 0)[0]:
        try:
            if not sock.recv(65536):
                return True
        except OSError:
            return True
    return False


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


# --------------------------------------------------------------------------
# A process of our own in place of a daemon
# --------------------------------------------------------------------------

# Runs as the uid under test, handed the listening socket (already bound at
# the group's socket path).  It listens again itself, so SO_PEERCRED names
# it, and handles each connection by mode, printing a JSON report:
#   capture  records what the child sends, answering nothing;
#   forge    answers the child's Hello without the secret: the first time
#            with the child's own frame reflected back (which is all the
#            previous protocol, that sent the secret, needed), then with a
#            made-up Challenge; records what the child sends after that;
#   relay    passes the child's frames to the real daemon (argv[3]) and
#            the daemon's back, recording what the child sends after the
#            daemon's answer.
ROGUE = r'''
import json, os, socket, struct, sys

listener = socket.socket(fileno=int(sys.argv[1]))
mode, real = sys.argv[2], sys.argv[3]
listener.listen(16)
print('LISTENING', flush=True)


def recv_exact(s, n):
    data = b''
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError(data.hex())
        data += chunk
    return data


def read_frame(s):
    head = recv_exact(s, 5)
    return head + recv_exact(s, struct.unpack('>BI', head)[1])


def drain(s, secs):
    s.settimeout(secs)
    data = b''
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data


n = 0
while True:
    conn, _ = listener.accept()
    n += 1
    report = {'n': n}
    conn.settimeout(5)
    try:
        if mode == 'capture':
            report['got'] = drain(conn, 2).hex()
        elif mode == 'forge':
            hello = read_frame(conn)
            if n % 2:
                conn.sendall(hello)
            else:
                conn.sendall(struct.pack('>BI', 0x17, 65) + bytes([2]) + os.urandom(64))
            report['after'] = drain(conn, 2).hex()
        elif mode == 'relay':
            daemon = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            daemon.connect(real)
            daemon.settimeout(5)
            daemon.sendall(read_frame(conn))
            conn.sendall(read_frame(daemon))
            after = drain(conn, 2)
            report['after'] = after.hex()
            if after:
                daemon.sendall(after)
                conn.sendall(drain(daemon, 3))
    except Exception as e:
        report['error'] = repr(e)
    print(json.dumps(report), flush=True)
    conn.close()
'''


class Rogue:
    """Puts a process of ours, running as uid:gid, at group ``name``'s
    socket path; the real daemon stays reachable at ``self.real`` (a hard
    link to its socket).  Restores the real socket on exit."""

    def __init__(self, server, name, mode, uid=WWW_UID, gid=WWW_GID):
        self.path = group_socket(server, name)
        self.real = self.path + '.real'
        self.mode, self.uid, self.gid = mode, uid, gid
        self.lines = []
        self.proc = None

    def __enter__(self):
        os.link(self.path, self.real)
        os.unlink(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.path)
            # The file as the real one is: Apache's children may connect.
            os.chown(self.path, WWW_UID, WWW_GID)
            os.chmod(self.path, 0o700)
            self.proc = subprocess.Popen(
                [harness.SYSTEM_PYTHON, '-c', ROGUE, str(listener.fileno()), self.mode, self.real],
                pass_fds=[listener.fileno()], user=self.uid, group=self.gid, extra_groups=[],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=harness.APACHE_ENV, cwd='/')
        finally:
            listener.close()
        threading.Thread(target=self._read, daemon=True).start()
        assert du.wait_for(lambda: 'LISTENING' in self.lines, 10), self.lines
        return self

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.decode('utf-8', 'replace').strip())

    def reports(self, count, timeout=15):
        def ready():
            found = [json.loads(x) for x in self.lines if x.startswith('{')]
            return found if len(found) >= count else None
        found = du.wait_for(ready, timeout)
        assert found, self.lines
        return found

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        os.unlink(self.path)
        os.rename(self.real, self.path)
        return False


# --------------------------------------------------------------------------
# The handshake
# --------------------------------------------------------------------------


def test_the_secret_never_goes_on_the_wire(server):
    """A process that took the group's socket gets one Hello (a version
    and a nonce) and nothing else, and what it got does not open the real
    daemon."""
    with Rogue(server, 'capture', 'capture') as rogue:
        status = du.try_get(server, '/capture', timeout=20)[0]
        report = rogue.reports(1)[0]
    assert status == 503, status
    got = bytes.fromhex(report['got'])
    frames, rest = du.split_frames(got)
    assert rest == b'' and len(frames) == 1, got.hex()
    kind, payload = frames[0]
    assert kind == du.HELLO and len(payload) == 1 + du.NONCE_LEN and payload[0] == du.PROTOCOL_VERSION, got.hex()
    # Replayed to the real daemon (back at its path) with a request of its
    # own, it does not get the request run.
    s = connect(rogue.path)
    try:
        s.sendall(got + forged_request(server, '/replayed'))
        data, how = du.recv_until_closed(s, timeout=5)
    finally:
        s.close()
    assert how in ('eof', 'reset') and (data == b'' or du.is_challenge(data)), (data.hex(), how)
    time.sleep(0.3)
    assert marker_calls(server, '/replayed') == []
    assert marker_calls(server, '/capture') == []


def test_a_daemon_that_cannot_prove_itself_gets_no_request(server):
    """Answering Hello with the child's own frame, or with a made-up
    Challenge, gets nothing more from the child: no proof, no request."""
    offset = server.log_size()
    with Rogue(server, 'forge', 'forge') as rogue:
        statuses = [du.try_get(server, '/forge', timeout=20)[0] for _ in range(2)]
        reports = rogue.reports(2)
    assert all(s in (502, 503) for s in statuses), statuses
    assert [r.get('after') for r in reports] == ['', ''], reports
    log = server.log_since(offset)
    assert "refused the process holding" in log and 'its proof does not match' in log, log
    assert "instead of completing the handshake" in log, log
    assert marker_calls(server, '/forge') == []


def test_a_relayed_connection_is_refused(server):
    """A process that accepts the child's connection and relays it to the
    real daemon gets a daemon proof made for its own pid, which the child
    refuses before sending anything."""
    offset = server.log_size()
    with Rogue(server, 'relay', 'relay') as rogue:
        status = du.try_get(server, '/relay', timeout=20)[0]
        report = rogue.reports(1)[0]
    assert status in (502, 503), (status, report)
    assert report.get('after') == '', report
    log = server.log_since(offset)
    assert 'its proof does not match' in log, log
    assert marker_calls(server, '/relay') == []


def test_the_child_refuses_a_socket_held_by_another_user(server):
    """SO_PEERCRED: a listener that is not the group's user gets nothing,
    not even a Hello."""
    offset = server.log_size()
    with Rogue(server, 'wronguid', 'capture', uid=NOBODY, gid=NOBODY) as rogue:
        status, _, took = du.try_get(server, '/wronguid', timeout=20)
        report = rogue.reports(1)[0]
    assert status == 503, status
    assert report.get('got') == '', report
    log = server.log_since(offset)
    assert 'refused the daemon socket' in log and 'held by uid %d' % NOBODY in log, log
    assert "group's user 'www-data' (uid %d)" % WWW_UID in log, log
    assert marker_calls(server, '/wronguid') == []


# --------------------------------------------------------------------------
# Before authentication
# --------------------------------------------------------------------------


def test_unauthenticated_connections_hold_no_worker_and_are_closed(server):
    """Connections that send nothing, part of a Hello, or a Hello and then
    no proof (more of them than the group has threads) do not stop a real
    request, and each is closed once the handshake deadline has passed."""
    path = group_socket(server, 'hs')
    opened = time.time()
    silent = [connect(path) for _ in range(3)]
    partial = [connect(path) for _ in range(3)]
    for s in partial:
        s.sendall(du.hello_frame()[:3])
    no_proof = [connect(path) for _ in range(2)]
    for s in no_proof:
        s.sendall(du.hello_frame())
    try:
        status, _, took = du.try_get(server, '/hs', timeout=10)
        assert status == 200, (status, took)
        for s in silent + partial + no_proof:
            data, how = du.recv_until_closed(s, timeout=15)
            assert how in ('eof', 'reset'), (how, data.hex())
            assert data == b'' or du.is_challenge(data), data.hex()
        assert time.time() - opened < 12
    finally:
        for s in silent + partial + no_proof:
            s.close()


def test_at_most_32_connections_wait_for_their_handshake(server):
    """A 33rd connection still in its handshake closes the oldest one at
    once, well before the handshake deadline would."""
    path = group_socket(server, 'hs')
    opened = time.time()
    socks = [connect(path) for _ in range(40)]
    try:
        def oldest_closed():
            return all(closed(s) for s in socks[:8])
        assert du.wait_for(oldest_closed, 10, interval=0.02)
        took = time.time() - opened
        assert not any(closed(s) for s in socks[8:]), [closed(s) for s in socks]
        assert took < 1.5, took
    finally:
        for s in socks:
            s.close()


def test_a_slow_loris_is_cut_off_by_the_deadline(server):
    """One byte a second of a Hello, on as many connections as the group
    has threads: each is closed after the handshake deadline, long before
    the frame would be complete, and requests are served meanwhile."""
    path = group_socket(server, 'hs')
    hello = du.hello_frame()
    socks = [connect(path) for _ in range(2)]
    cut = {}
    served = None
    try:
        for i in range(len(hello)):
            for n, s in enumerate(socks):
                if n in cut:
                    continue
                try:
                    s.send(hello[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    cut[n] = i
                    continue
                if closed(s):
                    cut[n] = i
            if len(cut) == len(socks):
                break
            if i == 1:
                served = du.try_get(server, '/hs', timeout=10)[0]
            time.sleep(1)  # the pace of the attack, not a wait for a condition
    finally:
        for s in socks:
            s.close()
    assert served == 200, served
    assert len(cut) == len(socks), cut
    # Cut off after about the two-second deadline; a frame's 38 bytes
    # would have taken 38 s.
    assert max(cut.values()) < 10, cut


def test_a_request_before_authentication_is_refused_unread(server):
    """A Request frame declaring 16 MiB, sent first or in place of the
    proof, is refused on its header: the daemon closes the connection
    instead of reading (and allocating) the payload."""
    (pid,) = du.daemon_pids(server, 'hs')
    peak = du.status_field(pid, 'VmHWM')
    for opening in (b'', du.hello_frame()):
        s = connect(group_socket(server, 'hs'))
        s.settimeout(5)
        sent = 0
        try:
            s.sendall(opening + struct.pack('>BI', du.REQUEST, 16 << 20))
            chunk = b'\0' * 65536
            while sent < 16 << 20:
                sent += s.send(chunk)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        finally:
            s.close()
        assert sent < 4 << 20, (opening.hex(), sent)
    assert du.status_field(pid, 'VmHWM') - peak < 8 * 1024, (peak, du.status_field(pid, 'VmHWM'))
    assert du.daemon_pids(server, 'hs') == [pid]


def test_refused_peers_do_not_flood_the_log(server):
    """Many connections that fail the handshake give at most one line above
    debug level (the rest are at debug level), however fast they come."""
    path = group_socket(server, 'hs')
    offset = server.log_size()
    for _ in range(20):
        s = connect(path)
        try:
            s.sendall(du.hello_frame() + du.proof_frame())
            du.recv_until_closed(s, timeout=5)
        finally:
            s.close()
    assert du.wait_for(lambda: len(du.log_lines(server.log_since(offset), "refused a connection to group 'hs'")) == 20, 10), \
        server.log_since(offset)
    refusals = du.log_lines(server.log_since(offset), "refused a connection to group 'hs'")
    loud = [line for line in refusals if ':debug]' not in line]
    assert len(loud) <= 1, loud


def test_running_out_of_descriptors_does_not_spin(server):
    """While the daemon has no file descriptor left, connections waiting
    to be accepted do not make it spin: it logs once and retries now and
    then, and accepts again once descriptors are free."""
    (pid,) = du.daemon_pids(server, 'fds')
    path = group_socket(server, 'fds')
    offset = server.log_size()
    resp = server.get('/fds?hold=6')
    assert resp.status == 200 and resp.body.startswith(b'holding'), resp.body
    waiting = [connect(path) for _ in range(3)]
    try:
        cpu, t0 = cpu_seconds(pid), time.time()
        time.sleep(3)  # the window the CPU time is measured over
        used, window = cpu_seconds(pid) - cpu, time.time() - t0
        # A spinning accept loop burns a whole core; an idle daemon ~0.
        assert used < window / 10, (used, window)
        log = server.log_since(offset)
        assert len(du.log_lines(log, 'cannot accept connections')) == 1, log
        # Once the app gives the descriptors back, a Hello gets its answer.

        def answered():
            s = connect(path)
            try:
                s.settimeout(3)
                s.sendall(du.hello_frame())
                data = b''
                while len(data) < 70:
                    chunk = s.recv(70 - len(data))
                    if not chunk:
                        break
                    data += chunk
                return du.is_challenge(data)
            except OSError:
                return False
            finally:
                s.close()
        assert du.wait_for(answered, 20, interval=0.5), server.log_since(offset)
    finally:
        for s in waiting:
            s.close()
    assert du.daemon_pids(server, 'fds') == [pid]


# --------------------------------------------------------------------------
# The child's connect
# --------------------------------------------------------------------------


def start_blocked(server, path, marker, offset):
    """Starts GET ``path`` (info.wsgi with ?sleep=…) in a thread and waits
    until the app runs it (it logs ``marker``); returns the thread."""
    t = threading.Thread(target=du.try_get, args=(server, path), kwargs={'timeout': 30})
    t.start()
    assert server.wait_for_log(marker, offset, timeout=10) is not None, server.log_since(offset)
    return t


def test_a_full_backlog_gives_503_within_connect_timeout(server):
    """listen-backlog=1, the only thread busy and the backlog full: the
    child retries without blocking and answers 503 after connect-timeout
    (3 s), instead of waiting in connect() for the daemon."""
    path = group_socket(server, 'busy')
    offset = server.log_size()
    blocker = start_blocked(server, '/busy?sleep=8&log=busy-started', 'busy-started', offset)
    queued = []
    try:
        # Fill the backlog with connections that are never accepted.
        for _ in range(10):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(path)
            except BlockingIOError:
                s.close()
                break
            queued.append(s)
        else:
            pytest.fail('the backlog never filled')
        status, _, took = du.try_get(server, '/busy', timeout=20)
    finally:
        for s in queued:
            s.close()
    assert status == 503 and took < 10, (status, took)
    log = server.log_since(offset)
    assert 'within connect-timeout (3s)' in log and 'listen-backlog' in log and 'is full' in log, log
    blocker.join(30)


def test_connect_timeout_zero_waits_socket_timeout_for_a_busy_daemon(server):
    """connect-timeout=0 is one attempt, as in mod_wsgi, and the daemon
    then has socket-timeout (10 s) to take the connection: a request that
    arrives while the only thread is busy for 2 s is served."""
    offset = server.log_size()
    blocker = start_blocked(server, '/zero?sleep=2&log=zero-started', 'zero-started', offset)
    status, data, took = du.try_get(server, '/zero', timeout=20)
    blocker.join(30)
    assert status == 200, (status, took, server.log_since(offset))


def test_a_busy_group_is_not_flooded_with_abandoned_connections(server):
    """Both processes busy: a request that gives up after connect-timeout
    leaves at most one unanswered connection queued per process, not one
    per half second of waiting."""
    offset = server.log_size()
    blockers = [threading.Thread(target=du.try_get, args=(server, '/spread?sleep=8&log=spread-started-%d' % i),
                                 kwargs={'timeout': 30}) for i in range(2)]
    for t in blockers:
        t.start()
    assert du.wait_for(lambda: len(du.log_lines(server.log_since(offset), 'spread-started-')) == 2, 10), \
        server.log_since(offset)
    # (A blocker may itself have left one behind on the way.)
    before = queued_connections(server, 'spread')
    status, _, took = du.try_get(server, '/spread', timeout=20)
    assert status == 503, (status, took)
    left = queued_connections(server, 'spread') - before
    assert left <= 2, left
    for t in blockers:
        t.join(30)


def queued_connections(server, name):
    """How many connections wait in the accept queues of the group's
    sockets."""
    paths = [group_socket(server, name, slot) for slot in (0, 1)]
    found = du.listeners(paths)
    assert len(found) == len(paths), found
    return sum(listener.queued for listener in found)


def test_a_removed_socket_fails_at_once_and_says_why(server):
    """With socket rotation, a socket path that is gone belongs to an
    earlier generation: 503 at once, with a message that says so rather
    than blaming connect-timeout."""
    path = group_socket(server, 'gone')
    offset = server.log_size()
    os.rename(path, path + '.moved')
    try:
        status, _, took = du.try_get(server, '/gone', timeout=20)
    finally:
        os.rename(path + '.moved', path)
    assert status == 503 and took < 5, (status, took)
    log = server.log_since(offset)
    assert 'no longer exists' in log and 'within connect-timeout' not in log, log


RESTART_CONFIG = r"""
WSGISocketRotation Off
WSGIDaemonProcess again processes=1 threads=1 connect-timeout=10 display-name=%{GROUP}
WSGIScriptAlias /again {apps}/daemon/info.wsgi process-group=again
"""


def test_a_request_waiting_when_a_restart_replaces_the_socket_reaches_the_new_daemon():
    """With WSGISocketRotation Off a graceful restart puts a new socket at
    the same path. A request queued at the old socket (its daemon busy)
    connects again to the new one instead of waiting out connect-timeout
    for a daemon that is going away."""
    with du.running(RESTART_CONFIG, 'dhs-again', {'again': 1}) as server:
        (old,) = du.daemon_pids(server, 'again')
        (path,) = glob.glob(os.path.join(server.run_dir, 'wsgi.*.u*.0.0.sock'))
        offset = server.log_size()
        blocker = start_blocked(server, '/again?sleep=30&log=again-started', 'again-started', offset)
        result = []
        waiter = threading.Thread(target=lambda: result.append(du.try_get(server, '/again', timeout=30)))
        waiter.start()
        # Wait until it is queued at the old socket.
        (old_socket,) = {listener.inode for listener in du.listeners([path])}
        assert du.wait_for(lambda: any(listener.inode == old_socket and listener.queued >= 1
                                       for listener in du.listeners([path])), 10)
        server.graceful()
        waiter.join(30)
        (status, data, took), = result
        assert status == 200 and data['pid'] != old, (status, data, old, server.log_since(offset))
        blocker.join(30)
