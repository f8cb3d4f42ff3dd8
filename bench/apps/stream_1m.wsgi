# Scenario "stream_1m": a 1 MiB response streamed as 16 chunks of 64 KiB,
# without Content-Length (so the server must use chunked encoding).
# Measures the cost of the iterable/write path and bucket handling.
CHUNK = b'x' * 65536
NCHUNKS = 16


def _body():
    for _ in range(NCHUNKS):
        yield CHUNK


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    return _body()
