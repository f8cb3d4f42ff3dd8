def application(environ, start_response):
    body = b'Hello from mod_wsgi-rs!\n'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
