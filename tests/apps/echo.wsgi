# Reads wsgi.input in the way named by ?mode= and reports what it got.
#   read        input.read()
#   read_n      input.read(n) until b''
#   readline    input.readline() until b''
#   readline_n  input.readline(n) until b''
#   readlines   input.readlines()
#   iter        for line in input
#   raw         input.read(), body echoed back verbatim
# With ?token=T it writes state/reading-T before it starts reading.
import hashlib
import json
import os
from urllib.parse import parse_qs


def _state(environ, name, text):
    # The state directory sits next to the apps directory.
    root = os.path.dirname(os.path.dirname(environ['SCRIPT_FILENAME']))
    path = os.path.join(root, 'state', name)
    with open(path + '.tmp', 'w') as f:
        f.write(text)
    os.rename(path + '.tmp', path)


def application(environ, start_response):
    qs = parse_qs(environ.get('QUERY_STRING', ''))
    mode = qs.get('mode', ['read'])[0]
    n = int(qs.get('n', ['0'])[0] or 0)
    stream = environ['wsgi.input']
    if 'token' in qs:
        _state(environ, 'reading-' + qs['token'][0], 'reading')
    pieces = []
    if mode == 'read' or mode == 'raw':
        pieces.append(stream.read())
    elif mode == 'read_n':
        while True:
            data = stream.read(n)
            if not data:
                break
            pieces.append(data)
    elif mode == 'readline':
        while True:
            line = stream.readline()
            if not line:
                break
            pieces.append(line)
    elif mode == 'readline_n':
        while True:
            line = stream.readline(n)
            if not line:
                break
            pieces.append(line)
    elif mode == 'readlines':
        pieces.extend(stream.readlines())
    elif mode == 'iter':
        for line in stream:
            pieces.append(line)
    else:
        raise ValueError('bad mode %r' % mode)
    body = b''.join(pieces)
    if mode == 'raw':
        start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                                  ('Content-Length', str(len(body)))])
        return [body]
    out = {
        'mode': mode,
        'len': len(body),
        'sha256': hashlib.sha256(body).hexdigest(),
        'pieces': [len(p) for p in pieces],
        'types': sorted(set(type(p).__name__ for p in pieces)),
        'input_terminated': environ.get('wsgi.input_terminated'),
        'CONTENT_LENGTH': environ.get('CONTENT_LENGTH'),
        'CONTENT_TYPE': environ.get('CONTENT_TYPE'),
        'HTTP_TRANSFER_ENCODING': environ.get('HTTP_TRANSFER_ENCODING'),
        'REQUEST_METHOD': environ.get('REQUEST_METHOD'),
    }
    data = json.dumps(out).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(data)))])
    return [data]
