"""Daemons that cannot start.

* Privilege dropping is fail-closed.  To make setgid/setuid really fail,
  Apache is started as root inside a user namespace that maps only uids and
  gids 0..33 (root .. www-data): a group with user=nobody (65534) cannot
  take that identity (EINVAL), exactly as on a system where the call is
  refused.  Such a daemon must never run the application; clients get 503
  once connect-timeout has passed.
* A group whose Python cannot initialise (python-home=/nonexistent) never
  serves either: 503 within connect-timeout.
* A daemon that fails at start is respawned with an increasing delay, not
  in a tight loop.
"""
import os
import time

import pytest

from harness import Apache, WWW_UID
import daemon_util as du

NOBODY = 65534

USERNS_CONFIG = r"""
WSGIDaemonProcess nouid processes=1 threads=2 user=nobody group=www-data connect-timeout=2 socket-timeout=6 display-name=%{GROUP}
WSGIDaemonProcess nogid processes=1 threads=2 user=nobody connect-timeout=2 socket-timeout=6 display-name=%{GROUP}
WSGIDaemonProcess fine processes=1 threads=2 display-name=%{GROUP}
WSGIScriptAlias /nouid {apps}/daemon/marker.wsgi process-group=nouid
WSGIScriptAlias /nogid {apps}/daemon/marker.wsgi process-group=nogid
WSGIScriptAlias /fine {apps}/daemon/info.wsgi process-group=fine
"""


@pytest.fixture(scope='module')
def userns_server():
    if not du.userns_available():
        pytest.skip('cannot create a user namespace here')
    a = du.UsernsApache('event', USERNS_CONFIG, name='duserns')
    try:
        a.start()
        du.wait_daemons(a, 'fine', 1)
        yield a
    finally:
        a.cleanup()


def marker_files(server):
    return sorted(f for f in os.listdir(server.state) if f.startswith('marker-'))


def test_userns_instance_is_real(userns_server):
    """The instance runs in the namespace and a normal group works there."""
    server = userns_server
    with open('/proc/%d/uid_map' % server.parent) as f:
        assert f.read().split() == ['0', '0', '34']
    data = du.get_json(server, '/fine')
    assert data['uid'] == WWW_UID
    assert data['process_group'] == 'fine'


@pytest.mark.parametrize('group,call', [('nouid', 'setuid(65534)'), ('nogid', 'setgid(65534)')])
def test_privilege_drop_failure_never_serves(userns_server, group, call):
    server = userns_server
    status, data, elapsed = du.try_get(server, '/' + group, timeout=20)
    # Fail-closed: the start-up failure is logged, the app was never
    # imported or called, and no process of the group runs as nobody.
    log = server.error_log()
    lines = du.log_lines(log, "daemon process for group '%s' not started: %s failed" % (group, call))
    assert lines, log[-3000:]
    assert marker_files(server) == [], marker_files(server)
    for pid in du.daemon_pids(server, group):
        ids = du.uids(pid)
        assert ids is None or NOBODY not in ids, du.describe_pids([pid])
    assert status != 200
    assert du.get_json(server, '/fine')['process_group'] == 'fine'
    # The client gets 503 once connect-timeout (2 s) has passed.
    assert status == 503, (status, elapsed, log[-2000:])
    assert 1.5 <= elapsed < 4, elapsed


def test_failed_start_is_respawned_with_back_off(userns_server):
    """A process that fails before it is ready is replaced at once the
    first time (the cause may have passed), then only after a wait that
    grows (5 s, 10 s, … from Apache's maintenance pass, which runs about
    every 10 s): over 15 s a few attempts, not one a second."""
    server = userns_server
    time.sleep(max(0.0, 15 - (time.time() - server_start_time(server))))
    log = server.error_log()
    lines = du.log_lines(log, "daemon process for group 'nouid' not started")
    times = [du.log_seconds(line) for line in lines]
    times = [t for t in times if t <= times[0] + 15]
    gaps = [round(b - a, 2) for a, b in zip(times, times[1:])]
    assert 2 <= len(times) <= 4, ('attempts in the first 15 s', gaps)
    assert gaps[0] < 2, gaps
    assert all(gap >= 4.5 for gap in gaps[1:]), gaps
    assert "daemon process of group 'nouid' exited (status 100: it could not start); starting a new one in 5s" in log


def server_start_time(server):
    return os.stat(server.pidfile).st_mtime


NOPY_CONFIG = r"""
WSGIDaemonProcess nopy processes=1 threads=2 python-home=/nonexistent connect-timeout=2 socket-timeout=6 display-name=%{GROUP}
WSGIDaemonProcess fine processes=1 threads=2 display-name=%{GROUP}
WSGIScriptAlias /nopy {apps}/daemon/marker.wsgi process-group=nopy
WSGIScriptAlias /fine {apps}/daemon/info.wsgi process-group=fine
"""


@pytest.fixture(scope='module')
def nopy_server():
    with Apache('event', NOPY_CONFIG, name='dnopy') as a:
        du.wait_daemons(a, 'fine', 1)
        yield a


def test_python_init_failure_503_within_connect_timeout(nopy_server):
    server = nopy_server
    status, data, elapsed = du.try_get(server, '/nopy', timeout=20)
    log = server.error_log()
    assert "daemon process for group 'nopy' cannot initialise Python" in log, log[-3000:]
    assert marker_files(server) == []
    assert du.get_json(server, '/fine')['process_group'] == 'fine'
    assert status == 503, (status, elapsed)
    assert 1.5 <= elapsed < 4, elapsed


def test_exit_status_of_failed_daemon_reported_correctly(nopy_server):
    """The parent's log line describes how the daemon ended: a start-up
    failure is an exit status, not a signal."""
    server = nopy_server
    text = server.wait_for_log("daemon process of group 'nopy' exited", timeout=5)
    assert text is not None
    lines = du.log_lines(server.error_log(), "daemon process of group 'nopy' exited")
    assert lines and all('exited (status 100: it could not start)' in line for line in lines), lines[:3]
