# Leaves traces of how this process's Python ends, in the test server's
# state directory (next to the apps directory): stopped-PID (a shutdown subscriber, with the reason),
# atexit-PID (an atexit handler), and tlocal-NAME (see ?tlocal=NAME).
#   ?tlocal=NAME   keep an object in a threading.local of the serving thread;
#                  when it is released it writes tlocal-NAME: on which thread,
#                  and whether Python was finalising.
#   ?hang=1        start a non-daemon thread that never ends
#   ?busy=SECONDS  run Python code without a pause, holding the GIL
#   ?sleep=SECONDS sleep first
# Every request writes serving-PID first, then answers with pid and thread.
import atexit
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs

import mod_wsgi

STATE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'state')
_local = threading.local()


def _write(name, text):
    with open(os.path.join(STATE, name), 'w') as f:
        f.write(text)


@mod_wsgi.subscribe_shutdown
def _stopping(name, **event):
    _write('stopped-%d' % os.getpid(), event['shutdown_reason'])


atexit.register(lambda: _write('atexit-%d' % os.getpid(), 'ran'))


class Traced:
    def __init__(self, name):
        self.name = name
        self.owner = threading.get_ident()

    def __del__(self):
        _write('tlocal-' + self.name, json.dumps({
            'pid': os.getpid(),
            'thread': threading.get_ident(),
            'owner': self.owner,
            'finalizing': sys.is_finalizing(),
        }))


def application(environ, start_response):
    qs = parse_qs(environ.get('QUERY_STRING', ''))
    _write('serving-%d' % os.getpid(), str(threading.get_ident()))
    if 'tlocal' in qs:
        _local.traced = Traced(qs['tlocal'][0])
    if 'hang' in qs:
        threading.Thread(target=threading.Event().wait, daemon=False).start()
    if 'sleep' in qs:
        time.sleep(float(qs['sleep'][0]))
    if 'busy' in qs:
        end = time.monotonic() + float(qs['busy'][0])
        while time.monotonic() < end:
            pass
    body = json.dumps({'pid': os.getpid(), 'thread': threading.get_ident()}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
