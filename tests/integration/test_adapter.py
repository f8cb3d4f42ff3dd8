"""The WSGI adapter: start_response validation, response bodies, errors,
close(), wsgi.file_wrapper, logging, client disconnects."""
import hashlib
import os
import socket
import time

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
    assert 'ValueError' in text
    assert 'Traceback' in text or 'adapter.wsgi' in text


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
    assert any('byte' in l for l in line), line


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
