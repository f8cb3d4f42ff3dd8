# Reports how the request was mapped onto this script.
import json


def application(environ, start_response):
    keys = ('SCRIPT_NAME', 'PATH_INFO', 'SCRIPT_FILENAME', 'REQUEST_URI',
            'REQUEST_METHOD', 'QUERY_STRING', 'mod_wsgi.handler_script',
            'mod_wsgi.callable_object', 'mod_wsgi.application_group',
            'mod_wsgi.request_handler')
    body = json.dumps({k: environ.get(k) for k in keys}).encode('utf-8')
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
