"""Request I/O of the WSGI adapter in both modes: nested requests on one
thread (mod_include, ErrorDocument), wsgi.input sizes, errors and memory,
bodiless responses, the status line's encoding, sendfile, error-log
flushing and the GIL while the error log blocks."""
import hashlib
import json
import os
import re
import threading
import time
import uuid

import pytest

import daemon_util as du
import harness
from harness import Apache

BIG_SIZE = 2 * 1024 * 1024

# {daemon} is ' process-group=rio' in daemon mode.
CONFIG = r"""
LimitRequestBody 0
ErrorLogFormat "[%l] [which:%{{X-Mwrs-Which}}i] [client %a] %M"
{daemon_process}
WSGIScriptAlias /rio {{apps}}/requestio.wsgi{daemon}
WSGIScriptAlias /ssi-outer {{apps}}/requestio.wsgi{daemon}
WSGIScriptAlias /ssi-inner {{apps}}/requestio.wsgi{daemon}
WSGIScriptAlias /errdoc-src {{apps}}/requestio.wsgi
WSGIScriptAlias /sf-on {{apps}}/requestio.wsgi
WSGIScriptAlias /sf-off {{apps}}/requestio.wsgi
<Location /rio>
    WSGIChunkedRequest On
</Location>
<Location /ssi-outer>
    Options +Includes
    SetOutputFilter INCLUDES
    RequestHeader set X-Mwrs-Which outer
</Location>
<Location /ssi-inner>
    RequestHeader set X-Mwrs-Which inner
</Location>
<Location /errdoc-src>
    ErrorDocument 502 /rio?case=errdoc
</Location>
<Location /sf-on>
    EnableSendfile On
</Location>
<Location /sf-off>
    EnableSendfile Off
</Location>
"""


def make_big_file(apache):
    d = os.path.join(apache.apps, 'data')
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    path = os.path.join(d, 'big.bin')
    with open(path, 'wb') as f:
        f.write(os.urandom(BIG_SIZE))
    os.chmod(path, 0o644)


def config(kind):
    if kind == 'daemon':
        return CONFIG.format(daemon=' process-group=rio',
                             daemon_process='WSGIDaemonProcess rio processes=1 threads=4 display-name=%{GROUP}')
    return CONFIG.format(daemon='', daemon_process='')


@pytest.fixture(scope='module')
def instances():
    """Servers by kind, started on first use and stopped at the end."""
    started = {}

    def get(kind):
        if kind not in started:
            mpm = 'event' if kind == 'daemon' else kind
            a = Apache(mpm, config(kind), modules=['include', 'headers'], name='rio',
                       pre_start=make_big_file)
            a.start()
            started[kind] = a
            if kind == 'daemon':
                du.wait_daemons(a, 'rio', 1)
        return started[kind]

    yield get
    for a in started.values():
        a.cleanup()


@pytest.fixture(params=['event', 'prefork', 'daemon'])
def server(request, instances):
    server = instances(request.param)
    server.kind = request.param
    return server


@pytest.fixture(params=['event', 'prefork'])
def embedded(request, instances):
    server = instances(request.param)
    server.kind = request.param
    return server


def token():
    return uuid.uuid4().hex[:12]


def wait_state(server, name, timeout=15.0):
    text = server.wait_state(name, timeout)
    assert text is not None, 'no state/%s\n--- error log ---\n%s' % (name, server.error_log()[-3000:])
    return json.loads(text)


def log_line(server, needle, offset=0, timeout=10.0):
    text = server.wait_for_log(needle, offset, timeout)
    assert text is not None, '%r not logged:\n%s' % (needle, server.log_since(offset)[-3000:])
    return next(line for line in text.splitlines() if needle in line)


# -- 1. nested requests on the same thread --------------------------------------------------

def test_include_virtual_of_a_wsgi_url_inside_wsgi_output(server):
    t = token()
    offset = server.log_size()
    r = server.get('/ssi-outer?case=ssi_outer&token=' + t)
    assert r.status == 200, r.raw[:500]
    assert r.body == ('<p>before inner-%s after</p>\n<p>tail</p>\n' % t).encode(), r.body
    if server.kind == 'daemon':
        return
    # Each request's log lines go to that request, also the outer's after
    # the inner one ended (and its request_rec was freed).
    assert 'which:inner' in log_line(server, 'inner-log-' + t, offset)
    assert 'which:outer' in log_line(server, 'outer-before-' + t, offset)
    assert 'which:outer' in log_line(server, 'outer-after-' + t, offset)
    assert 'Rust panic' not in server.log_since(offset)


def test_error_document_served_by_wsgi_while_our_handler_runs(embedded):
    # close() fails after the headers were handed to Apache: the error
    # bucket makes Apache run the ErrorDocument (a WSGI app) from inside
    # our request on this thread.
    offset = embedded.log_size()
    r = embedded.get('/errdoc-src?case=close_fails_bodiless')
    assert b'errdoc-served' in r.body, r.raw[:800]
    log = embedded.log_since(offset)
    assert 'close failed on purpose' in log
    assert 'Rust panic' not in log
    assert embedded.get('/rio?case=ok').status == 200


# -- 2. wsgi.input -----------------------------------------------------------------------------

@pytest.mark.parametrize('framing', ['length', 'chunked'])
def test_read_of_a_huge_size_returns_the_body(server, framing):
    body = b'twelve bytes'
    headers = [('Transfer-Encoding', 'chunked')] if framing == 'chunked' else []
    data = harness.chunk_encode(body, [5]) if framing == 'chunked' else body
    r = server.request('POST', '/rio?case=read_huge', headers=headers, body=data)
    assert r.status == 200, r.raw[:500]
    assert r.json() == {'data': 'twelve bytes', 'rest': 0}


def test_read_errors_stick(embedded):
    t = token()
    data = harness.build_request('POST', '/rio?case=read_sticky&token=' + t,
                                 headers=[('Transfer-Encoding', 'chunked')], port=embedded.port)
    embedded.raw(data + b'5\r\nhello\r\nZZZ\r\n')
    # A body cut short never looks complete to a later read.
    assert wait_state(embedded, 'sticky-' + t) == ['OSError', 'OSError', 'OSError']


def test_read_beyond_memory_is_a_memory_error_and_loses_nothing(embedded):
    # A Content-Length of 1 PiB (LimitRequestBody 0) and the common
    # read(int(CONTENT_LENGTH)): no such allocation can succeed.
    head = harness.build_request('POST', '/rio?case=read_announced&n=12',
                                 headers=[('Content-Length', str(1 << 50)), ('Connection', 'keep-alive')],
                                 port=embedded.port)
    with harness.Connection(embedded.port) as conn:
        conn.send(head + b'twelve bytes')
        r = conn.read_response()
    assert r.status == 200, r.raw[:500]
    assert r.json() == {'first': 'MemoryError', 'data': 'twelve bytes'}


def test_read0_sends_100_continue(embedded):
    t = token()
    head = harness.build_request('POST', '/rio?case=read0&token=' + t,
                                 headers=[('Content-Length', '5'), ('Expect', '100-continue')],
                                 port=embedded.port)
    sock = harness.connect(embedded.port)
    try:
        sock.sendall(head)
        sock.settimeout(10)
        try:
            interim = sock.recv(4096)
        except OSError:
            interim = b''
        assert interim.startswith(b'HTTP/1.1 100 Continue\r\n'), interim
        open(embedded.state_file('go-' + t), 'w').close()
        sock.sendall(b'hello')
        sock.settimeout(15)
        r = harness.Response(interim.split(b'\r\n\r\n', 1)[1] + harness.recv_all(sock))
    finally:
        open(embedded.state_file('go-' + t), 'w').close()
        sock.close()
    assert r.status == 200
    assert r.json() == {'body': 'hello'}


# -- 3. an empty chunk before start_response ---------------------------------------------------

def test_empty_chunk_before_start_response_is_skipped(server):
    r = server.get('/rio?case=empty_first')
    assert r.status == 200, r.raw[:500]
    assert r.body == b'after-empty'


# -- 4. the status line is Latin-1 -------------------------------------------------------------

def test_status_line_sent_as_latin1(server):
    r = server.get('/rio?case=status&status=200%20Caf%C3%A9')
    assert r.status == 200
    assert r.raw.startswith(b'HTTP/1.1 200 Caf\xe9\r\n'), r.raw[:100]


def test_status_line_beyond_latin1_refused(server):
    offset = server.log_size()
    r = server.get('/rio?case=status&status=200%20Caf%E2%82%AC')
    assert r.status == 500, r.raw[:300]
    assert b'\xe2\x82\xac' not in r.raw and b'status-body' not in r.raw
    assert 'latin-1' in server.wait_for_log('latin-1', offset)


# -- 5. bodiless responses keep their Content-Length -------------------------------------------

@pytest.mark.parametrize('method,status,cl,body', [
    ('HEAD', '200 OK', '1234', 'none'),      # Flask, Django: the GET's length, no body
    ('HEAD', '200 OK', '1234', 'empty'),
    ('GET', '304 Not Modified', '100', 'none'),
    ('GET', '204 No Content', '10', 'none'),
    ('GET', '200 OK', '10', 'empty'),        # nothing sent: Apache says 0
])
def test_bodiless_response_with_content_length(server, method, status, cl, body):
    path = '/rio?case=bodiless&status=%s&cl=%s&body=%s' % (status.replace(' ', '%20'), cl, body)
    with harness.Connection(server.port) as conn:
        r = conn.request(method, path)
        assert r.status == int(status[:3]), r.raw[:500]
        if method == 'HEAD':
            assert r.header('Content-Length') == cl
        elif status.startswith('200'):
            assert r.header('Content-Length') == '0' and r.body == b''
        # The connection is in step: the next response on it is whole.
        again = conn.request('GET', '/rio?case=ok')
        assert again.status == 200 and again.json() == {'ok': True}


# -- 7. EnableSendfile -------------------------------------------------------------------------

@pytest.mark.parametrize('path,subclass,sendfile', [
    ('/sf-on', False, True),
    ('/sf-off', False, False),
    ('/rio', False, False),              # Apache's default is Off
    ('/sf-off', True, False),            # a FileWrapper subclass keeps the fast path
])
def test_file_wrapper_honours_enable_sendfile(embedded, path, subclass, sendfile):
    # With sendfile the kernel reads the file for this thread (its rchar
    # grows by the file's size); without it Apache maps the file and
    # writes from memory (rchar stays put). Iterating the file in Python
    # (no fast path) would read it too.
    t = token()
    r = embedded.get('%s?case=sendfile&token=%s&subclass=%d' % (path, t, subclass), timeout=60)
    assert r.status == 200
    with open(os.path.join(embedded.apps, 'data', 'big.bin'), 'rb') as f:
        assert r.body == f.read()
    measured = wait_state(embedded, 'sendfile-' + t)
    if sendfile:
        assert measured['read'] >= measured['size'], measured
    else:
        assert measured['read'] < measured['size'] // 2, measured


# -- 9. partial lines are logged at the end of their request ---------------------------------

@pytest.mark.parametrize('close', ['ok', 'raise'])
def test_partial_log_lines_flushed_at_request_end(server, close):
    t = token()
    offset = server.log_size()
    r = server.get('/rio?case=partial_log&token=%s&close=%s' % (t, close))
    assert r.body == b'partial'
    for stream in ('stdout', 'stderr', 'errors'):
        line = log_line(server, 'partial-%s-%s' % (stream, t), offset)
        if server.kind != 'daemon':
            assert '127.0.0.1:%d]' % r.client_port in line, line


# -- 10. exc_info --------------------------------------------------------------------------------

def test_exc_info_that_is_not_a_tuple(server):
    r = server.get('/rio?case=exc_info')
    assert r.status == 200
    assert r.json() == {'raised': 'RuntimeError'}


# -- 8. the GIL is released while the error log blocks ---------------------------------------

LOG_PIPE_CONFIG = r"""
LogLevel warn
ErrorLog "|$exec >/dev/null 2>&1; while [ ! -e {state}/log-gate ]; do sleep 0.1; done; exec cat >> {root}/logs/error.log"
WSGIScriptAlias /rio {apps}/requestio.wsgi
"""

ONE_CHILD_FOUR_THREADS = """
StartServers 1
ServerLimit 1
ThreadLimit 4
ThreadsPerChild 4
MinSpareThreads 1
MaxSpareThreads 4
MaxRequestWorkers 4
"""


def blocked_on_pipe(pids):
    for pid in pids:
        try:
            tids = os.listdir('/proc/%d/task' % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                with open('/proc/%d/task/%s/wchan' % (pid, tid)) as f:
                    if 'pipe_write' in f.read():
                        return True
            except OSError:
                pass
    return False


@pytest.mark.parametrize('mpm', ['event', 'worker'])
def test_other_requests_run_while_the_error_log_blocks(mpm):
    with Apache(mpm, LOG_PIPE_CONFIG, mpm_conf=ONE_CHILD_FOUR_THREADS, name='logpipe') as a:
        gate = a.state_file('log-gate')
        t = token()
        hog = {}
        thread = threading.Thread(target=lambda: hog.setdefault(
            'r', a.get('/rio?case=loghog&lines=3000&token=' + t, timeout=120)))
        thread.start()
        try:
            # The hog fills the pipe nobody reads and blocks writing to it.
            assert du.wait_for(lambda: blocked_on_pipe(a.child_pids()), timeout=30), \
                'no thread of %s blocked on the error log pipe' % a.child_pids()
            # Another request of the same process still runs Python.
            r = a.get('/rio?case=ok', timeout=20)
            assert r.status == 200 and r.json() == {'ok': True}
        finally:
            open(gate, 'w').close()
            thread.join(120)
        assert hog['r'].status == 200
        # Nothing the hog logged was lost.
        assert a.wait_for_log('hog %s 2999 ' % t, timeout=30) is not None
