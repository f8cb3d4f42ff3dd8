"""Loading the module under each MPM, the Server banner, graceful restart,
restart and stop while clients keep sending requests."""
import glob
import os
import re
import resource
import subprocess
import threading
import time

import pytest

import daemon_util as du
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


def is_mpm_event_restart_race(core):
    """Whether a child's core shows httpd's own race in mpm_event's
    ungraceful restart: the main thread's close_worker_sockets() reads the
    socket of a connection whose pool another thread has just freed, and
    faults in apr_os_sock_get() called from mod_mpm_event (no module code
    on that stack)."""
    try:
        out = subprocess.run(['gdb', '-q', '-batch', '-ex', 'bt 2', harness.APACHE_BIN, core],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    # gdb shows the faulting frame once on loading the core, then the trace.
    frames = [line for line in out.stdout.decode('utf-8', 'replace').splitlines() if line.startswith('#')]
    return (len(frames) >= 2 and frames[-1].startswith('#1 ')
            and ' apr_os_sock_get ' in frames[-2] and 'mod_mpm_event.so' in frames[-1])


def unexplained_crashes(server):
    """The crash lines of the error log, except segfaults whose cores (in
    {root}/cores, one per crash) all show the mpm_event restart race."""
    lines = [line for line in server.error_log().splitlines()
             if any(marker in line for marker in CRASH_MARKERS)]
    if server.mpm == 'event' and lines and all('exit signal Segmentation fault' in line for line in lines):
        cores = glob.glob(os.path.join(server.root, 'cores', 'core*'))
        if len(cores) == len(lines) and all(is_mpm_event_restart_race(c) for c in cores):
            return []
    return lines


def assert_healthy(server, n=10):
    for _ in range(n):
        r = server.get('/env', timeout=10)
        assert r.status == 200
        assert r.json()['process']['ppid'] == server.read_pidfile()
    crashes = unexplained_crashes(server)
    assert crashes == [], (crashes, server.error_log()[-3000:])


def make_core_dir(server):
    cores = os.path.join(server.root, 'cores')
    os.makedirs(cores)
    os.chmod(cores, 0o777)


@pytest.fixture
def core_dumps():
    """Children that crash leave cores (see unexplained_crashes)."""
    limits = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    yield
    resource.setrlimit(resource.RLIMIT_CORE, limits)


@pytest.mark.parametrize('mpm', MPMS)
def test_graceful_restart_stop_under_load(mpm, core_dumps):
    a = Apache(mpm, CONFIG + 'CoreDumpDirectory {root}/cores\n', name='lifecycle',
               pre_start=make_core_dir)
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
        assert unexplained_crashes(a) == []
    finally:
        a.cleanup()
    assert a.instance_pids() == []


def test_only_the_mpm_event_race_is_forgiven(core_dumps):
    """unexplained_crashes() keeps any other crash: a child killed by
    SIGSEGV while it waits for work."""
    a = Apache('event', CONFIG + 'CoreDumpDirectory {root}/cores\n', name='segv',
               pre_start=make_core_dir)
    try:
        a.start()
        child = a.get('/env').json()['process']['pid']
        os.kill(child, 11)
        assert a.wait_for_log('exit signal Segmentation fault', timeout=20)
        assert du.wait_for(lambda: glob.glob(os.path.join(a.root, 'cores', 'core*')), 20)
        assert len(unexplained_crashes(a)) == 1
    finally:
        a.cleanup()


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
