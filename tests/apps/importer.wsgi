# Imports modules that live only in the WSGIPythonPath directories.
import json
import sys


def application(environ, start_response):
    out = {'path': list(sys.path)}
    for name in ('mwrs_lib1', 'mwrs_lib2', 'mwrs_pth'):
        try:
            mod = __import__(name)
            out[name] = mod.VALUE
            out[name + '_file'] = mod.__file__
        except Exception as exc:
            out[name] = 'ERROR %s: %s' % (type(exc).__name__, exc)
    body = json.dumps(out).encode('utf-8')
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]
