# Loaded at daemon start-up (WSGIImportScript): announces itself with
# state/slowstart-PID, then holds the start-up until state/slowstart-go
# exists (or 30 s pass), so a test can look at a daemon that is starting.
import os
import time

STATE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'state')

with open(os.path.join(STATE, 'slowstart-%d' % os.getpid()), 'w') as f:
    f.write('starting\n')
_deadline = time.time() + 30
while not os.path.exists(os.path.join(STATE, 'slowstart-go')) and time.time() < _deadline:
    time.sleep(0.05)


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'started']
