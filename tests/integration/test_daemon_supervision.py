"""How Apache's parent replaces daemon processes, and how a daemon ends
(daemon review 1.4-1.9).

* A recycled process (maximum-requests, restart-interval, inactivity,
  touching the script) is replaced at once, never backed off: with
  maximum-requests=1 every request gets a fresh process and none waits.
* A recycle ends within shutdown-timeout even when the application left a
  non-daemon thread running or an atexit handler that never returns
  (Py_Finalize would wait for them for ever).
* Touching the script under load restarts each process once, and no
  request fails.
* The parent does not grow with every replacement.
* Worker threads have 8 MiB stacks (or stack-size=), so recursion that
  works in embedded mode works in a daemon.
* A daemon's signal handling leaves no signal blocked for the programs an
  application starts, and none of Apache's parent handlers ever runs in a
  daemon.
* A respawn whose fork failed is retried.
"""
import os
import signal
import threading
import time

import pytest

from harness import Apache
import daemon_util as du

PROBE = '{apps}/daemon/lifeprobe.wsgi'
BACK_OFF = 'starting a new one in'

CONFIG = r"""
WSGIDaemonProcess one processes=4 threads=1 maximum-requests=1 display-name=%{GROUP}
WSGIDaemonProcess plain processes=1 threads=2 display-name=%{GROUP}
WSGIDaemonProcess bigstack processes=1 threads=1 stack-size=16777216 display-name=%{GROUP}
WSGIDaemonProcess hang_mr processes=1 threads=2 maximum-requests=1 shutdown-timeout=2 display-name=%{GROUP}
WSGIDaemonProcess hang_idle processes=1 threads=2 inactivity-timeout=1 shutdown-timeout=2 display-name=%{GROUP}
WSGIDaemonProcess hang_interval processes=1 threads=2 restart-interval=4 shutdown-timeout=2 display-name=%{GROUP}
WSGIDaemonProcess hang_touch processes=1 threads=2 shutdown-timeout=2 display-name=%{GROUP}
WSGIDaemonProcess reload processes=2 threads=2 display-name=%{GROUP}
WSGIScriptAlias /one {apps}/daemon/lifeprobe.wsgi process-group=one
WSGIScriptAlias /plain {apps}/daemon/lifeprobe.wsgi process-group=plain
WSGIScriptAlias /bigstack {apps}/daemon/lifeprobe.wsgi process-group=bigstack
WSGIScriptAlias /hang_mr {apps}/daemon/lifeprobe.wsgi process-group=hang_mr
WSGIScriptAlias /hang_idle {apps}/daemon/lifeprobe.wsgi process-group=hang_idle
WSGIScriptAlias /hang_interval {apps}/daemon/lifeprobe.wsgi process-group=hang_interval
WSGIScriptAlias /hang_touch {apps}/daemon/touched.wsgi process-group=hang_touch
WSGIScriptAlias /reload {apps}/daemon/reloaded.wsgi process-group=reload
WSGIScriptAlias /embedded {apps}/daemon/lifeprobe.wsgi
"""

GROUPS = {'one': 4, 'plain': 1, 'bigstack': 1, 'hang_mr': 1, 'hang_idle': 1, 'hang_interval': 1,
          'hang_touch': 1, 'reload': 2}


def copy_probes(apache):
    """Scripts of their own for the groups whose script is touched."""
    with open(os.path.join(apache.apps, 'daemon', 'lifeprobe.wsgi'), 'rb') as f:
        source = f.read()
    for name in ('touched.wsgi', 'reloaded.wsgi'):
        path = os.path.join(apache.apps, 'daemon', name)
        with open(path, 'wb') as f:
            f.write(source)
        os.chmod(path, 0o644)


@pytest.fixture(scope='module')
def server():
    with du.running(CONFIG, 'dsup', GROUPS, pre_start=copy_probes) as a:
        yield a


def touch(path, seconds_later=0):
    """A new modification time, distinct from any before."""
    t = time.time_ns() + seconds_later * 10**9
    os.utime(path, ns=(t, t))
    return t


def test_maximum_requests_1_serves_every_request_without_back_off(server):
    offset = server.log_size()
    pids = []
    for i in range(50):
        status, data, elapsed = du.try_get(server, '/one', timeout=20)
        assert status == 200, (i, status, elapsed, server.log_since(offset)[-3000:])
        # Well within connect-timeout: nobody waited out a back-off.
        assert elapsed < 5, (i, elapsed)
        pids.append(data['pid'])
    # Each request had a process of its own.
    assert len(set(pids)) == len(pids), pids
    log = server.log_since(offset)
    assert BACK_OFF not in log, du.log_lines(log, BACK_OFF)
    assert log.count("daemon process of group 'one' exited (status 0); starting a new one now") >= 40, log[-3000:]
    assert not du.crash_lines(log), du.crash_lines(log)


# json.dumps recursion this deep needs more than the 2 MiB Rust gives a
# thread by default, and fits in the 8 MiB Apache's own threads have.
DEPTH = 50000


def test_deep_recursion_works_as_in_embedded_mode(server):
    embedded = du.get_json(server, '/embedded?depth=%d' % DEPTH)
    assert embedded['json_length'] == 2 * DEPTH + 2
    (pid,) = du.daemon_pids(server, 'plain')
    offset = server.log_size()
    status, data, _ = du.try_get(server, '/plain?depth=%d&stack' % DEPTH, timeout=30)
    assert status == 200, (status, server.log_since(offset)[-2000:])
    assert data['json_length'] == 2 * DEPTH + 2
    assert data['pid'] == pid
    assert data['stack'] >= 8 << 20, data
    assert not du.crash_lines(server.log_since(offset))


def test_stack_size_option(server):
    data = du.get_json(server, '/bigstack?stack')
    assert 16 << 20 <= data['stack'] < 17 << 20, data


def status_mask(pid, field):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1], 16)
    return None


def test_programs_the_app_starts_have_no_signal_blocked(server):
    data = du.get_json(server, '/plain?sigblk')
    assert data['sigblk'] is not None
    assert int(data['sigblk'], 16) == 0, data
    # The daemon itself blocks nothing either: it takes signals through
    # handlers, in every thread.
    (pid,) = du.daemon_pids(server, 'plain')
    for tid in os.listdir('/proc/%d/task' % pid):
        with open('/proc/%d/task/%s/status' % (pid, tid)) as f:
            blocked = [line for line in f if line.startswith('SigBlk:')][0]
        assert int(blocked.split()[1], 16) == 0, (tid, blocked)


def test_sigusr1_and_sigterm_still_handled(server):
    (pid,) = du.daemon_pids(server, 'plain')
    offset = server.log_size()
    assert du.kill(pid, signal.SIGUSR1)
    assert du.wait_for(lambda: not du.alive(pid), 10)
    (new,) = du.wait_daemons(server, 'plain', 1, exclude={pid})
    assert "daemon process %d for group 'plain' stopping (SIGUSR1: graceful restart)" % pid in server.log_since(offset)
    # Once it serves, SIGTERM drains it (before that, it simply ends).
    assert du.get_json(server, '/plain')['pid'] == new
    assert du.kill(new, signal.SIGTERM)
    assert du.wait_for(lambda: not du.alive(new), 10)
    du.wait_daemons(server, 'plain', 1, exclude={pid, new})
    assert "daemon process %d for group 'plain' stopping (shutdown signal)" % new in server.log_since(offset)


SHUTDOWN_TIMEOUT = 2
# Allowed on top of the drain and shutdown-timeout: the parent notices the
# exit within about a second, and Python takes a moment to start.
MARGIN = 6

HANGS = [('hang_mr', 'thread', 0), ('hang_mr', 'atexit', 0), ('hang_idle', 'thread', 1),
         ('hang_interval', 'thread', 4), ('hang_touch', 'thread', 0)]


@pytest.mark.parametrize('group,how,trigger', HANGS, ids=['%s-%s' % h[:2] for h in HANGS])
def test_recycle_ends_within_shutdown_timeout(server, group, how, trigger):
    """Py_Finalize waits for non-daemon threads and atexit handlers: the
    process must still end within shutdown-timeout, and the slot serve
    again, whatever recycled it."""
    du.wait_daemons(server, group, 1)
    offset = server.log_size()
    pid = du.get_json(server, '/%s?hang=%s' % (group, how))['pid']
    t0 = time.time()
    if group == 'hang_touch':
        touch(os.path.join(server.apps, 'daemon', 'touched.wsgi'))
        # This request finds the script changed: it is answered by the
        # next process, once this one is gone.
        status, data, elapsed = du.try_get(server, '/%s' % group, timeout=30)
        assert status == 200 and data['pid'] != pid, (status, data, server.log_since(offset)[-2000:])
        assert elapsed < SHUTDOWN_TIMEOUT + MARGIN, elapsed
    limit = trigger + SHUTDOWN_TIMEOUT + MARGIN
    assert du.wait_for(lambda: not du.alive(pid), limit), \
        ('still alive after %.1fs' % (time.time() - t0), server.log_since(offset)[-2000:])
    (new,) = du.wait_daemons(server, group, 1, timeout=MARGIN, exclude={pid})
    assert du.get_json(server, '/%s' % group)['pid'] == new
    log = server.log_since(offset)
    assert ("Python did not shut down within %.1fs in process %d; exiting without waiting for it"
            % (SHUTDOWN_TIMEOUT, pid)) in log, log[-2000:]
    assert BACK_OFF not in log, du.log_lines(log, BACK_OFF)


def test_touch_under_load_restarts_each_process_once(server):
    """A deploy (touching the script) under load: each process running the
    old code restarts once, a process that loaded the new code never
    restarts for it (requests stat'ed before the touch keep arriving), no
    restart is backed off, and no request fails."""
    script = os.path.join(server.apps, 'daemon', 'reloaded.wsgi')
    running = set(du.wait_daemons(server, 'reload', 2))
    offset = server.log_size()
    with du.Load(server, '/reload', clients=4) as load:
        assert du.wait_for(lambda: len(load.snapshot()) >= 10, 15)
        for n in range(3):
            since = server.log_size()
            deployed = touch(script, n + 1)
            now_running = processes_running(server, '/reload', 2, deployed)
            log = server.log_since(since)
            restarts = du.log_lines(log, "reloaded.wsgi changed; restarting daemon process")
            restarted = [int(line.split('restarting daemon process ')[1].split()[0]) for line in restarts]
            # Only the processes that ran the old code, each once.
            assert sorted(restarted) == sorted(set(restarted)) and set(restarted) <= running, \
                (n, restarts, running)
            assert not set(now_running) & running
            running = set(now_running)
        load.stop()
        results = load.snapshot()
    failed = [r for r in results if r[1] != 200]
    assert failed == [], failed[:10]
    log = server.log_since(offset)
    assert BACK_OFF not in log, du.log_lines(log, BACK_OFF)
    assert not du.crash_lines(log), du.crash_lines(log)


def processes_running(server, path, count, deployed):
    """Sends overlapping requests (which open connections to every slot)
    until ``count`` processes answered with the code of ``deployed``."""
    seen = set()

    def all_new():
        for status, data, _ in du.burst(server, path + '?sleep=0.2', 4):
            if status == 200 and data['loaded'] == deployed:
                seen.add(data['pid'])
        return len(seen) >= count
    assert du.wait_for(all_new, 30, interval=0), (seen, server.error_log()[-2000:])
    return seen


GROWTH_CONFIG = r"""
WSGIDaemonProcess many processes=8 threads=1 display-name=%{GROUP}
WSGIScriptAlias /many {apps}/daemon/lifeprobe.wsgi process-group=many
"""


def ready_daemons(server, group, count, exclude=()):
    """``count`` processes of ``group`` (none in ``exclude``) that have
    logged they serve."""
    def ready():
        log = server.error_log()
        pids = [p for p in du.daemon_pids(server, group) if p not in exclude
                and "daemon process %d for group '%s' started" % (p, group) in log]
        return pids if len(pids) >= count else None
    pids = du.wait_for(ready, 30)
    assert pids, (du.daemon_pids(server, group), server.error_log()[-3000:])
    return pids


def parent_footprint(pid):
    with open('/proc/%d/status' % pid) as f:
        fields = dict(line.split(':', 1) for line in f)
    return {
        'VmRSS': int(fields['VmRSS'].split()[0]),
        'VmData': int(fields['VmData'].split()[0]),
        'fds': len(os.listdir('/proc/%d/fd' % pid)),
    }


def test_parent_does_not_grow_with_each_replacement():
    """Each replacement reuses what the parent set up for the slot: after
    48 more, its memory and file descriptors are what they were."""
    with du.running(GROWTH_CONFIG, 'dgrow', {'many': 8}) as server:
        gone = set()

        def replace_all():
            pids = ready_daemons(server, 'many', 8, exclude=gone)
            for pid in pids:
                du.kill(pid, signal.SIGKILL)
            assert du.wait_for(lambda: not any(du.alive(p) for p in pids), 10)
            gone.update(pids)
        for _ in range(2):
            replace_all()
        ready_daemons(server, 'many', 8, exclude=gone)
        before = parent_footprint(server.parent)
        for _ in range(6):
            replace_all()
        live = ready_daemons(server, 'many', 8, exclude=gone)
        after = parent_footprint(server.parent)
        assert after['fds'] == before['fds'], (before, after)
        for field in ('VmRSS', 'VmData'):
            assert after[field] - before[field] <= 8, (field, before, after)
        # Exactly the eight current daemons and Apache's children, no zombie.
        children = [p for p in map(int, filter(str.isdigit, os.listdir('/proc'))) if du.ppid(p) == server.parent]
        assert sorted(p for p in children if du.cmdline(p).startswith(b'(wsgi:')) == sorted(live)
        assert all(du.alive(p) for p in children), du.describe_pids(children)
        assert BACK_OFF not in server.error_log()


STARTUP_CONFIG = r"""
WSGIDaemonProcess slow processes=1 threads=1 display-name=%{GROUP}
WSGIImportScript {apps}/daemon/slowstart.wsgi process-group=slow application-group=%{GLOBAL}
WSGIScriptAlias /slow {apps}/daemon/slowstart.wsgi process-group=slow application-group=%{GLOBAL}
WSGIDaemonProcess tight processes=1 threads=100 memory-limit=150000000 display-name=%{GROUP}
WSGIScriptAlias /tight {apps}/daemon/lifeprobe.wsgi process-group=tight
"""


@pytest.fixture(scope='module')
def startup_server():
    with Apache('event', STARTUP_CONFIG, name='dstartup') as a:
        yield a


def caught_signals(pid):
    return status_mask(pid, 'SigCgt')


def test_no_apache_handler_in_a_starting_daemon(startup_server):
    """From the fork on, a daemon has none of the Apache parent's signal
    handlers (which would, for instance, swallow a SIGTERM while Python
    starts); it installs its own only once it serves."""
    server = startup_server
    announced = du.wait_for(lambda: [f for f in os.listdir(server.state) if f.startswith('slowstart-')], 15)
    assert announced, server.error_log()[-2000:]
    pid = int(announced[0].split('-')[1])
    parent = caught_signals(server.parent)
    assert parent, 'Apache parent catches no signal?'
    starting = caught_signals(pid)
    assert starting & parent == 0, (hex(starting), hex(parent))
    open(server.state_file('slowstart-go'), 'w').close()
    r = server.get('/slow', timeout=30)
    assert r.status == 200, server.error_log()[-2000:]
    ours = sum(1 << (s - 1) for s in (signal.SIGHUP, signal.SIGINT, signal.SIGUSR1, signal.SIGTERM))
    # (Above 31 are the C library's own, such as the one behind setuid.)
    assert caught_signals(pid) & 0xffffffff == ours, hex(caught_signals(pid))


def test_threads_that_cannot_start_fail_the_start_cleanly(startup_server):
    """memory-limit (RLIMIT_DATA) counts thread stacks: 100 threads do not
    fit in 150 MB.  The daemon says so and exits as a start-up failure; it
    never unwinds a panic into the Apache code it was forked from."""
    server = startup_server
    text = server.wait_for_log("daemon process for group 'tight' cannot start its threads", timeout=20)
    assert text is not None, server.error_log()[-3000:]
    assert server.wait_for_log("daemon process of group 'tight' exited (status 100: it could not start)", timeout=10)
    log = server.error_log()
    assert not du.crash_lines(log), du.crash_lines(log)
    # Every process of the instance is Apache's or a daemon; nothing else
    # was forked by a daemon that went on as a second Apache parent.
    for pid in du.processes_using(server.root):
        assert du.ppid(pid) in (1, server.parent) or pid == server.parent, du.describe_pids([pid])
    status, _, _ = du.try_get(server, '/tight', timeout=20)
    assert status == 503


PIDS_CGROUP_ROOT = '/sys/fs/cgroup/pids'
FORK_CONFIG = r"""
WSGIDaemonProcess solo processes=1 threads=1 display-name=%{GROUP}
WSGIScriptAlias /solo {apps}/daemon/lifeprobe.wsgi process-group=solo
"""


def pids_cgroup():
    """A fresh pids cgroup (v1), or None where this cannot be done."""
    if not os.path.exists(os.path.join(PIDS_CGROUP_ROOT, 'cgroup.procs')):
        return None
    path = os.path.join(PIDS_CGROUP_ROOT, 'mwrs-%d-%d' % (os.getpid(), time.time_ns()))
    try:
        os.mkdir(path)
    except OSError:
        return None
    return path


def test_failed_fork_is_retried():
    """Apache's parent cannot fork when the daemon dies (its pids cgroup is
    full): the slot is started again by the parent's maintenance pass once
    forking works, not left empty until the next restart."""
    cgroup = pids_cgroup()
    if cgroup is None:
        pytest.skip('NOT TESTED: no writable pids cgroup (v1) to make fork fail in')
    try:
        with du.running(FORK_CONFIG, 'dfork', {'solo': 1}) as server:
            (pid,) = ready_daemons(server, 'solo', 1)
            offset = server.log_size()
            with open(os.path.join(cgroup, 'pids.max'), 'w') as f:
                f.write('1')
            with open(os.path.join(cgroup, 'cgroup.procs'), 'w') as f:
                f.write(str(server.parent))
            assert du.kill(pid, signal.SIGKILL)
            assert server.wait_for_log('fork failed', offset, timeout=10) is not None, server.log_since(offset)
            with open(os.path.join(cgroup, 'pids.max'), 'w') as f:
                f.write('max')
            # Apache runs its maintenance about every 10 seconds.
            (new,) = ready_daemons(server, 'solo', 1, exclude={pid})
            assert du.get_json(server, '/solo')['pid'] == new
            assert ("cannot start a daemon process of group 'solo': fork failed: Resource temporarily unavailable "
                    "(os error 11); trying again at the next maintenance pass") in server.log_since(offset)
    finally:
        with open(os.path.join(cgroup, 'cgroup.procs')) as f:
            left = f.read().split()
        for task in left:
            try:
                with open(os.path.join(PIDS_CGROUP_ROOT, 'cgroup.procs'), 'w') as f:
                    f.write(task)
            except OSError:
                pass
        os.rmdir(cgroup)
