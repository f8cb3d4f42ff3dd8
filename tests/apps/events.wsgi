# Uses the mod_wsgi module's event API; /?show returns what was recorded.
import json
import os

import mod_wsgi

seen = []
STOP_FILE = os.path.join(os.path.dirname(__file__), 'state', 'stopped-%d' % os.getpid())


@mod_wsgi.subscribe_events
def record(name, **event):
    seen.append(name)
    if name == 'request_started':
        event['request_data']['tag'] = 'from-started'
        app = event['application_object']

        def wrapped(environ, start_response):
            environ['events.wrapped'] = True
            return app(environ, start_response)
        return {'application_object': wrapped}
    if name == 'request_finished':
        seen.append('status=%s' % event['status'])


@mod_wsgi.subscribe_shutdown
def stopping(name, **event):
    os.makedirs(os.path.dirname(STOP_FILE), exist_ok=True)
    with open(STOP_FILE, 'w') as f:
        f.write(event['shutdown_reason'])


def application(environ, start_response):
    out = {
        'seen': list(seen),
        'wrapped': environ.get('events.wrapped', False),
        'data': dict(mod_wsgi.request_data()),
        'pid': os.getpid(),
    }
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(out).encode()]
