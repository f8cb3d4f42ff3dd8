# Reads wsgi.input in 64 KiB pieces and returns the sha256 and length as
# JSON, with the largest piece seen and the serving pid.
import hashlib
import json
import os


def application(environ, start_response):
    stream = environ['wsgi.input']
    h = hashlib.sha256()
    total = 0
    largest = 0
    reads = 0
    while True:
        piece = stream.read(65536)
        if not piece:
            break
        reads += 1
        largest = max(largest, len(piece))
        h.update(piece)
        total += len(piece)
    body = json.dumps({'sha256': h.hexdigest(), 'length': total,
                       'largest': largest, 'reads': reads,
                       'content_length': environ.get('CONTENT_LENGTH'),
                       'pid': os.getpid()}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
