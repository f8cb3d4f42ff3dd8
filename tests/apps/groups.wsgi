# Reports the application group as the environ and as the mod_wsgi module
# see it, and whether an attribute an earlier request set on wsgi.errors or
# wsgi.input (?mark=VALUE sets one) shows through in this request.
import json
import threading

import mod_wsgi

STREAMS = ('wsgi.errors', 'wsgi.input')


def application(environ, start_response):
    seen = {name: getattr(environ[name], 'mwrs_mark', None) for name in STREAMS}
    refused = []
    query = environ.get('QUERY_STRING', '')
    if query.startswith('mark='):
        for name in STREAMS:
            try:
                setattr(environ[name], 'mwrs_mark', query[5:])
            except AttributeError:
                refused.append(name)
    data = {
        'environ_group': environ['mod_wsgi.application_group'],
        'module_group': mod_wsgi.application_group,
        'thread': threading.get_ident(),
        'seen': seen,
        'refused': refused,
    }
    body = json.dumps(data).encode('utf-8')
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
