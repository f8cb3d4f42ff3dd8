# Streams ?chunks=N pieces of 64 KiB with ?delay=D seconds between them.
# close() records how many pieces were produced in state/close-TOKEN.
import os
import time
from urllib.parse import parse_qs


class Stream:
    def __init__(self, environ, token, chunks, delay):
        self.state = os.path.join(
            os.path.dirname(os.path.dirname(os.path.dirname(environ['SCRIPT_FILENAME']))),
            'state')
        self.token = token
        self.chunks = chunks
        self.delay = delay
        self.sent = 0

    def __iter__(self):
        block = b'y' * 65535 + b'\n'
        for _ in range(self.chunks):
            self.sent += 1
            yield block
            if self.delay:
                time.sleep(self.delay)

    def close(self):
        path = os.path.join(self.state, 'close-' + self.token)
        with open(path + '.tmp', 'w') as f:
            f.write('closed sent=%d of %d pid=%d' % (self.sent, self.chunks, os.getpid()))
        os.rename(path + '.tmp', path)


def application(environ, start_response):
    qs = parse_qs(environ.get('QUERY_STRING', ''))
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    return Stream(environ, qs.get('token', ['none'])[0],
                  int(qs.get('chunks', ['1000'])[0]),
                  float(qs.get('delay', ['0.05'])[0]))
