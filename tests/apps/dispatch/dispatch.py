# A WSGIDispatchScript. Each request names the answers in its query:
# pg= (process_group), ag= (application_group), co= (callable_object); a
# missing one gives None (keep the configured value); RAISE raises, INT
# returns an int. What the script saw of the environ, and whether the
# apache.request_rec capsule of the request before is still usable, go to
# $MWRS_STATE/dispatch-<X-Token>.json.
import ctypes
import json
import os
import urllib.parse

_is_valid = ctypes.pythonapi.PyCapsule_IsValid
_is_valid.restype = ctypes.c_int
_is_valid.argtypes = [ctypes.py_object, ctypes.c_char_p]
_kept = []


def _answer(environ, name):
    value = urllib.parse.parse_qs(environ.get('QUERY_STRING', '')).get(name, [None])[0]
    if value == 'RAISE':
        raise RuntimeError('dispatch failed on purpose')
    if value == 'INT':
        return 42
    return value


def _record(environ):
    token = environ.get('HTTP_X_TOKEN')
    if not token:
        return
    seen = {k: environ.get(k) for k in ('mod_wsgi.process_group', 'mod_wsgi.application_group',
                                        'SCRIPT_NAME', 'PATH_INFO', 'HTTP_X_TOKEN', 'MWRS_SETENV')}
    seen['callable_object_present'] = 'mod_wsgi.callable_object' in environ
    seen['request_rec_present'] = 'apache.request_rec' in environ
    seen['kept_request_rec_valid'] = [_is_valid(c, None) for c in _kept]
    if 'apache.request_rec' in environ:
        _kept.append(environ['apache.request_rec'])
    with open(os.path.join(environ['MWRS_STATE'], 'dispatch-%s.json' % token), 'w') as f:
        json.dump(seen, f)


def process_group(environ):
    _record(environ)
    return _answer(environ, 'pg')


def application_group(environ):
    return _answer(environ, 'ag')


def callable_object(environ):
    return _answer(environ, 'co')
