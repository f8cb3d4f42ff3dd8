"""Daemon-mode timeouts and their HTTP statuses: request-timeout (504 and
the process is replaced), socket-timeout (504), queue-timeout (504).  Run
under each MPM, since Apache's children map the timeouts to statuses."""
import os
import threading
import uuid

import pytest

import daemon_util as du

pytestmark = pytest.mark.slow

CONFIG = r"""
WSGIDaemonProcess hang processes=1 threads=2 request-timeout=2 graceful-timeout=1 display-name=%{GROUP}
WSGIDaemonProcess sockto processes=1 threads=2 socket-timeout=1 display-name=%{GROUP}
WSGIDaemonProcess queue processes=1 threads=1 queue-timeout=1 display-name=%{GROUP}
WSGIScriptAlias /hang {apps}/probe.wsgi process-group=hang
WSGIScriptAlias /sockto {apps}/probe.wsgi process-group=sockto
WSGIScriptAlias /queue {apps}/probe.wsgi process-group=queue
"""

server = du.daemon_fixture(CONFIG, 'dtimeout', {'hang': 1, 'sockto': 1, 'queue': 1})


def new_token():
    return uuid.uuid4().hex[:8]


def cut_with_504(server, path, sleep, timeout):
    """GETs ``path`` with an app that sleeps ``sleep`` seconds; checks the
    answer is 504, no sooner than ``timeout`` and while the app still ran.
    Returns the token whose state/done-TOKEN the app writes when it ends."""
    offset = server.log_size()
    token = new_token()
    status, _, elapsed = du.try_get(server, '%s?sleep=%s&done=%s' % (path, sleep, token),
                                    timeout=sleep + 10)
    assert status == 504, (status, server.log_since(offset))
    assert elapsed >= timeout, elapsed
    assert not os.path.exists(server.state_file('done-' + token))
    return token


def test_request_timeout_504_and_process_replaced(server):
    (pid,) = du.daemon_pids(server, 'hang')
    assert du.get_json(server, '/hang')['pid'] == pid
    offset = server.log_size()
    cut_with_504(server, '/hang', 30, 2)
    # The process with the stuck request goes away and a new one serves.
    new = du.wait_replaced(server, 'hang', pid)
    data = du.get_json(server, '/hang')
    assert data['pid'] == new != pid
    log = server.log_since(offset)
    assert ("request in daemon process %d of group 'hang' ran longer than request-timeout (2s); "
            "restarting the process" % pid) in log, log
    assert "daemon process %d for group 'hang' stopping (request-timeout)" % pid in log, log


def test_request_timeout_spares_quick_requests(server):
    # A request under the limit, yet long enough for the daemon's monitor
    # (every 0.5 s) to have looked at it several times, is untouched, and
    # so is its process.
    pid = du.get_json(server, '/hang')['pid']
    offset = server.log_size()
    status, data, _ = du.try_get(server, '/hang?sleep=1.5')
    assert status == 200 and data['pid'] == pid
    assert du.get_json(server, '/hang')['pid'] == pid
    assert 'request-timeout' not in server.log_since(offset)


def test_socket_timeout_504(server):
    (pid,) = du.daemon_pids(server, 'sockto')
    offset = server.log_size()
    token = cut_with_504(server, '/sockto', 4, 1)
    assert "timeout waiting for daemon process group 'sockto' (socket-timeout)" in server.log_since(offset)
    # The daemon itself is fine: once the application has finished, both of
    # its threads serve again, in the same process.
    assert server.wait_state('done-' + token, timeout=20) is not None
    results = du.burst(server, '/sockto?sleep=0.5', 2)
    assert [r[0] for r in results] == [200, 200], results
    assert {r[1]['pid'] for r in results} == {pid}


def test_queue_timeout_504(server):
    (pid,) = du.daemon_pids(server, 'queue')
    offset = server.log_size()
    slow = {}
    token = new_token()

    def occupy():
        slow['r'] = du.try_get(server, '/queue?sleep=3&started=' + token, timeout=20)
    t = threading.Thread(target=occupy)
    t.start()
    # The only thread is busy: this request waits in the daemon for about
    # 3 s, over queue-timeout=1.
    assert server.wait_state('started-' + token) is not None
    status, data, elapsed = du.try_get(server, '/queue', timeout=20)
    t.join(20)
    assert slow['r'][0] == 200 and slow['r'][1]['pid'] == pid, slow
    assert status == 504, (status, server.log_since(offset))
    assert elapsed < 15, elapsed
    log = server.log_since(offset)
    assert "over queue-timeout; answering 504" in log, log
    # A request that does not queue is served normally.
    assert du.get_json(server, '/queue')['pid'] == pid
