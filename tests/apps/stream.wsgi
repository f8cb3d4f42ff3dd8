# Streams ?chunks=N pieces of ?size=S bytes, sleeping ?delay=D seconds
# between them.  close() records how many pieces were produced in
# state/close-TOKEN.
import os
import time
from urllib.parse import parse_qs


class Stream:
    def __init__(self, environ, token, chunks, size, delay):
        self.environ = environ
        self.token = token
        self.chunks = chunks
        self.size = size
        self.delay = delay
        self.sent = 0

    def __iter__(self):
        block = b'x' * (self.size - 1) + b'\n'
        for _ in range(self.chunks):
            self.sent += 1
            yield block
            if self.delay:
                time.sleep(self.delay)

    def close(self):
        root = os.path.dirname(os.path.dirname(self.environ['SCRIPT_FILENAME']))
        path = os.path.join(root, 'state', 'close-' + self.token)
        with open(path + '.tmp', 'w') as f:
            f.write('closed sent=%d of %d' % (self.sent, self.chunks))
        os.rename(path + '.tmp', path)


def application(environ, start_response):
    qs = parse_qs(environ.get('QUERY_STRING', ''))
    token = qs.get('token', ['none'])[0]
    chunks = int(qs.get('chunks', ['10'])[0])
    size = int(qs.get('size', ['1024'])[0])
    delay = float(qs.get('delay', ['0'])[0])
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    return Stream(environ, token, chunks, size, delay)
