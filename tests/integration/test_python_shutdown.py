"""How Python ends in Apache's children and in daemons: shutdown subscribers
hear of it even under WSGIDestroyInterpreter Off, Python is never finalised
under a request still running in it (prefork's SIGTERM handler), a thread
the app leaves running cannot keep a stopping process alive, and a thread's
Python state (its threading.local data) is released when the thread exits."""
import json
import os
import re
import subprocess
import threading
import time

import pytest

import daemon_util as du
from harness import Apache, ApacheError

CRASH_MARKERS = ['Segmentation fault', 'exit signal', 'Fatal Python error', 'panicked', 'Aborted']

EMBEDDED = 'WSGIScriptAlias /life {apps}/lifecycle.wsgi\n'
DAEMON = ('WSGIDaemonProcess life threads=2 display-name=%{GROUP}\n'
          'WSGIScriptAlias /life {apps}/lifecycle.wsgi process-group=life\n')


def state_path(server, name):
    return os.path.join(server.state, name)


def read_state(server, name):
    with open(state_path(server, name)) as f:
        return f.read()


def wait_gone(pid, timeout):
    return du.wait_for(lambda: not du.alive(pid), timeout)


def assert_no_crash(text):
    for marker in CRASH_MARKERS:
        assert marker not in text, (marker, text[-3000:])


def serve(server, query=''):
    r = server.get('/life' + query, timeout=30)
    assert r.status == 200, r.raw[:1000]
    return r.json()


# -- WSGIDestroyInterpreter ------------------------------------------------------

@pytest.mark.parametrize('mode', ['embedded', 'daemon'])
@pytest.mark.parametrize('destroy', ['On', 'Off'])
def test_shutdown_subscribers_run_whether_or_not_python_is_destroyed(mode, destroy):
    """Off skips finalising Python (no atexit), never the process_stopping
    event, as in mod_wsgi."""
    config = 'WSGIDestroyInterpreter %s\n' % destroy + (EMBEDDED if mode == 'embedded' else DAEMON)
    a = Apache('event', config, name='destroy')
    try:
        a.start()
        pid = serve(a)['pid']
        left = a.stop(kill=False, timeout=20)
        assert left == [], left
        assert wait_gone(pid, 10)
        assert read_state(a, 'stopped-%d' % pid) == 'shutdown_signal'
        assert os.path.exists(state_path(a, 'atexit-%d' % pid)) == (destroy == 'On')
        assert_no_crash(a.error_log())
    finally:
        a.cleanup()


# -- Finalisation under a request in Python (prefork's SIGTERM) ---------------------

@pytest.mark.parametrize('query', ['?busy=30', '?sleep=30'])
def test_stop_during_a_request_in_python_does_not_finalise_under_it(query):
    """prefork runs the child's cleanups from its SIGTERM handler, here on
    top of the request's Python code (holding the GIL, or waiting without
    it): the child must exit at once, without running Python there."""
    a = Apache('prefork', EMBEDDED, name='sigterm', single=True)
    try:
        a.start()
        pid = serve(a)['pid']
        os.unlink(state_path(a, 'serving-%d' % pid))
        errors = []

        def busy():
            try:
                a.get('/life' + query, timeout=40)
            except (OSError, ApacheError) as exc:
                errors.append(exc)   # the connection dies with the child
        client = threading.Thread(target=busy, daemon=True)
        client.start()
        assert a.wait_state('serving-%d' % pid, timeout=15) is not None
        left = a.stop(kill=False, timeout=20)
        assert left == [], left
        log = a.error_log()
        assert 'still did not exit' not in log, log[-3000:]
        assert_no_crash(log)
        assert not os.path.exists(state_path(a, 'stopped-%d' % pid))
        client.join(30)
    finally:
        a.cleanup()


def test_daemon_stopping_with_a_request_in_python_does_not_finalise():
    """A daemon told to stop while a worker still runs a request in Python
    tells its subscribers but exits without finalising under that worker."""
    config = DAEMON.replace('threads=2', 'threads=2 shutdown-timeout=2')
    with du.running(config, 'dbusy', {'life': 1}) as a:
        pid = serve(a)['pid']
        os.unlink(state_path(a, 'serving-%d' % pid))
        client = threading.Thread(target=lambda: du.try_get(a, '/life?sleep=60', timeout=70), daemon=True)
        client.start()
        assert a.wait_state('serving-%d' % pid, timeout=15) is not None
        os.kill(pid, 15)
        assert wait_gone(pid, 30), 'the daemon is still alive: %s' % du.proc_stat(pid)
        assert read_state(a, 'stopped-%d' % pid) == 'shutdown_signal'
        assert not os.path.exists(state_path(a, 'atexit-%d' % pid))
        assert 'still running Python for a request' in a.error_log()
        assert_no_crash(a.error_log())
        client.join(30)


# -- A thread the app leaves running ---------------------------------------------------

def test_non_daemon_thread_cannot_keep_a_stopping_child_alive():
    """Py_FinalizeEx waits for non-daemon threads; a child whose app left
    one running exits after the shutdown bound instead of staying in G."""
    a = Apache('event', EMBEDDED, name='hang')
    try:
        a.start()
        pid = serve(a, '?hang=1')['pid']
        a.graceful()
        assert wait_gone(pid, 40), 'the old child is still alive: %s' % du.proc_stat(pid)
        assert read_state(a, 'stopped-%d' % pid) == 'shutdown_signal'
        # The log names the step: the app runs in its own interpreter, whose
        # ending waits for the thread.
        assert re.search(r"Python did not shut down within [\d.]+s in process %d; exiting without waiting for it "
                         r"\(it was ending the interpreter of application group '[^']+\|/life'\)" % pid, a.error_log())
        assert serve(a)['pid'] != pid
        assert_no_crash(a.error_log())
    finally:
        a.cleanup()


def test_non_daemon_thread_cannot_keep_a_stopping_daemon_alive():
    config = DAEMON.replace('threads=2', 'threads=2 shutdown-timeout=2')
    with du.running(config, 'dhang', {'life': 1}) as a:
        pid = serve(a, '?hang=1')['pid']
        os.kill(pid, 15)
        assert wait_gone(pid, 30), 'the daemon is still alive: %s' % du.proc_stat(pid)
        assert read_state(a, 'stopped-%d' % pid) == 'shutdown_signal'
        assert_no_crash(a.error_log())


# -- Thread states are freed when their thread exits ------------------------------------

@pytest.mark.parametrize('destroy', ['On', 'Off'])
def test_thread_local_data_released_when_an_apache_thread_exits(destroy):
    """A graceful restart ends the old child's worker threads: each one's
    Python thread state goes with it, on that thread, while Python still
    runs (a thread-local database connection would be closed)."""
    a = Apache('event', 'WSGIDestroyInterpreter %s\n' % destroy + EMBEDDED, name='tlocal')
    try:
        a.start()
        first = serve(a, '?tlocal=worker')
        a.graceful()
        text = a.wait_state('tlocal-worker', timeout=20)
        assert text is not None, 'thread-local data never released'
        freed = json.loads(text)
        assert freed['pid'] == first['pid']
        assert freed['thread'] == freed['owner'] == first['thread']
        assert freed['finalizing'] is False
        assert_no_crash(a.error_log())
    finally:
        a.cleanup()


H2_CONFIG = r"""
Protocols h2c http/1.1
H2MinWorkers 1
H2MaxWorkers 8
H2MaxWorkerIdleSeconds 1
WSGIDestroyInterpreter Off
""" + EMBEDDED


def test_thread_local_data_released_when_an_h2_worker_exits():
    """mod_http2 ends its idle workers while the child keeps running."""
    a = Apache('event', H2_CONFIG, name='h2idle', modules=['http2'])
    try:
        a.start()
        names = ['h2-%d' % i for i in range(6)]
        urls = ['http://127.0.0.1:%d/life?sleep=1&tlocal=%s' % (a.port, n) for n in names]
        out = subprocess.run(['curl', '-s', '--http2-prior-knowledge', '--parallel',
                              '--parallel-immediate', '--max-time', '30'] + urls,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
        served = [json.loads(line) for line in out.stdout.decode().replace('}{', '}\n{').splitlines()]
        assert len(served) == len(names), out.stdout[:2000]
        children = {s['pid'] for s in served}

        def released():
            return [n for n in names if os.path.exists(state_path(a, 'tlocal-' + n))]
        # Workers beyond H2MinWorkers end after a second of idleness.
        assert du.wait_for(lambda: len(released()) >= 1, 30), a.error_log()[-3000:]
        for name in released():
            freed = json.loads(read_state(a, 'tlocal-' + name))
            assert freed['pid'] in children and du.alive(freed['pid'])
            assert freed['thread'] == freed['owner']
            assert freed['finalizing'] is False
        assert_no_crash(a.error_log())
    finally:
        a.cleanup()
