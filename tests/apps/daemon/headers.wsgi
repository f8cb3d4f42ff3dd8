# Response-header edge cases.
#   ?mode=crlf            a header value containing CR LF and an injected header
#   ?mode=lf              a header value containing a bare LF
#   ?mode=name            a header name containing a space and a colon
#   ?mode=many&n=N&size=S N headers X-Big-i whose values are S bytes each
from urllib.parse import parse_qs


def application(environ, start_response):
    qs = parse_qs(environ.get('QUERY_STRING', ''))
    mode = qs.get('mode', ['ok'])[0]
    headers = [('Content-Type', 'text/plain')]
    if mode == 'crlf':
        headers.append(('X-Split', 'a\r\nX-Injected: yes'))
    elif mode == 'lf':
        headers.append(('X-Split', 'a\nX-Injected: yes'))
    elif mode == 'name':
        headers.append(('X-Bad: Name', 'v'))
    elif mode == 'many':
        n = int(qs['n'][0])
        size = int(qs['size'][0])
        for i in range(n):
            headers.append(('X-Big-%d' % i, 'v' * size))
    start_response('200 OK', headers)
    return [b'headers ' + mode.encode()]
