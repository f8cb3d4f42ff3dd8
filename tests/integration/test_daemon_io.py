"""Daemon mode, what goes over the wire: malformed and oversized response
headers, a large upload and a large streamed download with flat memory,
and a client that disconnects in the middle of a streamed response."""
import hashlib
import os
import socket
import threading
import time
import uuid

import pytest

from harness import Response, build_request
import daemon_util as du

CONFIG = r"""
WSGIDaemonProcess io processes=1 threads=4 display-name=%{GROUP}
WSGIDaemonProcess bighdr processes=1 threads=2 header-buffer-size=65536 display-name=%{GROUP}
WSGIScriptAlias /headers {apps}/daemon/headers.wsgi process-group=io
WSGIScriptAlias /bighdr {apps}/daemon/headers.wsgi process-group=bighdr
WSGIScriptAlias /upload {apps}/daemon/upload.wsgi process-group=io
WSGIScriptAlias /download {apps}/daemon/download.wsgi process-group=io
WSGIScriptAlias /closetrack {apps}/daemon/closetrack.wsgi process-group=io
WSGIScriptAlias /info {apps}/daemon/info.wsgi process-group=io
LimitRequestBody 0
"""

MB = 1024 * 1024


server = du.daemon_fixture(CONFIG, 'dio', {'io': 1, 'bighdr': 1})


# -- response headers ---------------------------------------------------------

@pytest.mark.parametrize('mode', ['crlf', 'lf', 'name'])
def test_malformed_header_500_and_never_on_the_wire(server, mode):
    (pid,) = du.daemon_pids(server, 'io')
    offset = server.log_size()
    raw = server.raw(du_request('/headers?mode=' + mode))
    resp = Response(raw)
    assert resp.status == 500, raw[:600]
    assert b'X-Injected' not in raw
    assert b'X-Split' not in raw
    assert b'X-Bad' not in raw
    assert b'headers ' + mode.encode() not in raw
    log = server.log_since(offset)
    assert 'headers.wsgi' in log, log
    # The daemon survives and serves the next request.
    assert du.get_json(server, '/info')['pid'] == pid


def du_request(path, **kw):
    return build_request('GET', path, **kw)


def test_headers_over_header_buffer_size_500(server):
    (pid,) = du.daemon_pids(server, 'io')
    offset = server.log_size()
    # 100 headers of 1000 bytes: about 100 KB, over the default 32768.
    raw = server.raw(du_request('/headers?mode=many&n=100&size=1000'))
    resp = Response(raw)
    assert resp.status == 500, raw[:600]
    assert b'X-Big-' not in raw
    log = server.log_since(offset)
    assert 'header-buffer-size (32768 bytes)' in log, log
    # 50 x 1000 (about 50 KB) is also over the default...
    assert server.get('/headers?mode=many&n=50&size=1000').status == 500
    # ...while 30 x 1000 (about 30.5 KB) fits.
    r = server.get('/headers?mode=many&n=30&size=1000')
    assert r.status == 200
    assert [r.header('X-Big-%d' % i) for i in range(30)] == ['v' * 1000] * 30
    assert du.get_json(server, '/info')['pid'] == pid


def test_header_buffer_size_option_raises_the_limit(server):
    r = server.get('/bighdr?mode=many&n=50&size=1000')
    assert r.status == 200, r.raw[:600]
    assert r.body == b'headers many'
    assert [r.header('X-Big-%d' % i) for i in range(50)] == ['v' * 1000] * 50
    # The raised limit is still a limit.
    offset = server.log_size()
    assert server.get('/bighdr?mode=many&n=100&size=1000').status == 500
    assert 'header-buffer-size (65536 bytes)' in server.log_since(offset)


# -- large bodies, flat memory ------------------------------------------------

def rss(pids):
    """{pid: VmRSS in kB}; every pid must have one (they are all alive)."""
    out = {p: du.status_field(p, 'VmRSS') for p in pids}
    assert None not in out.values(), du.describe_pids([p for p, v in out.items() if v is None])
    return out


class RssSampler:
    """Samples VmRSS (kB) of some pids every 20 ms; ``peak[pid]``."""

    def __init__(self, pids):
        self.pids = list(pids)
        self.peak = rss(self.pids)
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_ev.is_set():
            for p in self.pids:
                v = du.status_field(p, 'VmRSS')
                if v and v > self.peak[p]:
                    self.peak[p] = v
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.thread.join()
        return False


def chunk(i):
    return hashlib.sha256(b'chunk-%d' % i).digest() * 32768


def test_upload_10mb(server):
    (pid,) = du.daemon_pids(server, 'io')
    # Warm up: the app module is loaded before the baseline is taken.
    server.post('/upload', b'warm')
    body = os.urandom(10 * MB)
    children = server.child_pids()
    base = rss([pid] + children)
    with RssSampler([pid] + children) as sampler:
        r = server.post('/upload', body, timeout=60)
    assert r.status == 200, r.raw[:600]
    data = r.json()
    assert data['sha256'] == hashlib.sha256(body).hexdigest()
    assert data['length'] == len(body)
    assert data['content_length'] == str(len(body))
    assert data['pid'] == pid
    assert data['largest'] <= 65536
    assert data['reads'] >= len(body) // 65536
    growth = {p: (sampler.peak[p] - base[p]) // 1024 for p in base}
    # Well under the body's 10 MB: no process held the whole upload.
    assert all(g < 8 for g in growth.values()), ('RSS growth in MB', growth)


def test_download_100mb_streamed(server):
    (pid,) = du.daemon_pids(server, 'io')
    children = server.child_pids()
    # Warm up with a small one.
    conn, resp = du.stream_get(server, '/download?mib=1')
    assert resp.read() == chunk(0)
    conn.close()
    base = rss([pid] + children)
    # Start the daemon's peak RSS (VmHWM) afresh, at its current RSS.
    with open('/proc/%d/clear_refs' % pid, 'w') as f:
        f.write('5')
    expected = hashlib.sha256()
    got = hashlib.sha256()
    total = 0
    with RssSampler([pid] + children) as sampler:
        conn, resp = du.stream_get(server, '/download?mib=100', timeout=60)
        try:
            assert resp.status == 200
            assert resp.getheader('X-Pid') == str(pid)
            while True:
                piece = resp.read(256 * 1024)
                if not piece:
                    break
                got.update(piece)
                total += len(piece)
        finally:
            conn.close()
    for i in range(100):
        expected.update(chunk(i))
    assert total == 100 * MB
    assert got.hexdigest() == expected.hexdigest()
    growth = {p: (sampler.peak[p] - base[p]) // 1024 for p in base}
    assert all(g < 30 for g in growth.values()), ('RSS growth in MB', growth)
    # The peak between samples too.
    hwm_after = du.status_field(pid, 'VmHWM')
    assert (hwm_after - base[pid]) // 1024 < 30, (hwm_after, base[pid])
    assert du.get_json(server, '/info')['pid'] == pid


# -- client disconnect ----------------------------------------------------------

def test_client_disconnect_mid_stream_calls_close(server):
    (pid,) = du.daemon_pids(server, 'io')
    token = uuid.uuid4().hex[:12]
    sock = socket.create_connection(('127.0.0.1', server.port), timeout=15)
    try:
        sock.sendall(du_request('/closetrack?token=%s&chunks=2000&delay=0.01' % token))
        got = b''
        while len(got) < 300 * 1024:
            piece = sock.recv(65536)
            assert piece, got[:300]
            got += piece
        assert got.startswith(b'HTTP/1.1 200 OK')
    finally:
        # RST rather than FIN, like a client that went away.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
        sock.close()
    text = server.wait_state('close-' + token, timeout=15)
    assert text is not None, ('close() was not called', server.error_log()[-3000:])
    assert text.startswith('closed sent=')
    sent = int(text.split('sent=')[1].split()[0])
    assert 4 <= sent < 2000, text
    assert text.endswith('pid=%d' % pid)
    # The daemon keeps serving, in the same process, on all threads.
    assert du.daemon_pids(server, 'io') == [pid]
    results = du.burst(server, '/info?sleep=0.2', 4)
    assert [r[0] for r in results] == [200] * 4
    assert {r[1]['pid'] for r in results} == {pid}
