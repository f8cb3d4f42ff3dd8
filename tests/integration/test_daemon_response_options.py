"""How Apache's child passes a daemon's response on to the client:
response-flush-delay (how long it waits for more of the response before it
flushes what it has: small writes are held back while the application keeps
writing, and go out once it pauses) and response-socket-timeout (the
timeout on writes to the client while the body goes out, in place of
Apache's Timeout)."""
import os
import select
import socket
import time
import uuid

import harness
import daemon_util as du

CONFIG = r"""
WSGIDaemonProcess quick threads=2 display-name=%{GROUP}
WSGIDaemonProcess patient threads=2 display-name=%{GROUP} response-flush-delay=30000
WSGIDaemonProcess impatient threads=2 display-name=%{GROUP} socket-timeout=60 response-socket-timeout=2
WSGIScriptAlias /quick {apps}/pause.wsgi process-group=quick
WSGIScriptAlias /patient {apps}/pause.wsgi process-group=patient
WSGIScriptAlias /impatient {apps}/flood.wsgi process-group=impatient
"""

STATE = '''import os
import time

STATE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'state')


def write_state(name, text=''):
    with open(os.path.join(STATE, name + '.tmp'), 'w') as f:
        f.write(text)
    os.rename(os.path.join(STATE, name + '.tmp'), os.path.join(STATE, name))
'''

# Writes "first", says so, waits for the test's go-ahead, writes "second".
PAUSE = STATE + '''

def application(environ, start_response):
    token = environ['QUERY_STRING']
    start_response('200 OK', [('Content-Type', 'text/plain')])
    yield b'first'
    write_state('yielded-' + token)
    deadline = time.time() + 60
    while not os.path.exists(os.path.join(STATE, 'go-' + token)) and time.time() < deadline:
        time.sleep(0.02)
    yield b'second'
'''

# Writes until writing fails; says how it ended.
FLOOD = STATE + '''

def application(environ, start_response):
    token = environ['QUERY_STRING']
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    sent = 0
    try:
        while sent < (4 << 30):
            yield b'x' * (256 << 10)
            sent += 256 << 10
    finally:
        write_state('closed-' + token, str(sent))
'''


def write_apps(a):
    for name, text in (('pause.wsgi', PAUSE), ('flood.wsgi', FLOOD)):
        path = os.path.join(a.apps, name)
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, 0o644)


server = du.daemon_fixture(CONFIG, 'dresponse', {'quick': 1, 'patient': 1, 'impatient': 1},
                           mpms=('event', 'prefork'), pre_start=write_apps)


def send(server, path, rcvbuf=None):
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(30)
    sock.connect(('127.0.0.1', server.port))
    sock.sendall(harness.build_request('GET', path, {'Connection': 'close'}, port=server.port))
    return sock


def received_within(sock, seconds):
    """Whatever arrives on ``sock`` within ``seconds`` (b'' if nothing)."""
    ready, _, _ = select.select([sock], [], [], seconds)
    return sock.recv(65536) if ready else b''


def read_to_end(sock, data=b''):
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def start_pause(server, group):
    token = uuid.uuid4().hex[:12]
    sock = send(server, '/%s?%s' % (group, token))
    assert server.wait_state('yielded-' + token, timeout=20) is not None, server.error_log()[-3000:]
    return token, sock


def test_a_pause_flushes_what_was_written(server):
    """By default (5 ms) what the application wrote reaches the client as
    soon as it pauses."""
    token, sock = start_pause(server, 'quick')
    with sock:
        got = b''
        deadline = time.time() + 20
        while b'first' not in got and time.time() < deadline:
            got += received_within(sock, deadline - time.time())
        assert b'first' in got and b'second' not in got, got
        open(server.state_file('go-' + token), 'w').close()
        rest = read_to_end(sock, got)
    assert rest.startswith(b'HTTP/1.1 200') and b'second' in rest


def test_a_long_flush_delay_holds_small_writes_back(server):
    """With response-flush-delay=30000 a pause shorter than that does not
    flush: "first" waits (Apache's core holds small writes back) and goes
    out with "second", in one write."""
    token, sock = start_pause(server, 'patient')
    with sock:
        assert received_within(sock, 2.0) == b''
        open(server.state_file('go-' + token), 'w').close()
        response = read_to_end(sock)
    assert response.startswith(b'HTTP/1.1 200')
    assert b'first' in response and b'second' in response


def test_response_socket_timeout_bounds_writes_to_the_client(server):
    """A client that stops reading: with response-socket-timeout=2 the
    child gives up on it within seconds (not Apache's Timeout of 30 s, nor
    socket-timeout's 60 s), so the application's writes fail and its
    iterable is closed."""
    token = uuid.uuid4().hex[:12]
    with send(server, '/impatient?' + token, rcvbuf=4096):
        began = time.time()
        sent = server.wait_state('closed-' + token, timeout=20)
        assert sent is not None, 'the application was still writing after %.0fs' % (time.time() - began)
    assert int(sent) < (4 << 30)
