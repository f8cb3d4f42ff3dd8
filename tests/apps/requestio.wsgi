# Request I/O edge cases, selected by ?case=NAME (&token=T and more).
# Results that cannot travel in the response go to state/NAME-TOKEN.
import ctypes
import hashlib
import io
import json
import os
import sys
import time
from urllib.parse import parse_qs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE = os.path.join(ROOT, 'state')
BIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'big.bin')


def state(name, value):
    path = os.path.join(STATE, name)
    with open(path + '.tmp', 'w') as f:
        json.dump(value, f)
    os.rename(path + '.tmp', path)


def wait_state(name, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(os.path.join(STATE, name)):
            return True
        time.sleep(0.02)
    return False


def reply(start_response, value, status='200 OK'):
    body = json.dumps(value).encode()
    start_response(status, [('Content-Type', 'application/json'),
                            ('Content-Length', str(len(body)))])
    return [body]


def read_errors(stream, reads=2):
    """What each of `reads` calls of stream.read() gave: a length or an error."""
    out = []
    for _ in range(reads):
        try:
            out.append(len(stream.read()))
        except Exception as exc:
            out.append(type(exc).__name__)
    return out


def rchar():
    """Bytes this thread has read through read()-like system calls
    (sendfile counts: the kernel reads the file for it)."""
    with open('/proc/thread-self/io') as f:
        for line in f:
            if line.startswith('rchar:'):
                return int(line.split()[1])
    raise RuntimeError('no rchar in /proc/thread-self/io')


class MeasuredFile(io.FileIO):
    """A file that records, when closed, how much this thread read since
    it was opened: sendfile reads the whole file; mmap reads nothing."""

    def __init__(self, path, token):
        super().__init__(path, 'r')
        self.token = token
        self.before = rchar()

    def close(self):
        if not self.closed:
            state('sendfile-' + self.token, {'read': rchar() - self.before,
                                             'size': os.path.getsize(BIG)})
        super().close()


class FailingClose:
    """An empty response body whose close() raises."""

    def __iter__(self):
        return iter(())

    def close(self):
        raise RuntimeError('close failed on purpose')


class Partial:
    """Writes partial lines (no newline) to every error stream; close()
    raises when asked to."""

    def __init__(self, environ, token, close_raises):
        self.environ = environ
        self.token = token
        self.close_raises = close_raises

    def __iter__(self):
        sys.stdout.write('partial-stdout-%s' % self.token)
        sys.stderr.write('partial-stderr-%s' % self.token)
        self.environ['wsgi.errors'].write('partial-errors-%s' % self.token)
        yield b'partial'

    def close(self):
        if self.close_raises:
            raise RuntimeError('close failed on purpose %s' % self.token)


def application(environ, start_response):
    qs = parse_qs(environ.get('QUERY_STRING', ''))
    case = qs.get('case', ['ok'])[0]
    token = qs.get('token', ['none'])[0]
    stream = environ['wsgi.input']
    errors = environ['wsgi.errors']

    if case == 'ok':
        return reply(start_response, {'ok': True})

    if case == 'read_huge':
        data = stream.read(1 << 40)
        return reply(start_response, {'data': data.decode('latin-1'), 'rest': len(stream.read())})

    if case == 'read_sticky':
        state('sticky-' + token, read_errors(stream, 3))
        return reply(start_response, {'done': True})

    if case == 'read_announced':
        # The client announced more than memory holds: the read fails with
        # MemoryError before consuming anything, and the body stays readable.
        try:
            stream.read(int(environ['CONTENT_LENGTH']))
            first = 'no error'
        except Exception as exc:
            first = type(exc).__name__
        data = stream.read(int(qs['n'][0]))
        return reply(start_response, {'first': first, 'data': data.decode('latin-1')})

    if case == 'read0':
        # read(0) tells a client waiting on "Expect: 100-continue" to send.
        stream.read(0)
        wait_state('go-' + token)
        return reply(start_response, {'body': stream.read().decode('latin-1')})

    if case == 'empty_first':
        def body():
            yield b''
            start_response('200 OK', [('Content-Type', 'text/plain')])
            yield b'after-empty'
        return body()

    if case == 'status':
        start_response(qs['status'][0], [('Content-Type', 'text/plain')])
        return [b'status-body']

    if case == 'bodiless':
        # What frameworks answer to HEAD, 204 and 304: the GET's
        # Content-Length, no body.
        start_response(qs['status'][0], [('Content-Length', qs['cl'][0])])
        return [b''] if qs.get('body') == ['empty'] else []

    if case == 'exc_info':
        try:
            start_response('200 OK', [], 'not a tuple')
            raised = None
        except Exception as exc:
            raised = type(exc).__name__
        return reply(start_response, {'raised': raised})

    if case == 'sendfile':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        # Lets this process (Apache's child, non-dumpable since it changed
        # user) read its own /proc/thread-self/io.
        ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
        wrapper = environ['wsgi.file_wrapper']
        if qs.get('subclass') == ['1']:
            wrapper = type('AppFileWrapper', (wrapper,), {})
        return wrapper(MeasuredFile(BIG, token), 65536)

    if case == 'partial_log':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return Partial(environ, token, qs.get('close') == ['raise'])

    if case == 'loghog':
        # Far more than a pipe holds: blocks while nobody reads the log.
        state('hog-' + token, True)
        for i in range(int(qs.get('lines', ['3000'])[0])):
            errors.write('hog %s %d %s\n' % (token, i, 'x' * 200))
        return reply(start_response, {'hogged': True})

    if case == 'ssi_outer':
        # mod_include runs the inner request while our chunk passes its
        # filter; this request must then still be ours.
        def body():
            start_response('200 OK', [('Content-Type', 'text/html')])
            errors.write('outer-before-%s\n' % token)
            yield ('<p>before <!--#include virtual="/ssi-inner?case=ssi_inner&token=%s" --> after</p>\n' % token).encode()
            errors.write('outer-after-%s\n' % token)
            yield b'<p>tail</p>\n'
        return body()

    if case == 'ssi_inner':
        errors.write('inner-log-%s\n' % token)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [('inner-%s' % token).encode()]

    if case == 'close_fails_bodiless':
        # Headers out, no body, then a failure: Apache answers with an
        # error page, here a WSGI app run while this request is on the stack.
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return FailingClose()

    if case == 'errdoc':
        errors.write('errdoc-log\n')
        body = ('errdoc-served status=%s' % environ.get('REDIRECT_STATUS')).encode()
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [body]

    raise ValueError('unknown case %r' % case)
