# Exercises sys.stdin / sys.stdout / sys.stderr from inside a request.
#   ?op=stdin   sys.stdin.read()
#   ?op=stdout&token=T   print('mwrs-stdout-T')
#   ?op=stderr&token=T   print('mwrs-stderr-T', file=sys.stderr)
import json
import sys
from urllib.parse import parse_qs


def application(environ, start_response):
    qs = parse_qs(environ.get('QUERY_STRING', ''))
    op = qs.get('op', [''])[0]
    token = qs.get('token', [''])[0]
    result = {'op': op, 'ok': None, 'exc': None, 'oserror': False}
    try:
        if op == 'stdin':
            sys.stdin.read()
        elif op == 'stdout':
            print('mwrs-stdout-%s' % token)
            sys.stdout.flush()
        elif op == 'stderr':
            print('mwrs-stderr-%s' % token, file=sys.stderr)
            sys.stderr.flush()
        else:
            raise ValueError('unknown op')
        result['ok'] = True
    except Exception as exc:
        result['ok'] = False
        result['exc'] = type(exc).__name__
        result['oserror'] = isinstance(exc, OSError)
    body = json.dumps(result).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]
