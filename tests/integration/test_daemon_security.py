"""Who may talk to a daemon: the socket is 0700 and owned by Apache's
User, a peer with another uid is refused (SO_PEERCRED) even when the file
mode would let it in, and a peer that is allowed to connect must still
prove it knows the group's secret before any request is run (the
handshake itself is tested in test_daemon_handshake.py)."""
import os
import socket
import stat
import time

import pytest

from harness import Apache, WWW_UID, WWW_GID
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


def test_socket_location_mode_and_owner(server):
    parent = server.parent
    for i, path in enumerate(sockets(server)):
        # DefaultRuntimeDir/wsgi.<parent pid>.<generation>.<group index>.<process slot>.sock
        # (each group here has processes=1, so the slot is 0)
        assert os.path.basename(path) == 'wsgi.%d.0.%d.0.sock' % (parent, i), path
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
        assert st.st_uid == WWW_UID
        assert st.st_gid == WWW_GID


def test_root_may_connect(server):
    path = sockets(server)[0]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    finally:
        s.close()


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


def forged_request(server):
    """A well-formed request for marker.wsgi, which records every call it
    gets."""
    script = os.path.join(server.apps, 'daemon', 'marker.wsgi')
    return du.request_frame(script, du.minimal_environ(script, '/forged'))


def attack_payload(server):
    """A Hello, a made-up proof, and a request."""
    return du.hello_frame() + du.proof_frame() + forged_request(server)


def test_other_uid_cannot_connect_mode_0700(server):
    path = sockets(server)[0]
    code, out = du.run_as(NOBODY, NOGROUP, CONNECT_AS % (path, attack_payload(server).hex()))
    assert code == 0, out
    assert out.strip() == 'ERR EACCES', out
    assert marker_calls(server) == []


def test_other_uid_refused_by_peer_credentials(server):
    """Even with the file mode opened up, a uid other than Apache's User
    (or root) is refused by the daemon itself."""
    path = sockets(server)[0]
    offset = server.log_size()
    os.chmod(path, 0o777)
    try:
        code, out = du.run_as(NOBODY, NOGROUP, CONNECT_AS % (path, attack_payload(server).hex()))
    finally:
        os.chmod(path, 0o700)
    assert code == 0, out
    lines = out.split()
    assert lines[0] == 'CONNECTED', out
    assert lines[1] in ('EOF', 'RESET') and lines[2] == '0', out
    text = server.wait_for_log("refused a connection to group 'sec' from uid 65534", offset, timeout=5)
    assert text is not None, server.log_since(offset)
    time.sleep(0.3)
    assert marker_calls(server) == []
    # Still serving Apache.
    r = server.get('/marker')
    assert r.status == 200
    assert len(marker_calls(server)) == 1


@pytest.mark.parametrize('who', ['root', 'www-data'])
def test_wrong_secret_closed_and_app_not_called(server, who):
    path = sockets(server)[0]
    before = marker_calls(server)
    offset = server.log_size()
    payload = attack_payload(server)
    # All the peer gets is the daemon's Challenge (the answer to Hello).
    if who == 'root':
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            s.sendall(payload)
            data, how = du.recv_until_closed(s, timeout=5)
        finally:
            s.close()
        assert du.is_challenge(data) and how in ('eof', 'reset'), (data, how)
    else:
        # Apache's own user passes the uid check; only the proof stops it.
        code, out = du.run_as(WWW_UID, WWW_GID, CONNECT_AS % (path, payload.hex()))
        assert code == 0, out
        lines = out.split()
        assert lines[0] == 'CONNECTED' and lines[1] in ('EOF', 'RESET') and lines[2] == '70', out
    text = server.wait_for_log("refused a connection to group 'sec' from pid",
                               offset, timeout=5)
    assert text is not None, server.log_since(offset)
    assert 'its proof does not match the group' in text, text
    time.sleep(0.3)
    assert marker_calls(server) == before


def test_other_protocol_version_is_refused(server):
    """A Hello of the right shape with another version byte (the previous
    protocol's) gets nothing back, and the request after it is not run."""
    path = sockets(server)[0]
    offset = server.log_size()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        s.sendall(du.hello_frame(b'\xff' * 32, version=1) + forged_request(server))
        data, how = du.recv_until_closed(s, timeout=5)
    finally:
        s.close()
    assert data == b'' and how in ('eof', 'reset'), (data, how)
    text = server.wait_for_log('did not authenticate: it speaks protocol version 1', offset, timeout=5)
    assert text is not None, server.log_since(offset)
    time.sleep(0.2)
    assert all('/forged' not in line for line in marker_calls(server))


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
    time.sleep(0.2)
    assert marker_calls(server) == before
    # The daemon is unharmed.
    assert du.daemon_pids(server, 'sec') == [pid]
    assert server.get('/marker').status == 200
    assert len(marker_calls(server)) == len(before) + 1


def test_forged_requests_never_ran(server):
    assert all('/forged' not in line for line in marker_calls(server)), marker_calls(server)
    log = server.error_log()
    assert not du.crash_lines(log), du.crash_lines(log)
