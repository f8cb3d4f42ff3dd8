# Reports which interpreter serves it and what that interpreter holds, for
# the application group tests. Query:
#   mark=NAME    add a sys.path entry and a sys.modules entry named after NAME
#   import=MOD   import MOD; reports 'ok' or the exception
#   sleep=S      write sleeping-GROUP-PID, then sleep S seconds (without the GIL)
#   spin=N       run N chunks of pure Python work; reports each chunk's
#                wall-clock interval and the CPU time it took
#   daemon=1     start a daemon thread that never ends
# Leaves traces in the test server's state directory, named after the
# application group (GLOBAL for the main interpreter) and the process:
# stopped-GROUP-PID (a shutdown subscriber, with the reason) and
# atexit-GROUP-PID (an atexit function, with when it ran).
import atexit
import importlib
import json
import os
import re
import sys
import threading
import time
import types
from urllib.parse import parse_qs

import mod_wsgi

STATE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'state')
TAG = re.sub(r'[^A-Za-z0-9]', '_', mod_wsgi.application_group) or 'GLOBAL'
HITS = {'count': 0}


def _write(kind, text):
    with open(os.path.join(STATE, '%s-%s-%d' % (kind, TAG, os.getpid())), 'w') as f:
        f.write(text)


@mod_wsgi.subscribe_shutdown
def _stopping(name, **event):
    _write('stopped', event['shutdown_reason'])


atexit.register(lambda: _write('atexit', repr(time.monotonic())))


def _spin(chunks):
    out = []
    for _ in range(chunks):
        wall, cpu = time.monotonic(), time.thread_time()
        x = 0
        for i in range(20000):
            x += i * i
        out.append((wall, time.monotonic(), time.thread_time() - cpu))
    return out


def application(environ, start_response):
    qs = {k: v[0] for k, v in parse_qs(environ.get('QUERY_STRING', '')).items()}
    HITS['count'] += 1
    out = {
        'group': environ['mod_wsgi.application_group'],
        'module_group': mod_wsgi.application_group,
        'pid': os.getpid(),
        'interpreter': id(sys.modules),
        'hits': HITS['count'],
    }
    if 'mark' in qs:
        sys.path.append('/nonexistent/mwrs-mark-' + qs['mark'])
        sys.modules['mwrs_mark_' + qs['mark']] = types.ModuleType('mwrs_mark_' + qs['mark'])
    if 'import' in qs:
        try:
            importlib.import_module(qs['import'])
            out['imported'] = 'ok'
        except Exception as e:
            out['imported'] = '%s: %s' % (type(e).__name__, e)
    if 'sleep' in qs:
        _write('sleeping', '')
        time.sleep(float(qs['sleep']))
    if 'spin' in qs:
        out['chunks'] = _spin(int(qs['spin']))
    if 'daemon' in qs:
        threading.Thread(target=threading.Event().wait, daemon=True).start()
    out['marks_in_path'] = [p.rsplit('-', 1)[1] for p in sys.path if 'mwrs-mark-' in p]
    out['marks_in_modules'] = sorted(m[len('mwrs_mark_'):] for m in sys.modules if m.startswith('mwrs_mark_'))
    body = json.dumps(out).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
