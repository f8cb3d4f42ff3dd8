# Every request leaves half a line in wsgi.errors (logged when it ends),
# while a thread of the app keeps making and dropping wsgi.errors-like
# streams, with very short thread switches: a request's end must not trip
# over streams other threads make meanwhile.
import sys
import threading

sys.setswitchinterval(1e-6)
_streams = []
_lock = threading.Lock()
_started = []


def _churn(stream_type):
    while True:
        _streams.append(stream_type('<churn>'))
        if len(_streams) > 5000:
            del _streams[:2500]


def application(environ, start_response):
    errors = environ['wsgi.errors']
    with _lock:
        if not _started:
            _started.append(threading.Thread(target=_churn, args=(type(errors),), daemon=True))
            _started[0].start()
    errors.write('half a line')
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '2')])
    return [b'ok']
