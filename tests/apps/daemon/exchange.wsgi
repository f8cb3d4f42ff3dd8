# The hand-off between an Apache child and a daemon, selected by ?mode=
# (&token=T names the state files; every run is counted in state/runs-T):
#   count                      answer JSON {pid, body}; &sleep=S first
#   die&how=exit|kill          exit the process (os._exit / SIGKILL) mid-request
#   close_write|close_read|close_raise
#                              a complete body, then close() writes, reads
#                              wsgi.input, or raises; state/close-T says how it went
#   cl&cl=N&body=M             Content-Length N with M bytes of body
#   status&status=LINE         that status line
#   late_head&sleep=S          headers with Content-Length 0, a chunk (so the head
#                              is due but nothing can follow), then sleep
#   big&mib=N                  one chunk of N MiB
#   headers&h=NAME:VALUE...    those response headers, and a body
#   raise                      an exception before start_response
#   notfound                   a 404 with a body of its own
import json
import os
import signal
import time
from urllib.parse import parse_qs


def _state_path(environ, name):
    root = os.path.dirname(os.path.dirname(os.path.dirname(environ['SCRIPT_FILENAME'])))
    return os.path.join(root, 'state', name)


def _record_run(environ, token):
    # One short O_APPEND write per run: runs never interleave.
    fd = os.open(_state_path(environ, 'runs-' + token), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        os.write(fd, b'%d\n' % os.getpid())
    finally:
        os.close(fd)


def _write_state(environ, name, text):
    path = _state_path(environ, name)
    with open(path + '.tmp', 'w') as f:
        f.write(text)
    os.rename(path + '.tmp', path)


class Closing:
    """A complete body, then a close() that misbehaves in one way."""

    def __init__(self, environ, token, mode, write):
        self.environ = environ
        self.token = token
        self.mode = mode
        self.write = write

    def __iter__(self):
        yield b'body'

    def close(self):
        if self.mode == 'close_raise':
            raise RuntimeError('mwrs-close-raise-%s' % self.token)
        try:
            if self.mode == 'close_write':
                self.write(b'extra')
                outcome = 'written'
            else:
                outcome = 'read %r' % self.environ['wsgi.input'].read()
        except Exception as exc:  # noqa: BLE001 - the outcome is the point
            outcome = 'refused %s: %s' % (type(exc).__name__, exc)
        _write_state(self.environ, 'close-' + self.token, outcome)


def application(environ, start_response):
    qs = parse_qs(environ.get('QUERY_STRING', ''))
    mode = qs.get('mode', ['count'])[0]
    token = qs.get('token', ['none'])[0]
    _record_run(environ, token)

    if mode == 'count':
        if 'sleep' in qs:
            time.sleep(float(qs['sleep'][0]))
        body = json.dumps({'pid': os.getpid(),
                           'body': environ['wsgi.input'].read().decode('latin-1')}).encode()
        start_response('200 OK', [('Content-Type', 'application/json'),
                                  ('Content-Length', str(len(body)))])
        return [body]

    if mode == 'die':
        if qs.get('how', ['exit'])[0] == 'kill':
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(3)

    if mode in ('close_write', 'close_read', 'close_raise'):
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        return Closing(environ, token, mode, write)

    if mode == 'cl':
        start_response('200 OK', [('Content-Type', 'text/plain'),
                                  ('Content-Length', qs['cl'][0])])
        return [b'x' * int(qs['body'][0])]

    if mode == 'status':
        start_response(qs['status'][0], [('Content-Type', 'text/plain')])
        return [b'status body']

    if mode == 'late_head':
        def late():
            start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '0')])
            yield b'clipped'
            time.sleep(float(qs['sleep'][0]))
        return late()

    if mode == 'big':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return [b'z' * (int(qs['mib'][0]) << 20)]

    if mode == 'headers':
        extra = [tuple(h.split(':', 1)) for h in qs.get('h', [])]
        start_response('200 OK', [('Content-Type', 'text/plain')] + extra)
        return [b'hello']

    if mode == 'raise':
        raise ValueError('mwrs-raise-before-%s' % token)

    if mode == 'notfound':
        start_response('404 Not Found', [('Content-Type', 'text/plain')])
        return [b'the app says not found']

    raise ValueError('unknown mode %r' % mode)
