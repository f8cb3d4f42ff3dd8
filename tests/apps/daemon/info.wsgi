# Reports the serving process as JSON.  ?sleep=SECONDS sleeps first (a
# slow or hung request); ?log=TEXT prints TEXT to stderr (the error log).
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs


def application(environ, start_response):
    qs = parse_qs(environ.get('QUERY_STRING', ''))
    if 'log' in qs:
        print(qs['log'][0], file=sys.stderr, flush=True)
    if 'sleep' in qs:
        time.sleep(float(qs['sleep'][0]))
    data = {
        'pid': os.getpid(),
        'ppid': os.getppid(),
        'uid': os.getuid(),
        'thread': threading.get_ident(),
        'process_group': environ.get('mod_wsgi.process_group'),
        'multithread': environ.get('wsgi.multithread'),
        'multiprocess': environ.get('wsgi.multiprocess'),
    }
    body = json.dumps(data, sort_keys=True).encode('utf-8')
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
