# Written by mod_wsgi-express (mod_wsgi-rs {{ s.version }}): the page served
# when no application was given.
PAGE = b'''<!DOCTYPE html>
<html>
<head><title>mod_wsgi-rs is running</title></head>
<body>
<h1>mod_wsgi-rs is running</h1>
<p>This Apache server was set up by <code>mod_wsgi-express</code>, but no
WSGI application was given to it. Name one on the command line:</p>
<pre>mod_wsgi-express start-server app.wsgi</pre>
</body>
</html>
'''


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/html; charset=utf-8'),
                              ('Content-Length', str(len(PAGE)))])
    return [PAGE]
