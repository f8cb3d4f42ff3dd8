# Two callables: WSGICallableObject selects which one serves.
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'callable=application']


def other(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'callable=other:' + environ.get('mod_wsgi.callable_object', '').encode()]
