# Streams ?mib=N chunks of 1 MiB (default 100).  Chunk i is
# sha256(b'chunk-%d' % i).digest() repeated 32768 times, so the client can
# recompute the expected bytes.  The serving pid is in X-Pid.
import hashlib
import os
from urllib.parse import parse_qs


def chunk(i):
    return hashlib.sha256(b'chunk-%d' % i).digest() * 32768


def application(environ, start_response):
    qs = parse_qs(environ.get('QUERY_STRING', ''))
    mib = int(qs.get('mib', ['100'])[0])
    start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                              ('X-Pid', str(os.getpid()))])

    def gen():
        for i in range(mib):
            yield chunk(i)
    return gen()
