# Scenario "upload_10m": the client POSTs 10 MiB; the app reads wsgi.input
# in 64 KiB pieces and answers with the number of bytes it read.
# Measures the request-body (input filter -> wsgi.input) path.
#
# When wrk stops, the uploads still in flight are cut off; the server then
# raises OSError from read() (mod_wsgi: "request data read error").  That is
# expected, so it is swallowed here to keep the error log meaningful.


def application(environ, start_response):
    remaining = int(environ.get('CONTENT_LENGTH') or 0)
    stream = environ['wsgi.input']
    total = 0
    try:
        while remaining > 0:
            data = stream.read(min(65536, remaining))
            if not data:
                break
            total += len(data)
            remaining -= len(data)
    except OSError:
        start_response('400 Bad Request', [('Content-Type', 'text/plain'),
                                           ('Content-Length', '0')])
        return [b'']
    body = str(total).encode('ascii')
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
