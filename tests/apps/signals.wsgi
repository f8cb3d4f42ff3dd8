import builtins
import json
import os
import signal


def handler(signum, frame):
    pass


def application(environ, start_response):
    out = {'pid': os.getpid(), 'imported': getattr(builtins, '_mwrs_imported', None)}
    if environ.get('QUERY_STRING') == 'signal':
        previous = signal.signal(signal.SIGUSR2, handler)
        out['installed'] = signal.getsignal(signal.SIGUSR2) is handler
        out['previous_is_handler'] = previous is handler
    body = json.dumps(out).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]
