# Reports how the script was loaded as a module.
import json
import sys


def application(environ, start_response):
    mod = sys.modules.get(__name__)
    body = json.dumps({
        'name': __name__,
        'file': globals().get('__file__'),
        'has_mtime': '__mtime__' in globals(),
        'in_sys_modules': mod is not None and getattr(mod, 'application', None) is application,
        'argv': list(getattr(sys, 'argv', [])),
    }).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]
