# Scenario "file_10m": a 10 MiB file returned through wsgi.file_wrapper with
# Content-Length, the way applications serve downloads.  An embedded module
# can hand the file to Apache (sendfile); a daemon has to get the bytes (or
# the descriptor) to the Apache child.  bench.py writes blob_10m.bin next to
# this script before any server starts.
import os

PATH = os.path.join(os.path.dirname(__file__), 'blob_10m.bin')


def application(environ, start_response):
    f = open(PATH, 'rb')
    size = os.fstat(f.fileno()).st_size
    start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                              ('Content-Length', str(size))])
    return environ['wsgi.file_wrapper'](f, 65536)
