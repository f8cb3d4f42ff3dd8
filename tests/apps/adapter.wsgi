# One application, many behaviours, selected by ?case=NAME (&token=T).
# Used to check start_response validation and response-body semantics.
import os
import sys
from urllib.parse import parse_qs

BAD_RESPONSES = {
    # case name: (status, headers)
    'status_abc': ('abc', []),
    'status_2000': ('2000 OK', []),
    'status_crlf': ('200\r\nX-Injected: status', []),
    'status_reason_lf': ('200 OK\nX-Injected: status', []),
    'status_reason_ctl': ('200 O\x01K', []),
    'value_crlf': ('200 OK', [('X-A', 'v\r\nSet-Cookie: injected=1')]),
    'value_lf': ('200 OK', [('X-A', 'v\nX-Injected: lf')]),
    'value_cr': ('200 OK', [('X-A', 'v\rX-Injected: cr')]),
    'value_nul': ('200 OK', [('X-A', 'v\x00X-Injected-Nul')]),
    'value_del': ('200 OK', [('X-A', 'v\x7fw')]),
    'value_nonlatin1': ('200 OK', [('X-A', 'caf\u20ac')]),
    'value_not_str': ('200 OK', [('X-A', 42)]),
    'name_space': ('200 OK', [('X Bad', 'v')]),
    'name_colon': ('200 OK', [('X-Bad:Inj', 'v')]),
    'name_empty': ('200 OK', [('', 'v')]),
    'name_crlf': ('200 OK', [('X-A\r\nX-Injected', 'v')]),
    'header_not_tuple': ('200 OK', ['X-A: v']),
    'content_length_bad': ('200 OK', [('Content-Length', 'abc')]),
}


def _state(environ, name, text):
    # The state directory sits next to the apps directory.
    root = os.path.dirname(os.path.dirname(environ['SCRIPT_FILENAME']))
    path = os.path.join(root, 'state', name)
    with open(path + '.tmp', 'w') as f:
        f.write(text)
    os.rename(path + '.tmp', path)


class Recorder:
    """Iterable recording whether close() was called, and how far it got."""

    def __init__(self, environ, token, items, fail_at=None):
        self.environ = environ
        self.token = token
        self.items = items
        self.fail_at = fail_at
        self.sent = 0

    def __iter__(self):
        for i, item in enumerate(self.items):
            if i == self.fail_at:
                raise RuntimeError('mwrs-iter-failure-%s' % self.token)
            self.sent += 1
            yield item

    def close(self):
        _state(self.environ, 'close-' + self.token, 'closed sent=%d' % self.sent)


def application(environ, start_response):
    qs = parse_qs(environ.get('QUERY_STRING', ''))
    case = qs.get('case', ['ok'])[0]
    token = qs.get('token', ['none'])[0]

    if case in BAD_RESPONSES:
        status, headers = BAD_RESPONSES[case]
        start_response(status, headers)
        return [b'BAD-RESPONSE-BODY']

    if case == 'ok':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'ok']

    if case == 'value_tab':
        start_response('200 OK', [('X-Tab', 'a\tb'), ('Content-Type', 'text/plain')])
        return [b'tab']

    if case == 'reason':
        start_response('202 Custom Reason Phrase', [('Content-Type', 'text/plain')])
        return [b'reason']

    if case == 'multi_cookie':
        start_response('200 OK', [('Set-Cookie', 'a=1'), ('Set-Cookie', 'b=2'),
                                  ('Content-Type', 'text/plain')])
        return [b'cookies']

    if case == 'double_start':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        try:
            start_response('201 Created', [('X-Second', '1')])
        except Exception as exc:
            return [('second-call-raised:%s' % type(exc).__name__).encode()]
        return [b'second-call-accepted']

    if case == 'double_start_uncaught':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        start_response('201 Created', [('X-Second', '1')])
        return [b'second-call-accepted']

    if case == 'exc_info_replace':
        start_response('200 OK', [('X-First', '1'), ('Content-Type', 'text/plain')])
        try:
            raise ValueError('replace me')
        except ValueError:
            start_response('503 Replaced Status', [('X-Second', '1'),
                                                   ('Content-Type', 'text/plain')],
                           sys.exc_info())
        return [b'replaced']

    if case == 'write':
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        write(b'abc')
        write(b'def')
        return []

    if case == 'write_then_iter':
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        write(b'abc')
        return [b'def', b'ghi']

    if case == 'empty_then_raise':
        def gen():
            start_response('200 OK', [('Content-Type', 'text/plain'),
                                      ('X-Should-Not-Appear', '1')])
            yield b''
            raise RuntimeError('mwrs-empty-then-raise-%s' % token)
        return gen()

    if case == 'cl_truncate':
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '5')])
        return [b'0123456789']

    if case == 'cl_truncate_multi':
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '5')])
        return [b'012', b'345', b'6789']

    if case == 'raise_before':
        raise ValueError('mwrs-raise-before-%s' % token)

    if case == 'raise_after_chunk':
        def gen():
            start_response('200 OK', [('Content-Type', 'text/plain')])
            yield b'first-chunk;'
            raise RuntimeError('mwrs-raise-after-%s' % token)
        return gen()

    if case == 'raise_after_chunk_cl':
        def gen():
            start_response('200 OK', [('Content-Type', 'text/plain'),
                                      ('Content-Length', '100')])
            yield b'0123456789'
            raise RuntimeError('mwrs-raise-after-cl-%s' % token)
        return gen()

    if case == 'str_body':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return ['this is a str, not bytes']

    if case == 'close_normal':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return Recorder(environ, token, [b'a', b'b', b'c'])

    if case == 'close_raise':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return Recorder(environ, token, [b'a', b'b', b'c'], fail_at=1)

    if case == 'close_raise_first':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return Recorder(environ, token, [b'a', b'b'], fail_at=0)

    if case == 'errors':
        environ['wsgi.errors'].write('mwrs-wsgi-errors-%s\n' % token)
        sys.stderr.write('mwrs-sys-stderr-%s\n' % token)
        sys.stderr.flush()
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'logged']

    raise ValueError('unknown case %r' % case)
