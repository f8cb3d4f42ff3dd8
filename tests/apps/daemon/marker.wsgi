# Records every import and every call in the state directory, so a test
# can prove the app never ran: state/marker-imported-PID, state/marker-called-PID.
import os

STATE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'state')

with open(os.path.join(STATE, 'marker-imported-%d' % os.getpid()), 'w') as f:
    f.write('uid=%d\n' % os.getuid())


def application(environ, start_response):
    with open(os.path.join(STATE, 'marker-called-%d' % os.getpid()), 'a') as f:
        f.write('%s uid=%d\n' % (environ.get('REQUEST_URI'), os.getuid()))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'marker ran in %d' % os.getpid()]
