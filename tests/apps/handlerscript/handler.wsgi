# A WSGIHandlerScript: handle_request() reports what it was given. The
# number of times this file was executed, and the resource its
# reload_required() was last asked about, live in builtins so that they
# survive the script being executed again. reload_required(resource) asks
# for a reload when a file named resource + '.reload' exists.
import builtins
import json
import os

builtins.mwrs_handler_loads = getattr(builtins, 'mwrs_handler_loads', 0) + 1


def reload_required(resource):
    builtins.mwrs_reload_asked = resource
    return os.path.exists(resource + '.reload')


def _plain(value):
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return '<%s>' % type(value).__name__


def handle_request(environ, start_response):
    report = {
        'environ': {k: _plain(v) for k, v in environ.items()},
        'script': __file__,
        'loads': builtins.mwrs_handler_loads,
        'reload_asked': getattr(builtins, 'mwrs_reload_asked', None),
        'pid': os.getpid(),
    }
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(report).encode()]


def application(environ, start_response):
    # Never called: WSGICallableObject does not apply to handler scripts.
    start_response('500 Wrong Callable', [('Content-Type', 'text/plain')])
    return [b'application() of a handler script was called']
