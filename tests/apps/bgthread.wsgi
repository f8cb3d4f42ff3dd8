# Starts a background thread at load time that counts ticks; each request
# reports the count.  The count only advances while no request is running if
# the server releases the GIL between requests.
import json
import os
import threading
import time

ticks = [0]
started = time.monotonic()


def _ticker():
    while True:
        ticks[0] += 1
        time.sleep(0.01)


_thread = threading.Thread(target=_ticker, daemon=True)
_thread.start()


def application(environ, start_response):
    body = json.dumps({'ticks': ticks[0], 'alive': _thread.is_alive(),
                       'elapsed': time.monotonic() - started,
                       'pid': os.getpid()}).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]
