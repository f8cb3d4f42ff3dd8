"""Daemon mode, one request between an Apache child and a daemon: a request
that reached a daemon is never run twice, nothing follows the end of a
response on a pooled connection, and the child holds the daemon's response
to its framing.

Apache runs one child with one request thread, so consecutive requests go
over the same pooled connection to a group's daemon."""
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

from harness import ApacheError, Connection, Response, build_request, chunk_encode
import daemon_util as du

CONFIG = r"""
LimitRequestFields 6000
WSGIDaemonProcess pair processes=2 threads=2 display-name=%{GROUP}
WSGIDaemonProcess one processes=1 threads=2 display-name=%{GROUP}
WSGIDaemonProcess reload processes=1 threads=2 display-name=%{GROUP}
WSGIDaemonProcess slow processes=1 threads=2 request-timeout=2 graceful-timeout=1 display-name=%{GROUP}
WSGIScriptAlias /pair {apps}/daemon/exchange.wsgi process-group=pair
WSGIScriptAlias /one {apps}/daemon/exchange.wsgi process-group=one
WSGIScriptAlias /limited {apps}/daemon/exchange.wsgi process-group=one
WSGIScriptAlias /override {apps}/daemon/exchange.wsgi process-group=one
WSGIScriptAlias /reload {apps}/daemon/exchange_reload.wsgi process-group=reload
WSGIScriptAlias /slow {apps}/daemon/exchange.wsgi process-group=slow
<Location /limited>
    WSGIChunkedRequest On
    LimitRequestBody 1000
</Location>
<Location /override>
    WSGIErrorOverride On
</Location>
"""

GROUPS = {'pair': 2, 'one': 1, 'reload': 1, 'slow': 1}


def copy_reload_app(apache):
    # Its own script, so that touching it restarts only the reload group.
    src = os.path.join(apache.apps, 'daemon', 'exchange.wsgi')
    dst = os.path.join(apache.apps, 'daemon', 'exchange_reload.wsgi')
    shutil.copy(src, dst)
    os.chmod(dst, 0o644)


@pytest.fixture(scope='module')
def server():
    with du.running(CONFIG, 'dexchange', GROUPS, single=True, pre_start=copy_reload_app) as a:
        yield a


@pytest.fixture
def token():
    return uuid.uuid4().hex[:12]


def socket_inodes(pid):
    """The sockets a daemon holds: its listener and its connections."""
    out = set()
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if target.startswith('socket:'):
            out.add(target)
    return out


def settled_sockets(pid):
    """The daemon's sockets once it has closed any connection the child
    dropped (it sees the end asynchronously)."""
    previous = None
    deadline = time.time() + 5
    while time.time() < deadline:
        now = socket_inodes(pid)
        if now == previous:
            return now
        previous = now
        time.sleep(0.2)
    return previous


# -- a request that reached a daemon is never sent again -------------------------


@pytest.mark.parametrize('method,how', [('GET', 'exit'), ('POST', 'kill')])
def test_request_that_kills_its_process_gets_502_and_runs_once(server, token, method, how):
    before = du.wait_daemons(server, 'pair', 2)
    # A pooled connection first: the old client re-sent a request whose
    # pooled connection died under it.
    assert du.get_json(server, '/pair')['pid'] in before
    offset = server.log_size()
    body = b'payload' if method == 'POST' else None
    r = server.request(method, '/pair?mode=die&how=%s&token=%s' % (how, token), body=body)
    assert r.status == 502, (r.raw[:300], server.log_since(offset))
    ran = du.runs(server, token)
    assert len(ran) == 1, ('the request ran more than once', ran, server.log_since(offset))
    (victim,) = ran
    # Only the process that ran it died: the other one still serves.
    (survivor,) = [p for p in before if p != victim]
    assert du.alive(survivor)
    du.wait_daemons(server, 'pair', 2, exclude={victim})
    assert survivor in du.daemon_pids(server, 'pair')
    log = server.log_since(offset)
    assert "daemon process of group 'pair' closed the connection" in log, log
    assert 'the request is not sent again' in log, log
    assert du.get_json(server, '/pair')['pid'] != victim


@pytest.mark.parametrize('stop', ['kill', 'usr1'])
def test_dead_pooled_connection_is_found_before_sending(server, token, stop):
    (pid,) = du.wait_daemons(server, 'one', 1)
    assert du.get_json(server, '/one')['pid'] == pid
    # The connection the child keeps now leads to a process that went away.
    du.kill(pid, signal.SIGKILL if stop == 'kill' else signal.SIGUSR1)
    assert du.wait_for(lambda: not du.alive(pid), 10)
    (new,) = du.wait_daemons(server, 'one', 1, exclude={pid})
    offset = server.log_size()
    r = server.post('/one?mode=count&token=%s' % token, b'posted once')
    assert r.status == 200, (r.raw[:300], server.log_since(offset))
    assert r.json() == {'pid': new, 'body': 'posted once'}
    assert du.runs(server, token) == [new]
    log = server.log_since(offset)
    # Found dead when taken from the pool, not after sending.
    assert 'before it read the request' not in log and 'closed the connection' not in log, log


def unread_bytes(pid):
    """Bytes waiting unread on the connected UNIX sockets of ``pid``."""
    out = subprocess.run(['ss', '-x', '-p', '-H', 'state', 'established'], capture_output=True, text=True).stdout
    return sum(int(line.split()[1]) for line in out.splitlines() if 'pid=%d,' % pid in line)


@pytest.mark.parametrize('method,expected', [('GET', 200), ('POST', 502)])
def test_request_the_daemon_never_read(server, token, method, expected):
    pid = du.get_json(server, '/pair')['pid']
    du.kill(pid, signal.SIGSTOP)
    body = b'never read' if method == 'POST' else None
    try:
        # Requests take turns between the group's processes: send until one
        # waits in the stopped process's socket, unread. The others are
        # answered by the other process, each with a token of its own.
        for attempt in range(10):
            tag = '%s-%d' % (token, attempt)
            result = {}
            client = threading.Thread(target=lambda: result.setdefault(
                'r', server.request(method, '/pair?mode=count&token=' + tag, body=body, timeout=30)))
            client.start()
            assert du.wait_for(lambda: unread_bytes(pid) > 0 or not client.is_alive(), 10)
            if client.is_alive():
                break
            assert result['r'].status == 200 and result['r'].json()['pid'] != pid
        else:
            raise AssertionError('no request was sent to %d' % pid)
    finally:
        # ... which is killed: its end is reset with the request unread.
        du.kill(pid, signal.SIGKILL)
        du.kill(pid, signal.SIGCONT)
    client.join(30)
    r = result['r']
    assert r.status == expected, r.raw[:300]
    if method == 'GET':
        # It cannot have run, and a bodiless GET may go to another process.
        (ran,) = du.runs(server, tag)
        assert ran != pid and r.json()['pid'] == ran
    else:
        # Anything else is not sent again.
        assert du.runs(server, tag) == []
    du.wait_daemons(server, 'pair', 2, exclude={pid})


def test_restart_is_retried(server, token):
    (pid,) = du.wait_daemons(server, 'reload', 1)
    assert du.get_json(server, '/reload')['pid'] == pid
    script = os.path.join(server.apps, 'daemon', 'exchange_reload.wsgi')
    mtime = os.stat(script).st_mtime + 10
    os.utime(script, (mtime, mtime))
    offset = server.log_size()
    # The daemon answers "restarting, not run"; the child sends it on.
    r = server.post('/reload?mode=count&token=%s' % token, b'once')
    assert r.status == 200, (r.raw[:300], server.log_since(offset))
    data = r.json()
    assert data['pid'] != pid and data['body'] == 'once'
    assert du.runs(server, token) == [data['pid']]
    assert 'exchange_reload.wsgi changed; restarting daemon process %d' % pid in server.log_since(offset)


# -- nothing after End ---------------------------------------------------------------


@pytest.mark.parametrize('mode,outcome', [
    ('close_write', 'refused RuntimeError'),
    ('close_read', "read b'first body'"),
    ('close_raise', None),
])
def test_close_does_not_disturb_the_next_request(server, token, mode, outcome):
    (pid,) = du.wait_daemons(server, 'one', 1)
    assert du.get_json(server, '/one')['pid'] == pid
    before = settled_sockets(pid)
    offset = server.log_size()
    r = server.post('/one?mode=%s&token=%s' % (mode, token), b'first body')
    # The body was complete before close() ran: the response stands.
    assert r.status == 200 and r.complete and r.body == b'body', r.raw[:300]
    if outcome:
        assert server.wait_state('close-' + token).startswith(outcome), server.log_since(offset)
    # The next request on the same pooled connection gets its own answer.
    r = server.post('/one?mode=count&token=%s-next' % token, b'second body')
    assert r.status == 200, (r.raw[:300], server.log_since(offset))
    assert r.json() == {'pid': pid, 'body': 'second body'}
    assert du.runs(server, token + '-next') == [pid]
    assert settled_sockets(pid) == before, 'the pooled connection was replaced'
    log = server.log_since(offset)
    assert 'protocol error' not in log, log
    if mode == 'close_write':
        assert 'tried to write 5 bytes after its response was complete' in log, log
    if mode == 'close_raise':
        assert 'mwrs-close-raise-' + token in log, log
        assert 'the response stands as sent' in log, log


# -- the child keeps clean connections and answers the right status ---------------


@pytest.mark.parametrize('path,status', [('/one?mode=raise', 500), ('/override?mode=notfound', 404)])
def test_error_answers_keep_the_pooled_connection(server, path, status):
    (pid,) = du.wait_daemons(server, 'one', 1)
    assert du.get_json(server, '/one')['pid'] == pid
    before = settled_sockets(pid)
    r = server.get(path)
    assert r.status == status, r.raw[:300]
    if status == 404:
        # WSGIErrorOverride: Apache's own page, not the app's body.
        assert b'the app says not found' not in r.raw
    assert du.get_json(server, '/one')['pid'] == pid
    assert settled_sockets(pid) == before, 'the pooled connection was dropped'


def test_request_that_cannot_be_encoded_is_500(server):
    # More environ entries than a Request frame may carry: a local error,
    # not a daemon that went away.
    offset = server.log_size()
    headers = [('X-H-%d' % i, 'v') for i in range(5000)]
    raw = server.raw(build_request('GET', '/one', headers, port=server.port))
    assert Response(raw).status == 500, raw[:300]
    log = server.log_since(offset)
    assert "cannot pass the request to daemon process group 'one'" in log, log
    assert 'environ pairs' in log, log


def test_request_timeout_with_the_head_queued_is_504(server):
    # The head is due but cannot leave before a body byte; the monitor's 504
    # must still reach the client, not a closed connection (502).
    (pid,) = du.wait_daemons(server, 'slow', 1)
    offset = server.log_size()
    status, _, elapsed = du.try_get(server, '/slow?mode=late_head&sleep=20', timeout=20)
    assert status == 504, (status, server.log_since(offset))
    assert elapsed < 10, elapsed
    assert du.wait_for(lambda: not du.alive(pid), 10)
    du.wait_daemons(server, 'slow', 1, exclude={pid})


def test_informational_status_is_refused(server):
    offset = server.log_size()
    r = server.get('/one?mode=status&status=103%20Early%20Hints')
    assert r.status == 500, r.raw[:300]
    assert b'103' not in r.raw.split(b'\r\n', 1)[0]
    assert b'status body' not in r.raw
    assert 'status 103 is informational (1xx)' in server.log_since(offset)


def test_chunked_body_over_limit_is_one_413(server):
    body = chunk_encode(b'x' * 5000, [700])
    raw = server.raw(build_request('POST', '/limited?mode=count', [('Transfer-Encoding', 'chunked')], body, port=server.port))
    r = Response(raw)
    assert r.status == 413, raw[:300]
    # One answer: not Apache's 413 followed by a second error document.
    assert raw.count(b'HTTP/1.1 ') == 1 and raw.count(b'<!DOCTYPE') == 1, raw


# -- the app's Content-Length, as the client sees it --------------------------------


def test_content_length_longer_than_the_body_cuts_the_response(server):
    raw = server.raw(build_request('GET', '/one?mode=cl&cl=10&body=4', port=server.port))
    r = Response(raw)
    assert r.status == 200 and r.header('Content-Length') == '10'
    assert r.body == b'xxxx' and not r.complete, raw


def test_body_beyond_content_length_is_clipped_and_keep_alive_holds(server):
    with Connection(server.port) as c:
        r = c.request('GET', '/one?mode=cl&cl=5&body=12')
        assert r.status == 200 and r.body == b'xxxxx', r.raw
        # Nothing of the excess reached the client connection.
        r = c.request('HEAD', '/one?mode=cl&cl=10&body=10')
        assert r.status == 200 and r.header('Content-Length') == '10' and r.body == b'', r.raw
        r = c.request('GET', '/one?mode=count')
        assert r.status == 200 and r.json()['body'] == '', r.raw


def test_hop_by_hop_headers_from_the_app_do_not_frame_the_client_connection(server):
    hop = '&'.join('h=' + h for h in ('Transfer-Encoding:chunked', 'Keep-Alive:timeout=99', 'Upgrade:h2c', 'X-Kept:1'))
    with Connection(server.port) as c:
        r = c.request('GET', '/one?mode=headers&' + hop)
        assert r.status == 200 and r.header('X-Kept') == '1', r.raw
        assert r.header('Upgrade') is None and 'timeout=99' not in (r.header('Keep-Alive') or ''), r.raw
        # Apache framed the body itself, so the connection is still in step.
        assert r.body == b'hello' and r.complete, r.raw
        r = c.request('GET', '/one?mode=headers&h=Connection:close')
        assert r.status == 200 and r.body == b'hello', r.raw
        # The app's Connection: close is honoured by Apache.
        assert 'close' in (r.header('Connection') or '').lower(), r.raw
        with pytest.raises((ApacheError, OSError)):
            c.request('GET', '/one?mode=count')


# -- memory ---------------------------------------------------------------------------


def test_one_big_chunk_is_relayed_in_small_frames(server):
    (child,) = server.child_pids()
    du.get_json(server, '/one')
    before = du.status_field(child, 'VmHWM')
    sock = socket.create_connection(('127.0.0.1', server.port), timeout=30)
    try:
        sock.sendall(build_request('GET', '/one?mode=big&mib=24', port=server.port))
        total = 0
        while True:
            piece = sock.recv(1 << 20)
            if not piece:
                break
            total += len(piece)
    finally:
        sock.close()
    assert total > 24 << 20
    # One 24 MiB chunk used to reach the child as 16 MiB frames, each held
    # (twice over) in memory.
    growth_mib = (du.status_field(child, 'VmHWM') - before) / 1024
    assert growth_mib < 12, growth_mib
