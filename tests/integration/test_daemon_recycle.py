"""WSGIDaemonProcess options that end a daemon process and have the parent
start a new one: maximum-requests, restart-interval, inactivity-timeout,
startup-timeout, deadlock-timeout, and the drain windows graceful-timeout,
eviction-timeout and shutdown-timeout.  Each is checked by what happens
(the pid changes, the log names the reason, a request in progress is
allowed to finish or is cut) rather than by how long it took; waits have
generous deadlines."""
import re
import signal
import threading
import uuid

import pytest

import daemon_util as du

pytestmark = pytest.mark.slow

CONFIG = r"""
WSGIDaemonProcess maxreq processes=1 threads=1 maximum-requests=3 display-name=%{GROUP}
WSGIDaemonProcess maxreq1 processes=1 threads=1 maximum-requests=1 display-name=%{GROUP}
WSGIDaemonProcess interval processes=1 threads=1 restart-interval=2 display-name=%{GROUP}
WSGIDaemonProcess idle processes=1 threads=2 inactivity-timeout=2 display-name=%{GROUP}
WSGIDaemonProcess startup processes=1 threads=1 startup-timeout=2 display-name=%{GROUP}
WSGIDaemonProcess deadlock processes=1 threads=2 deadlock-timeout=2 display-name=%{GROUP}
WSGIDaemonProcess graceful processes=1 threads=2 graceful-timeout=1 display-name=%{GROUP}
WSGIDaemonProcess eviction processes=1 threads=2 graceful-timeout=60 eviction-timeout=1 display-name=%{GROUP}
WSGIDaemonProcess shutdown processes=1 threads=2 shutdown-timeout=1 display-name=%{GROUP}
WSGIDaemonProcess drain processes=1 threads=2 display-name=%{GROUP}

WSGIScriptAlias /maxreq {apps}/probe.wsgi process-group=maxreq
WSGIScriptAlias /maxreq1 {apps}/probe.wsgi process-group=maxreq1
WSGIScriptAlias /interval {apps}/probe.wsgi process-group=interval
WSGIScriptAlias /idle {apps}/probe.wsgi process-group=idle
WSGIScriptAlias /startup {apps}/import_error.wsgi process-group=startup
WSGIScriptAlias /deadlock {apps}/probe.wsgi process-group=deadlock
WSGIScriptAlias /graceful {apps}/probe.wsgi process-group=graceful
WSGIScriptAlias /eviction {apps}/probe.wsgi process-group=eviction
WSGIScriptAlias /shutdown {apps}/probe.wsgi process-group=shutdown
WSGIScriptAlias /drain {apps}/probe.wsgi process-group=drain
"""

GROUPS = {'maxreq': 1, 'maxreq1': 1, 'interval': 1, 'idle': 1, 'startup': 1, 'deadlock': 1,
          'graceful': 1, 'eviction': 1, 'shutdown': 1, 'drain': 1}

server = du.daemon_fixture(CONFIG, 'drecycle', GROUPS, mpms=['event'])


def stopping_line(pid, group, reason):
    return "daemon process %d for group '%s' stopping (%s)" % (pid, group, reason)


def exits(log, group):
    """How the parent announced each replacement of ``group``'s daemons:
    'now' or 'in Ns'."""
    return re.findall(r"daemon process of group '%s' exited \([^)]*\); starting a new one (now|in \d+s)"
                      % re.escape(group), log)


# -- recycling ------------------------------------------------------------------------

def test_maximum_requests_recycles_after_that_many(server):
    """maximum-requests=3: three requests in a row are served by one process,
    the next three by another, and so on (threads=1, processes=1)."""
    offset = server.log_size()
    pids = [du.get_json(server, '/maxreq')['pid'] for _ in range(9)]
    assert len(set(pids[0:3])) == len(set(pids[3:6])) == len(set(pids[6:9])) == 1, pids
    assert pids[0] != pids[3] != pids[6] != pids[0], pids
    # The last one may log its stop a moment after its answer.
    for pid in pids[0:9:3]:
        assert server.wait_for_log(stopping_line(pid, 'maxreq', 'maximum-requests'), offset) is not None, \
            server.log_since(offset)[-3000:]


def test_maximum_requests_1_is_replaced_at_once(server):
    """A process recycled by maximum-requests is replaced at once, however
    short its life: maximum-requests=1 keeps serving at full rate."""
    offset = server.log_size()
    pids = [du.get_json(server, '/maxreq1', timeout=30)['pid'] for _ in range(4)]
    assert len(set(pids)) == 4, pids
    assert du.wait_for(lambda: len(exits(server.log_since(offset), 'maxreq1')) >= 3, 10)
    announced = exits(server.log_since(offset), 'maxreq1')
    assert set(announced) == {'now'}, announced


def test_restart_interval(server):
    """restart-interval=2: the process is replaced after its interval with
    no request at all."""
    offset = server.log_size()
    # (The group is replaced every 2 s, so one may just be starting.)
    (pid,) = du.wait_daemons(server, 'interval', 1)
    du.wait_replaced(server, 'interval', pid, timeout=20)
    assert server.wait_for_log(stopping_line(pid, 'interval', 'restart-interval'), offset) is not None
    assert du.get_json(server, '/interval')['pid'] != pid


def test_inactivity_timeout_recycles_an_idle_process(server):
    """inactivity-timeout=2: a process that served a request and then got
    none goes away, and the next request is served by a new one."""
    pid = du.get_json(server, '/idle')['pid']
    offset = server.log_size()
    du.wait_replaced(server, 'idle', pid, timeout=20)
    assert server.wait_for_log(stopping_line(pid, 'idle', 'inactivity-timeout'), offset) is not None
    assert du.get_json(server, '/idle')['pid'] != pid


def test_inactivity_timeout_spares_a_busy_process(server):
    """A request running longer than inactivity-timeout is not cut."""
    token = uuid.uuid4().hex[:8]
    status, data, _ = du.try_get(server, '/idle?sleep=4&started=' + token, timeout=30)
    assert status == 200, (status, server.error_log()[-2000:])
    assert data['pid'] == int(server.wait_state('started-' + token))


def test_startup_timeout_recycles_a_process_whose_script_keeps_failing(server):
    (pid,) = du.wait_daemons(server, 'startup', 1)
    offset = server.log_size()
    assert server.get('/startup').status == 500
    text = server.wait_for_log("the WSGI script of group 'startup' has not loaded within "
                               "startup-timeout; restarting daemon process %d" % pid, offset,
                               timeout=20)
    assert text is not None, server.log_since(offset)
    du.wait_replaced(server, 'startup', pid, timeout=20)
    assert stopping_line(pid, 'startup', 'startup-timeout') in server.log_since(offset)


def test_deadlock_timeout_replaces_a_process_whose_gil_is_stuck(server):
    """A request that holds the GIL (a C call that never releases it) for
    longer than deadlock-timeout=2: the process is killed and replaced, and
    the client gets an error long before the call would have returned."""
    (pid,) = du.wait_daemons(server, 'deadlock', 1)
    offset = server.log_size()
    status, _, elapsed = du.try_get(server, '/deadlock?hold_gil=60', timeout=60)
    text = server.wait_for_log("daemon process %d of group 'deadlock' could not take the Python "
                               "GIL for deadlock-timeout; restarting it" % pid, offset)
    assert text is not None, server.log_since(offset)
    assert status == 502, (status, elapsed, server.log_since(offset)[-3000:])
    assert elapsed < 50, elapsed
    du.wait_replaced(server, 'deadlock', pid)
    assert du.get_json(server, '/deadlock')['pid'] != pid


# -- drain windows ------------------------------------------------------------------------

class InFlight:
    """A request (GET path&started=TOKEN) running in a thread; ``wait()``
    returns once the application is running it."""

    def __init__(self, server, path):
        self.server = server
        self.token = uuid.uuid4().hex[:8]
        self.result = None
        sep = '&' if '?' in path else '?'
        self.thread = threading.Thread(target=self._run, args=(path + sep + 'started=' + self.token,))
        self.thread.start()

    def _run(self, path):
        self.result = du.try_get(self.server, path, timeout=90)

    def wait(self):
        text = self.server.wait_state('started-' + self.token, timeout=20)
        assert text is not None, self.server.error_log()[-2000:]
        return int(text)

    def join(self):
        self.thread.join(100)
        return self.result


@pytest.mark.parametrize('group,sig,reason,sleep,default', [
    # graceful-timeout=1 (the default would wait 15 s)
    ('graceful', 'SIGUSR1', 'SIGUSR1: graceful restart', 60, 15),
    # eviction-timeout=1 beats graceful-timeout=60 (and the default 15 s)
    ('eviction', 'SIGUSR1', 'SIGUSR1: graceful restart', 60, 15),
    # shutdown-timeout=1 (the default, capped at 2.5 s, would let it finish)
    ('shutdown', 'SIGTERM', 'shutdown signal', 2.3, 2.5),
])
def test_drain_window_cuts_a_long_request(server, group, sig, reason, sleep, default):
    """The drain window after a signal ends a request still running when it
    expires: the process exits (502 for the client) before the request
    would have finished and before the default window would have ended,
    and a new process serves."""
    request = InFlight(server, '/%s?sleep=%s' % (group, sleep))
    pid = request.wait()
    offset = server.log_size()
    assert du.kill(pid, getattr(signal, sig))
    status, _, elapsed = request.join()
    assert status == 502, (status, server.log_since(offset)[-2000:])
    if sleep > default:
        # Cut before the default window would have ended.  (Otherwise the
        # 502 says it all: the default window would have let it finish.)
        assert elapsed < default, elapsed
    assert stopping_line(pid, group, reason) in server.log_since(offset)
    du.wait_replaced(server, group, pid)
    assert du.get_json(server, '/' + group)['pid'] != pid


@pytest.mark.parametrize('sig', ['SIGUSR1', 'SIGTERM'])
def test_drain_window_lets_a_short_request_finish(server, sig):
    """With the default windows (graceful-timeout 15 s, shutdown-timeout
    capped at 2.5 s) a request of 1 s in progress finishes normally, in
    the process that was asked to stop."""
    request = InFlight(server, '/drain?sleep=1')
    pid = request.wait()
    assert du.kill(pid, getattr(signal, sig))
    status, data, _ = request.join()
    assert status == 200, (status, server.error_log()[-2000:])
    assert data['pid'] == pid
    du.wait_replaced(server, 'drain', pid)
