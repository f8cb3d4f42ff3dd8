# Counts requests per thread with threading.local.
import json
import os
import threading

_local = threading.local()


def application(environ, start_response):
    _local.count = getattr(_local, 'count', 0) + 1
    body = json.dumps({'count': _local.count, 'thread': threading.get_ident(),
                       'pid': os.getpid()}).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]
