# Scenario "hello": the smallest possible response, fixed Content-Length.
# Measures per-request overhead of the module (request -> Python -> response).
BODY = b'Hello, world!\n'
HEADERS = [('Content-Type', 'text/plain'), ('Content-Length', str(len(BODY)))]


def application(environ, start_response):
    start_response('200 OK', HEADERS)
    return [BODY]
