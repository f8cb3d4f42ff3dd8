# Serves data/big.bin through wsgi.file_wrapper.
#   ?mode=file      a real file object
#   ?mode=offset    a real file, positioned at ?offset=N first
#   ?mode=bytesio   an io.BytesIO holding the same bytes (no fileno())
#   ?mode=cl        a real file with an app-supplied Content-Length of ?n=N
import io
import os
from urllib.parse import parse_qs


def application(environ, start_response):
    qs = parse_qs(environ.get('QUERY_STRING', ''))
    mode = qs.get('mode', ['file'])[0]
    path = os.path.join(os.path.dirname(environ['SCRIPT_FILENAME']), 'data', 'big.bin')
    headers = [('Content-Type', 'application/octet-stream')]
    wrapper = environ['wsgi.file_wrapper']
    if mode == 'file':
        f = open(path, 'rb')
    elif mode == 'offset':
        f = open(path, 'rb')
        f.seek(int(qs['offset'][0]))
    elif mode == 'bytesio':
        with open(path, 'rb') as src:
            f = io.BytesIO(src.read())
    elif mode == 'cl':
        f = open(path, 'rb')
        headers.append(('Content-Length', qs['n'][0]))
    else:
        raise ValueError(mode)
    start_response('200 OK', headers)
    return wrapper(f, 32768)
