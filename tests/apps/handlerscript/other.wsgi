# A second WSGIHandlerScript, registered under a name a section redefines.
def handle_request(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'other handler for ' + environ['PATH_INFO'].encode('latin-1')]
