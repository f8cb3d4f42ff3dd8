"""The WSGI adapter: start_response validation, response bodies, errors,
close(), wsgi.file_wrapper, logging, client disconnects."""
import hashlib
import os
import socket

import pytest

import harness

# case -> bytes that must never reach the wire for it
BAD_CASES = {
    'status_abc': [b'abc'],
    'status_2000': [b'2000'],
    'status_crlf': [b'X-Injected'],
    'status_reason_lf': [b'X-Injected'],
    'status_reason_ctl': [b'O\x01K'],
    'value_crlf': [b'Set-Cookie', b'injected=1'],
    'value_lf': [b'X-Injected'],
    'value_cr': [b'X-Injected'],
    'value_nul': [b'\x00', b'X-Injected-Nul'],
    'value_del': [b'\x7f'],
    'value_nonlatin1': [b'caf', '\u20ac'.encode('utf-8')],
    'value_not_str': [b'X-A'],
    'name_space': [b'X Bad'],
    'name_colon': [b'X-Bad:Inj', b'Inj'],
    'name_empty': [b'\r\n: v'],
    'name_crlf': [b'X-Injected'],
    'header_not_tuple': [b'X-A'],
    'content_length_bad': [b'abc'],
}


def _get(server, query, **kw):
    return server.get('/adapter?' + query, **kw)


@pytest.mark.parametrize('case', sorted(BAD_CASES))
def test_invalid_status_or_header_gives_500(adapter_server, case):
    r = _get(adapter_server, 'case=' + case)
    assert r.status == 500, (case, r.raw[:500])
    assert b'BAD-RESPONSE-BODY' not in r.raw
    for needle in BAD_CASES[case]:
        assert needle not in r.raw, (case, needle, r.raw[:500])
    # Whatever was sent is a well-formed response: every header line is
    # "Name: value" with a token name.
    for line in r.header_bytes.split(b'\r\n')[1:]:
        assert b'\n' not in line and b'\r' not in line and b'\x00' not in line
        name = line.split(b':', 1)[0]
        assert name and all(33 <= c < 127 for c in name), line


def test_valid_response_passes(adapter_server):
    r = _get(adapter_server, 'case=ok')
    assert r.status == 200
    assert r.body == b'ok'
    assert r.header('Content-Type') == 'text/plain'


def test_tab_in_header_value_allowed(adapter_server):
    r = _get(adapter_server, 'case=value_tab')
    assert r.status == 200
    assert b'\r\nX-Tab: a\tb\r\n' in r.header_bytes + b'\r\n'
    assert r.body == b'tab'


def test_custom_reason_phrase_kept(adapter_server):
    r = _get(adapter_server, 'case=reason')
    assert r.status == 202
    assert r.reason == 'Custom Reason Phrase'
    assert r.body == b'reason'


def test_repeated_headers_sent_separately(adapter_server):
    r = _get(adapter_server, 'case=multi_cookie')
    assert r.status == 200
    assert r.header_all('Set-Cookie') == ['a=1', 'b=2']


def test_second_start_response_without_exc_info_raises(adapter_server):
    r = _get(adapter_server, 'case=double_start')
    assert r.status == 200
    assert r.body == b'second-call-raised:RuntimeError'
    assert r.header('X-Second') is None


def test_second_start_response_uncaught_gives_500(adapter_server):
    r = _get(adapter_server, 'case=double_start_uncaught')
    assert r.status == 500
    assert b'second-call-accepted' not in r.raw
    assert r.header('X-Second') is None


def test_exc_info_before_headers_sent_replaces_status(adapter_server):
    r = _get(adapter_server, 'case=exc_info_replace')
    assert r.status == 503
    assert r.reason == 'Replaced Status'
    assert r.header('X-Second') == '1'
    assert r.header('X-First') is None
    assert r.body == b'replaced'


def test_write_callable(adapter_server):
    r = _get(adapter_server, 'case=write')
    assert r.status == 200
    assert r.body == b'abcdef'


def test_write_callable_then_iterable(adapter_server):
    r = _get(adapter_server, 'case=write_then_iter')
    assert r.status == 200
    assert r.body == b'abcdefghi'


def test_headers_deferred_until_first_nonempty_chunk(adapter_server, token):
    s = adapter_server
    off = s.log_size()
    r = _get(s, 'case=empty_then_raise&token=' + token)
    assert r.status == 500
    assert r.header('X-Should-Not-Appear') is None
    assert s.wait_for_log('mwrs-empty-then-raise-' + token, off)


@pytest.mark.parametrize('case', ['cl_truncate', 'cl_truncate_multi'])
def test_app_content_length_enforced(adapter_server, case):
    raw = adapter_server.raw(harness.build_request('GET', '/adapter?case=' + case,
                                                    port=adapter_server.port))
    r = harness.Response(raw)
    assert r.status == 200
    assert r.header('Content-Length') == '5'
    assert r.rest == b'01234'


def test_exception_before_headers_gives_500_and_logs_traceback(adapter_server, token):
    s = adapter_server
    off = s.log_size()
    r = _get(s, 'case=raise_before&token=' + token)
    assert r.status == 500
    assert ('mwrs-raise-before-' + token).encode() not in r.raw
    text = s.wait_for_log('mwrs-raise-before-' + token, off)
    assert text is not None
    assert 'Traceback (most recent call last):' in text
    assert 'ValueError: mwrs-raise-before-' + token in text


def test_exception_after_first_chunk_truncates_chunked(adapter_server, token):
    s = adapter_server
    off = s.log_size()
    raw = s.raw(harness.build_request('GET', '/adapter?case=raise_after_chunk&token=' + token,
                                      port=s.port))
    r = harness.Response(raw)
    assert r.status == 200
    assert r.chunked
    assert r.body == b'first-chunk;'
    assert r.complete is False          # no terminating 0-chunk
    assert not raw.endswith(b'0\r\n\r\n')
    assert s.wait_for_log('mwrs-raise-after-' + token, off)


def test_exception_after_first_chunk_truncates_with_content_length(adapter_server, token):
    s = adapter_server
    raw = s.raw(harness.build_request('GET', '/adapter?case=raise_after_chunk_cl&token=' + token,
                                      port=s.port))
    r = harness.Response(raw)
    assert r.status == 200
    assert r.header('Content-Length') == '100'
    assert r.rest == b'0123456789'
    assert r.complete is False


def test_str_body_gives_500_and_logs_bytes_error(adapter_server):
    s = adapter_server
    off = s.log_size()
    r = _get(s, 'case=str_body')
    assert r.status == 500
    assert b'this is a str' not in r.raw
    text = s.wait_for_log('TypeError', off)
    assert text is not None
    line = [l for l in text.splitlines() if 'TypeError' in l]
    assert any('bytes' in l for l in line), line


def test_close_called_after_normal_iteration(adapter_server, token):
    s = adapter_server
    r = _get(s, 'case=close_normal&token=' + token)
    assert r.status == 200 and r.body == b'abc'
    assert s.wait_state('close-' + token) == 'closed sent=3'


def test_close_called_when_iteration_raises(adapter_server, token):
    s = adapter_server
    raw = s.raw(harness.build_request('GET', '/adapter?case=close_raise&token=' + token,
                                      port=s.port))
    r = harness.Response(raw)
    assert r.status == 200
    assert r.body == b'a'
    assert r.complete is False
    assert s.wait_state('close-' + token) == 'closed sent=1'


def test_close_called_when_first_item_raises(adapter_server, token):
    s = adapter_server
    r = _get(s, 'case=close_raise_first&token=' + token)
    assert r.status == 500
    assert s.wait_state('close-' + token) == 'closed sent=0'


def test_wsgi_errors_and_stderr_reach_error_log(adapter_server, token):
    s = adapter_server
    off = s.log_size()
    r = _get(s, 'case=errors&token=' + token)
    assert r.status == 200 and r.body == b'logged'
    text = s.wait_for_log('mwrs-sys-stderr-' + token, off)
    assert text is not None
    text = s.wait_for_log('mwrs-wsgi-errors-' + token, off)
    assert text is not None
    lines = [l for l in text.splitlines() if token in l]
    assert len(lines) == 2, lines
    # Each write is one log line at error level, tagged for wsgi.
    for l in lines:
        assert ':error]' in l, l


def _big(server):
    with open(os.path.join(server.apps, 'data', 'big.bin'), 'rb') as f:
        return f.read()


def test_file_wrapper_real_file(adapter_server):
    s = adapter_server
    expected = _big(s)
    r = s.get('/filewrap?mode=file', timeout=30)
    assert r.status == 200
    assert r.complete
    assert len(r.body) == len(expected) == 2 * 1024 * 1024
    assert hashlib.sha256(r.body).hexdigest() == hashlib.sha256(expected).hexdigest()


def test_file_wrapper_from_offset(adapter_server):
    s = adapter_server
    expected = _big(s)[1000:]
    r = s.get('/filewrap?mode=offset&offset=1000', timeout=30)
    assert r.status == 200
    assert r.body == expected


def test_file_wrapper_respects_content_length(adapter_server):
    s = adapter_server
    expected = _big(s)[:12345]
    raw = s.raw(harness.build_request('GET', '/filewrap?mode=cl&n=12345', port=s.port))
    r = harness.Response(raw)
    assert r.status == 200
    assert r.header('Content-Length') == '12345'
    assert r.rest == expected


def test_file_wrapper_non_file_object(adapter_server):
    s = adapter_server
    expected = _big(s)
    r = s.get('/filewrap?mode=bytesio', timeout=30)
    assert r.status == 200
    assert r.complete
    assert r.body == expected


def test_head_has_no_body(adapter_server):
    s = adapter_server
    raw = s.raw(harness.build_request('HEAD', '/adapter?case=ok', port=s.port))
    r = harness.Response(raw, 'HEAD')
    assert r.status == 200
    assert r.rest == b''


def test_client_disconnect_mid_stream_calls_close(adapter_server, token):
    s = adapter_server
    sock = harness.connect(s.port)
    sock.sendall(harness.build_request(
        'GET', '/stream?chunks=20000&size=65536&delay=0.002&token=' + token, port=s.port))
    got = b''
    while len(got) < 200000:
        data = sock.recv(65536)
        assert data, 'server closed early'
        got += data
    assert got.startswith(b'HTTP/1.1 200')
    # Abort the connection (RST) mid-response.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
    sock.close()
    state = s.wait_state('close-' + token, timeout=20)
    assert state is not None, 'close() not called after client disconnect'
    sent = int(state.split('sent=')[1].split()[0])
    assert sent < 20000, state
    # And the server keeps serving.
    r = _get(s, 'case=ok')
    assert r.status == 200 and r.body == b'ok'


def test_streamed_response_complete(adapter_server, token):
    s = adapter_server
    r = s.get('/stream?chunks=50&size=1000&token=' + token)
    assert r.status == 200
    assert r.complete
    assert r.body == (b'x' * 999 + b'\n') * 50
    assert s.wait_state('close-' + token) == 'closed sent=50 of 50'


def test_keepalive_connection_reused(adapter_server):
    s = adapter_server
    with harness.Connection(s.port) as c:
        r1 = c.request('GET', '/env?n=1')
        assert r1.status == 200
        pid = r1.json()['process']['pid']
        # A body the application never reads must not leak into the next
        # request on the same connection.
        r2 = c.request('POST', '/adapter?case=ok', body=b'GET /evil HTTP/1.1\r\n\r\n' * 100)
        assert r2.status == 200 and r2.body == b'ok'
        r3 = c.request('POST', '/echo?mode=raw', body=b'second body')
        assert r3.status == 200 and r3.body == b'second body'
        r4 = c.request('GET', '/stream?chunks=3&size=10&token=ka')
        assert r4.status == 200 and r4.body == b'xxxxxxxxx\n' * 3
        r5 = c.request('GET', '/env?n=5')
        env = r5.json()
        assert env['environ']['QUERY_STRING'] == 'n=5'
        assert env['process']['pid'] == pid
        assert env['environ']['REMOTE_PORT'] == r1.json()['environ']['REMOTE_PORT']


def test_concurrent_requests_isolated(adapter_server):
    """Parallel requests with distinct bodies and headers each get exactly
    their own data back."""
    import concurrent.futures
    s = adapter_server

    def one(i):
        body = (b'%06d-' % i) * (1000 + i * 37)
        r = s.post('/echo?mode=raw&i=%d' % i, body,
                   headers=[('Content-Type', 'application/x-req-%d' % i)], timeout=30)
        ok = r.status == 200 and r.body == body
        e = s.get('/env?i=%d' % i, headers=[('X-Req', str(i))], timeout=30).json()['environ']
        return ok and e['HTTP_X_REQ'] == str(i) and e['QUERY_STRING'] == 'i=%d' % i

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(one, range(40)))
    assert all(results), [i for i, ok in enumerate(results) if not ok]


def test_blocked_response_write_does_not_stall_other_requests(adapter_server, token):
    """A client that stops reading a large streamed response blocks only its
    own request: the GIL is released while writing to the client."""
    s = adapter_server
    sock = harness.connect(s.port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        sock.sendall(harness.build_request(
            'GET', '/stream?chunks=2000&size=65536&token=' + token, port=s.port))
        assert harness.wait_send_blocked(s.port, sock.getsockname()[1])
        # Each answered (within probe_timings' timeout) while it is stuck.
        timings = harness.probe_timings(s, timeout=10)
        assert all(ok for ok, _ in timings), timings
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
        sock.close()
    state = s.wait_state('close-' + token, timeout=20)
    assert state is not None and 'of 2000' in state, state


def test_request_end_ignores_streams_other_threads_make():
    """What a request left half-written in wsgi.errors is logged as it
    ends; streams made by other threads meanwhile do not disturb that."""
    config = 'WSGIApplicationGroup %{GLOBAL}\nWSGIScriptAlias /churn {apps}/errorlog_churn.wsgi\n'
    with harness.Apache('event', config, name='churn') as a:
        statuses = [a.get('/churn').status for _ in range(200)]
        log = a.error_log()
        assert statuses == [200] * 200, (statuses, log[-3000:])
        assert 'changed size during iteration' not in log
        assert log.count('half a line') == 200
