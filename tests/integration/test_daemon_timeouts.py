"""Daemon-mode timeouts and their HTTP statuses: request-timeout (504 and
the process is replaced), socket-timeout (504), queue-timeout (504)."""
import threading
import time

import pytest

import daemon_util as du

CONFIG = r"""
WSGIDaemonProcess hang processes=1 threads=2 request-timeout=2 graceful-timeout=1 display-name=%{GROUP}
WSGIDaemonProcess sockto processes=1 threads=2 socket-timeout=1 display-name=%{GROUP}
WSGIDaemonProcess queue processes=1 threads=1 queue-timeout=1 display-name=%{GROUP}
WSGIScriptAlias /hang {apps}/daemon/info.wsgi process-group=hang
WSGIScriptAlias /sockto {apps}/daemon/info.wsgi process-group=sockto
WSGIScriptAlias /queue {apps}/daemon/info.wsgi process-group=queue
"""


@pytest.fixture(scope='module')
def server():
    with du.running(CONFIG, 'dtimeout', {'hang': 1, 'sockto': 1, 'queue': 1}) as a:
        yield a


def test_request_timeout_504_and_process_replaced(server):
    (pid,) = du.daemon_pids(server, 'hang')
    assert du.get_json(server, '/hang')['pid'] == pid
    offset = server.log_size()
    status, data, elapsed = du.try_get(server, '/hang?sleep=30', timeout=20)
    assert status == 504, (status, server.log_since(offset))
    assert 2 <= elapsed < 5, elapsed
    # The process with the stuck request goes away and a new one serves.
    assert du.wait_for(lambda: not du.alive(pid), 6), du.describe_pids([pid])
    (new,) = du.wait_daemons(server, 'hang', 1, timeout=5, exclude={pid})
    data = du.get_json(server, '/hang')
    assert data['pid'] == new != pid
    log = server.log_since(offset)
    assert ("request in daemon process %d of group 'hang' ran longer than request-timeout (2s); "
            "restarting the process" % pid) in log, log
    assert "daemon process %d for group 'hang' stopping (request-timeout)" % pid in log, log


def test_request_timeout_spares_quick_requests(server):
    # Requests under the limit are untouched, including one of 1.5 s.
    pid = du.get_json(server, '/hang')['pid']
    status, data, _ = du.try_get(server, '/hang?sleep=1.5')
    assert status == 200 and data['pid'] == pid
    time.sleep(1.0)
    assert du.get_json(server, '/hang')['pid'] == pid


def test_socket_timeout_504(server):
    (pid,) = du.daemon_pids(server, 'sockto')
    offset = server.log_size()
    status, data, elapsed = du.try_get(server, '/sockto?sleep=3', timeout=20)
    assert status == 504, (status, server.log_since(offset))
    assert 1 <= elapsed < 2.5, elapsed
    assert "timeout waiting for daemon process group 'sockto' (socket-timeout)" in server.log_since(offset)
    # The daemon itself is fine and serves the next request.
    time.sleep(2.5)
    data = du.get_json(server, '/sockto')
    assert data['pid'] == pid
    assert du.get_json(server, '/sockto?sleep=0.5')['pid'] == pid


def test_queue_timeout_504(server):
    (pid,) = du.daemon_pids(server, 'queue')
    offset = server.log_size()
    slow = {}

    def occupy():
        slow['r'] = du.try_get(server, '/queue?sleep=3', timeout=20)
    t = threading.Thread(target=occupy)
    t.start()
    time.sleep(0.3)
    status, data, elapsed = du.try_get(server, '/queue', timeout=20)
    t.join(20)
    assert slow['r'][0] == 200 and slow['r'][1]['pid'] == pid, slow
    assert status == 504, (status, server.log_since(offset))
    # It waited for the only thread (about 2.7 s), over queue-timeout=1.
    assert elapsed < 5, elapsed
    log = server.log_since(offset)
    assert "over queue-timeout; answering 504" in log, log
    # A request that does not queue is served normally.
    assert du.get_json(server, '/queue')['pid'] == pid
