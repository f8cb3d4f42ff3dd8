# The application behind the dispatch script: which callable ran, where.
import json
import os


def _report(name, environ, start_response):
    keys = ('mod_wsgi.process_group', 'mod_wsgi.application_group', 'mod_wsgi.callable_object',
            'SCRIPT_NAME', 'PATH_INFO')
    report = {'callable': name, 'pid': os.getpid(), 'environ': {k: environ.get(k) for k in keys},
              'request_rec_present': 'apache.request_rec' in environ}
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(report).encode()]


def application(environ, start_response):
    return _report('application', environ, start_response)


def other(environ, start_response):
    return _report('other', environ, start_response)
