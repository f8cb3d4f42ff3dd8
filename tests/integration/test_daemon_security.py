"""Who may talk to a daemon: the socket is 0700 and owned by Apache's
User, a peer with another uid is refused (SO_PEERCRED) even when the file
mode would let it in, and a peer that is allowed to connect must still
prove it knows the group's secret before any request is run (the
handshake itself is tested in test_daemon_handshake.py).

Every attempt to run a request without the secret asks for marker.wsgi
with a REQUEST_URI carrying a token of its own, and the check is that no
call with that token was recorded, while a genuine request through Apache
is.  (There is no test that root may connect: root bypasses the file mode,
so that would say nothing about the module; a root peer is still held to
the secret, which test_wrong_secret_closed_and_app_not_called[root] checks.)
"""
import os
import socket
import stat
import uuid

import pytest

import harness
import daemon_util as du

NOBODY = 65534
NOGROUP = 65534

CONFIG = r"""
WSGIDaemonProcess sec processes=1 threads=2 display-name=%{GROUP}
WSGIDaemonProcess sec2 processes=1 threads=1 display-name=%{GROUP}
WSGIScriptAlias /marker {apps}/daemon/marker.wsgi process-group=sec
WSGIScriptAlias /marker2 {apps}/daemon/marker.wsgi process-group=sec2
"""


@pytest.fixture(scope='module')
def server():
    # Refusals after the first are logged at debug level.
    with du.running(CONFIG, 'dsec', {'sec': 1, 'sec2': 1}, loglevel='debug') as a:
        yield a


def called_files(server):
    return sorted(f for f in os.listdir(server.state) if f.startswith('marker-called-'))


def marker_calls(server):
    out = []
    for f in called_files(server):
        with open(os.path.join(server.state, f)) as fh:
            out += fh.read().splitlines()
    return out


def sockets(server):
    socks = du.daemon_sockets(server)
    assert len(socks) == 2, (socks, os.listdir(server.run_dir))
    return socks


def new_uri():
    return '/forged-' + uuid.uuid4().hex[:12]


def ran(server, uri):
    """The marker calls whose REQUEST_URI contains ``uri``."""
    return [line for line in marker_calls(server) if uri in line]


def genuine_request_runs(server, path='/marker'):
    """A request through Apache reaches marker.wsgi and is recorded: the
    record that the forged requests are checked against works."""
    uri = path + '?genuine-' + uuid.uuid4().hex[:12]
    r = server.get(uri)
    assert r.status == 200, r.raw[:300]
    assert len(ran(server, uri)) == 1, marker_calls(server)


def test_socket_location_mode_and_owner(server):
    parent = server.parent
    for i, path in enumerate(sockets(server)):
        # DefaultRuntimeDir/wsgi.<parent pid>.<generation>.<group index>.<process slot>.sock
        # (each group here has processes=1, so the slot is 0)
        assert os.path.basename(path) == 'wsgi.%d.0.%d.0.sock' % (parent, i), path
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
        assert st.st_uid == harness.WWW_UID
        assert st.st_gid == harness.WWW_GID


CONNECT_AS = r"""
import socket, sys, errno
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1] if len(sys.argv) > 1 else %r)
except OSError as e:
    print('ERR', errno.errorcode.get(e.errno, e.errno))
    sys.exit(0)
print('CONNECTED')
try:
    s.sendall(bytes.fromhex(%r))
except (BrokenPipeError, ConnectionResetError):
    pass
s.settimeout(5)
data = b''
try:
    while True:
        d = s.recv(65536)
        if not d:
            print('EOF', len(data))
            break
        data += d
except ConnectionResetError:
    print('RESET', len(data))
except socket.timeout:
    print('TIMEOUT', len(data))
"""


def attack_payload(server, uri='/forged'):
    """A Hello, a made-up proof, and a well-formed request for marker.wsgi
    (which records every call it gets)."""
    script = os.path.join(server.apps, 'daemon', 'marker.wsgi')
    return du.hello_frame() + du.proof_frame() + du.request_frame(script, du.minimal_environ(script, uri))


def test_other_uid_cannot_connect_mode_0700(server):
    path = sockets(server)[0]
    uri = new_uri()
    code, out = du.run_as(NOBODY, NOGROUP, CONNECT_AS % (path, attack_payload(server, uri).hex()))
    assert code == 0, out
    assert out.strip() == 'ERR EACCES', out
    assert ran(server, uri) == []


def test_other_uid_refused_by_peer_credentials(server):
    """Even with the file mode opened up, a uid other than Apache's User
    (or root) is refused by the daemon itself."""
    path = sockets(server)[0]
    uri = new_uri()
    offset = server.log_size()
    os.chmod(path, 0o777)
    try:
        code, out = du.run_as(NOBODY, NOGROUP, CONNECT_AS % (path, attack_payload(server, uri).hex()))
    finally:
        os.chmod(path, 0o700)
    assert code == 0, out
    lines = out.split()
    assert lines[0] == 'CONNECTED', out
    assert lines[1] in ('EOF', 'RESET') and lines[2] == '0', out
    text = server.wait_for_log("refused a connection to group 'sec' from uid 65534", offset, timeout=5)
    assert text is not None, server.log_since(offset)
    # The daemon closed the connection, so nothing sent on it can run later.
    assert ran(server, uri) == []
    # Still serving Apache.
    genuine_request_runs(server)


@pytest.mark.parametrize('who', ['root', 'www-data'])
def test_wrong_secret_closed_and_app_not_called(server, who):
    path = sockets(server)[0]
    uri = new_uri()
    offset = server.log_size()
    if who == 'root':
        # A full handshake with a random secret: its proof is refused.
        data, how = du.forged_request(server, path, uri, group='sec')
        assert data == b'' and how in ('eof', 'reset'), (data, how)
    else:
        # Apache's own user passes the uid check; only the proof stops it.
        # All it gets is the daemon's Challenge (the answer to Hello).
        payload = attack_payload(server, uri)
        code, out = du.run_as(harness.WWW_UID, harness.WWW_GID, CONNECT_AS % (path, payload.hex()))
        assert code == 0, out
        lines = out.split()
        assert lines[0] == 'CONNECTED' and lines[1] in ('EOF', 'RESET') and lines[2] == '70', out
    text = server.wait_for_log("refused a connection to group 'sec' from pid",
                               offset, timeout=5)
    assert text is not None, server.log_since(offset)
    assert 'its proof does not match the group' in text, text
    assert ran(server, uri) == []
    genuine_request_runs(server)


def test_other_protocol_version_is_refused(server):
    """A Hello of the right shape with another version byte (the previous
    protocol's) gets nothing back, and the request after it is not run."""
    path = sockets(server)[0]
    uri = new_uri()
    offset = server.log_size()
    script = os.path.join(server.apps, 'daemon', 'marker.wsgi')
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        s.sendall(du.hello_frame(b'\xff' * 32, version=1) + du.request_frame(script, du.minimal_environ(script, uri)))
        data, how = du.recv_until_closed(s, timeout=5)
    finally:
        s.close()
    assert data == b'' and how in ('eof', 'reset'), (data, how)
    text = server.wait_for_log('did not authenticate: it speaks protocol version 1', offset, timeout=5)
    assert text is not None, server.log_since(offset)
    assert ran(server, uri) == []
    genuine_request_runs(server)


@pytest.mark.parametrize('group,index', [('sec', 0), ('sec2', 1)])
def test_client_without_the_groups_secret_cannot_run_a_request(server, group, index):
    """A client that does not know a group's secret cannot get a request
    run by its daemons: here a well-formed handshake with a random secret
    of the right length, as a process holding some other group's secret
    would make."""
    path = sockets(server)[index]
    uri = new_uri()
    offset = server.log_size()
    data, how = du.forged_request(server, path, uri, group=group)
    assert data == b'' and how in ('eof', 'reset'), (data, how)
    text = server.wait_for_log("refused a connection to group '%s' from pid" % group, offset, timeout=5)
    assert text is not None, server.log_since(offset)
    assert 'its proof does not match the group' in text, text
    assert ran(server, uri) == []
    genuine_request_runs(server, '/marker2' if group == 'sec2' else '/marker')


@pytest.mark.parametrize('garbage', [
    b'GET / HTTP/1.0\r\n\r\n',
    b'\x02' + b'\xff' * 64,            # a Request frame before any Hello
    b'\x01\x00\x00\x00\x05hello',     # a Hello of the wrong length
    os.urandom(4096),
])
def test_garbage_closed_and_app_not_called(server, garbage):
    (pid,) = du.daemon_pids(server, 'sec')
    path = sockets(server)[0]
    before = marker_calls(server)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        try:
            s.sendall(garbage)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, how = du.recv_until_closed(s, timeout=5)
    finally:
        s.close()
    assert data == b'' and how in ('eof', 'reset'), (data[:100], how)
    assert marker_calls(server) == before
    # The daemon is unharmed.
    assert du.daemon_pids(server, 'sec') == [pid]
    genuine_request_runs(server)
    assert len(marker_calls(server)) == len(before) + 1


def test_forged_requests_never_ran(server):
    """Every way of reaching a daemon without the secret, tried here (so the
    test does not depend on the others having run), runs nothing, while a
    genuine request right after does run; and nothing crashed."""
    uri = new_uri()
    for index in (0, 1):
        du.forged_request(server, sockets(server)[index], uri)
    path = sockets(server)[0]
    code, out = du.run_as(harness.WWW_UID, harness.WWW_GID,
                          CONNECT_AS % (path, attack_payload(server, uri).hex()))
    assert code == 0 and out.startswith('CONNECTED'), out
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        script = os.path.join(server.apps, 'daemon', 'marker.wsgi')
        s.sendall(du.request_frame(script, du.minimal_environ(script, uri)))   # no Hello at all
        du.recv_until_closed(s, timeout=5)
    finally:
        s.close()
    genuine_request_runs(server)
    genuine_request_runs(server, '/marker2')
    assert ran(server, uri) == [], marker_calls(server)
    log = server.error_log()
    assert not du.crash_lines(log), du.crash_lines(log)
