"""Loading the module under each MPM, the Server banner, graceful restart,
restart and stop while clients keep sending requests."""
import re
import threading
import time

import pytest

import harness
from harness import Apache

MPMS = ['event', 'worker', 'prefork']

CONFIG = r"""
WSGIScriptAlias /env {apps}/environ.wsgi
WSGIScriptAlias /stream {apps}/stream.wsgi
"""

CRASH_MARKERS = ['Segmentation fault', 'exit signal', 'AH00052', 'Aborted', 'panicked']


@pytest.fixture(scope='module', params=MPMS)
def server(request):
    with Apache(request.param, CONFIG, name='load') as a:
        yield a


def test_config_test_passes(server):
    rc, out = server.config_test()
    assert rc == 0, out
    assert out.strip().endswith('Syntax OK'), out


def test_server_banner(server):
    r = server.get('/env')
    assert r.status == 200
    banner = r.header('Server')
    assert re.search(r'\bmod_wsgi-rs/\d+\.\d+', banner), banner
    assert re.search(r'\bPython/3\.11\b', banner), banner
    assert r.json()['environ']['SERVER_SOFTWARE'] == banner


def test_banner_on_static_responses_too(server):
    r = server.get('/ready.txt')
    assert r.status == 200
    assert 'mod_wsgi-rs/' in r.header('Server')


def test_serves_under_mpm(server):
    env = server.get('/env').json()['environ']
    assert env['wsgi.multithread'] is (server.mpm != 'prefork')
    r = server.get('/stream?chunks=20&size=500&token=load')
    assert r.status == 200 and r.complete and len(r.body) == 10000


def test_no_crash_in_log(server):
    for _ in range(5):
        assert server.get('/env').status == 200
    log = server.error_log()
    for marker in CRASH_MARKERS:
        assert marker not in log, marker


class Load:
    """Background client sending requests until stopped."""

    def __init__(self, server, path='/env'):
        self.server = server
        self.path = path
        self.ok = 0
        self.failed = []
        self.pids = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                r = self.server.get(self.path, timeout=10)
                if r.status == 200:
                    self.ok += 1
                    self.pids.add(r.json()['process']['pid'])
                else:
                    self.failed.append(r.status)
            except Exception as exc:  # connection refused/reset during restart
                self.failed.append(repr(exc))
                time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)
        return False


def served_by_new_children(server, old_pids, timeout=15):
    """Wait until a request is served by a process that is not in old_pids."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            r = server.get('/env', timeout=5)
            if r.status == 200 and r.json()['process']['pid'] not in old_pids:
                return r.json()['process']['pid']
        except OSError:
            pass
        time.sleep(0.1)
    return None


def assert_healthy(server, n=10):
    for _ in range(n):
        r = server.get('/env', timeout=10)
        assert r.status == 200
        assert r.json()['process']['ppid'] == server.read_pidfile()
    log = server.error_log()
    for marker in CRASH_MARKERS:
        assert marker not in log, (marker, log[-3000:])


@pytest.mark.parametrize('mpm', MPMS)
def test_graceful_restart_stop_under_load(mpm):
    a = Apache(mpm, CONFIG, name='lifecycle')
    try:
        a.start()
        parent = a.read_pidfile()
        assert_healthy(a, 3)

        # -k graceful while a client keeps sending requests.
        with Load(a) as load:
            time.sleep(0.5)
            before = set(a.child_pids()) | load.pids
            a.graceful(wait=False)
            time.sleep(2.0)
        assert load.ok > 0
        # A graceful restart must not drop requests.
        assert load.failed == [], load.failed
        assert a.read_pidfile() == parent
        new_pid = served_by_new_children(a, before)
        assert new_pid is not None, 'no new-generation child served after graceful'
        assert_healthy(a)

        # -k restart while a client keeps sending requests.
        with Load(a) as load:
            time.sleep(0.5)
            before = set(a.child_pids()) | load.pids
            a.restart(wait=False)
            time.sleep(2.0)
        assert load.ok > 0
        assert a.read_pidfile() == parent
        new_pid = served_by_new_children(a, before)
        assert new_pid is not None, 'no new-generation child served after restart'
        assert_healthy(a)

        # A second graceful right after, then stop: nothing may remain.
        a.graceful()
        assert_healthy(a, 3)
        assert len(a.instance_pids()) >= 2
        off = a.log_size()
        left = a.stop(kill=False, timeout=15)
        assert left == [], 'processes left after -k stop: %r' % left
        assert a.instance_pids() == []
        # Children must exit on their own when stopped (no SIGKILL needed).
        # (Only the stop is checked: see the report about a rare prefork
        # child that lingers during -k restart with either module.)
        assert 'still did not exit' not in a.log_since(off), a.log_since(off)
        log = a.error_log()
        for marker in CRASH_MARKERS:
            assert marker not in log, marker
    finally:
        a.cleanup()
    assert a.instance_pids() == []


@pytest.mark.parametrize('mpm', MPMS)
def test_stop_leaves_no_processes(mpm):
    a = Apache(mpm, CONFIG, name='stop')
    try:
        a.start()
        for _ in range(6):
            assert a.get('/env').status == 200
        pids = a.instance_pids()
        assert len(pids) >= 2          # parent + at least one child
        t0 = time.time()
        left = a.stop(kill=False, timeout=15)
        elapsed = time.time() - t0
        assert left == [], 'processes left after -k stop: %r' % left
        assert 'still did not exit' not in a.error_log()
        assert elapsed < 10, elapsed
        for pid in pids:
            assert not harness._pid_alive(pid)
    finally:
        a.cleanup()
