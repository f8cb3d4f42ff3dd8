"""wsgi.input: read(), read(n), readline(), readline(n), readlines(), iteration,
Content-Length and chunked request bodies."""
import hashlib

import pytest

import harness


def make_body():
    """~400 KB of lines of varying length, the last without a newline,
    including a few very long lines and empty lines."""
    parts = []
    for i in range(4000):
        if i % 500 == 0:
            parts.append(b'L' * 70000 + b'\n')       # longer than any buffer
        elif i % 97 == 0:
            parts.append(b'\n')                     # empty line
        else:
            parts.append(b'line %05d ' % i + bytes([97 + i % 26]) * (i % 150) + b'\n')
    parts.append(b'tail-without-newline')
    return b''.join(parts)


BODY = make_body()
LINES = BODY.splitlines(keepends=True)


def split_line_pieces(lines, n):
    out = []
    for line in lines:
        for i in range(0, len(line), n):
            out.append(len(line[i:i + n]))
    return out


def expected_pieces(mode, n):
    if mode == 'read':
        return [len(BODY)]
    if mode == 'read_n':
        return [min(n, len(BODY) - i) for i in range(0, len(BODY), n)]
    if mode in ('readline', 'readlines', 'iter'):
        return [len(l) for l in LINES]
    if mode == 'readline_n':
        return split_line_pieces(LINES, n)
    raise ValueError(mode)


MODES = [('read', 0), ('read_n', 1000), ('read_n', 65536), ('read_n', 7),
         ('readline', 0), ('readline_n', 100), ('readline_n', 8192),
         ('readlines', 0), ('iter', 0)]


@pytest.mark.parametrize('mode,n', MODES)
def test_input_content_length(adapter_server, mode, n):
    r = adapter_server.post('/echo?mode=%s&n=%d' % (mode, n), BODY,
                            headers=[('Content-Type', 'text/plain')], timeout=60)
    assert r.status == 200, r.raw[:1000]
    out = r.json()
    assert out['len'] == len(BODY)
    assert out['sha256'] == hashlib.sha256(BODY).hexdigest()
    assert out['types'] == ['bytes']
    assert out['pieces'] == expected_pieces(mode, n)
    assert out['CONTENT_LENGTH'] == str(len(BODY))
    assert out['CONTENT_TYPE'] == 'text/plain'
    assert out['input_terminated'] is True


def test_input_empty_body(adapter_server):
    r = adapter_server.post('/echo?mode=read', b'')
    out = r.json()
    assert out['len'] == 0
    assert out['pieces'] == [0]


def test_input_binary_roundtrip(adapter_server):
    body = bytes(range(256)) * 1000 + b'\r\n\x00\r\n'
    r = adapter_server.post('/echo?mode=raw', body,
                            headers=[('Content-Type', 'application/octet-stream')])
    assert r.status == 200
    assert r.body == body


def test_unread_body_does_not_break_response(adapter_server):
    # The app reads nothing beyond what it needs; reading only part of the
    # body must not break the response.
    r = adapter_server.post('/env', BODY)
    assert r.status == 200
    assert r.json()['environ']['CONTENT_LENGTH'] == str(len(BODY))


@pytest.mark.parametrize('mode,n', [('read', 0), ('readline', 0), ('read_n', 4096), ('iter', 0)])
def test_chunked_request_body(adapter_server, mode, n):
    s = adapter_server
    data = harness.build_request(
        'POST', '/chunked?mode=%s&n=%d' % (mode, n),
        headers=[('Transfer-Encoding', 'chunked'), ('Content-Type', 'text/plain')],
        port=s.port) + harness.chunk_encode(BODY, [1, 100, 4096, 70000, 13])
    r = harness.Response(s.raw(data, timeout=60))
    assert r.status == 200, r.raw[:1000]
    out = r.json()
    assert out['len'] == len(BODY)
    assert out['sha256'] == hashlib.sha256(BODY).hexdigest()
    assert out['pieces'] == expected_pieces(mode, n)
    assert out['input_terminated'] is True
    assert out['CONTENT_LENGTH'] in (None, '')


def test_chunked_request_refused_by_default(adapter_server):
    # /echo has no WSGIChunkedRequest, so the default (Off) applies.
    s = adapter_server
    data = harness.build_request(
        'POST', '/echo?mode=read',
        headers=[('Transfer-Encoding', 'chunked')], port=s.port) + harness.chunk_encode(b'abc', [2])
    r = harness.Response(s.raw(data))
    assert r.status == 411


def test_invalid_content_length_rejected(adapter_server):
    s = adapter_server
    data = harness.build_request('POST', '/echo?mode=read',
                                 headers=[('Content-Length', 'abc')], port=s.port) + b'abc'
    r = harness.Response(s.raw(data))
    assert r.status == 400
    assert b'"sha256"' not in r.raw


def test_malformed_chunked_body_not_accepted(adapter_server):
    s = adapter_server
    data = harness.build_request('POST', '/chunked?mode=read',
                                 headers=[('Transfer-Encoding', 'chunked')], port=s.port)
    data += b'5\r\nhello\r\nZZZ\r\nbroken\r\n0\r\n\r\n'
    r = harness.Response(s.raw(data))
    assert r.status in (400, 500), r.raw[:500]
    assert b'"sha256"' not in r.raw
    # The server is unaffected.
    r = s.post('/echo?mode=read', b'fine')
    assert r.status == 200 and r.json()['len'] == 4


def test_expect_100_continue(adapter_server):
    s = adapter_server
    body = b'continued body\n' * 100
    sock = harness.connect(s.port)
    try:
        sock.sendall(harness.build_request(
            'POST', '/echo?mode=raw',
            headers=[('Expect', '100-continue'), ('Content-Length', str(len(body)))],
            port=s.port))
        interim = b''
        while b'\r\n\r\n' not in interim:
            data = sock.recv(4096)
            assert data, interim
            interim += data
        assert interim.startswith(b'HTTP/1.1 100 Continue\r\n'), interim
        head, rest = interim.split(b'\r\n\r\n', 1)
        sock.sendall(body)
        raw = rest + harness.recv_all(sock)
    finally:
        sock.close()
    r = harness.Response(raw)
    assert r.status == 200
    assert r.body == body
    assert b'100 Continue' not in raw


def test_blocked_body_read_does_not_stall_other_requests(adapter_server, token):
    """While one request's application waits in wsgi.input.read() for a slow
    client, other requests (other threads of the same process under event)
    are served: the GIL is released while blocked on the client."""
    s = adapter_server
    body = b'0123456789' * 10
    sock = harness.connect(s.port)
    try:
        sock.sendall(harness.build_request('POST', '/echo?mode=raw&token=' + token,
                                           headers=[('Content-Length', str(len(body)))],
                                           port=s.port) + body[:10])
        # The application is running and waits in wsgi.input.read().
        assert s.wait_state('reading-' + token) is not None
        timings = harness.probe_timings(s, timeout=10)
        sock.sendall(body[10:])
        raw = harness.recv_all(sock)
    finally:
        sock.close()
    # Each answered (within probe_timings' timeout) while it is stuck.
    assert all(ok for ok, _ in timings), timings
    r = harness.Response(raw)
    assert r.status == 200 and r.body == body
