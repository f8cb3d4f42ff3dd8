# Raises before start_response; the traceback names the query string, so a
# test can find it in the right error log.


def application(environ, start_response):
    raise RuntimeError('boom-' + environ['QUERY_STRING'])
