"""wsgi.input: read(), read(n), readline(), readline(n), readlines(), iteration,
Content-Length and chunked request bodies."""
import hashlib
import json

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
