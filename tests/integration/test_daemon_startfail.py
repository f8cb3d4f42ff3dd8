"""Daemons that cannot start.

* Privilege dropping is fail-closed.  To make setgid/setuid really fail,
  Apache is started as root inside a user namespace that maps only uids and
  gids 0..33 (root .. www-data): a group with user=nobody (65534) cannot
  take that identity (EINVAL), exactly as on a system where the call is
  refused.  Such a daemon must never run the application; clients get 503
  once connect-timeout has passed.  These tests are marked ``must_run``:
  where user namespaces are refused they are skipped, and the run says so
  loudly (and fails with MWRS_REQUIRE_ALL=1).
* A group whose Python cannot initialise (python-home=/nonexistent) never
  serves either: 503 within connect-timeout.
* A daemon that fails at start is respawned with an increasing delay, not
  in a tight loop.
"""
import os
import re
import signal

import pytest

import harness
from harness import Apache
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
    with du.UsernsApache('event', USERNS_CONFIG, name='duserns') as a:
        du.wait_daemons(a, 'fine', 1)
        yield a


def marker_files(server):
    return sorted(f for f in os.listdir(server.state) if f.startswith('marker-'))


@pytest.mark.must_run
def test_userns_instance_is_real(userns_server):
    """The instance runs in the namespace and a normal group works there."""
    server = userns_server
    with open('/proc/%d/uid_map' % server.parent) as f:
        assert f.read().split() == ['0', '0', '34']
    data = du.get_json(server, '/fine')
    assert data['uid'] == harness.WWW_UID
    assert data['process_group'] == 'fine'


@pytest.mark.must_run
@pytest.mark.parametrize('group,call', [('nouid', 'setuid(65534)'), ('nogid', 'setgid(65534)')])
def test_privilege_drop_failure_never_serves(userns_server, group, call):
    server = userns_server
    status, data, elapsed = du.try_get(server, '/' + group, timeout=30)
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
    # The client gets 503 once connect-timeout (2 s) has passed, not at
    # once and not after socket-timeout or Apache's Timeout.
    assert status == 503, (status, elapsed, log[-2000:])
    assert 1.5 <= elapsed < 2 + 10, elapsed


@pytest.mark.slow
@pytest.mark.must_run
def test_failed_start_is_respawned_with_back_off(userns_server):
    """A process that fails before it is ready is replaced at once the
    first time (the cause may have passed), then only after a wait that
    grows (5 s, 10 s, … from Apache's maintenance pass, which runs about
    every 10 s): a few attempts, not one a second."""
    server = userns_server

    def attempts():
        lines = du.log_lines(server.error_log(), "daemon process for group 'nouid' not started")
        return [du.log_seconds(line) for line in lines]
    assert du.wait_for(lambda: len(attempts()) >= 3, 40), server.error_log()[-3000:]
    times = attempts()[:3]
    gaps = [round(b - a, 2) for a, b in zip(times, times[1:])]
    assert gaps[0] < 2, gaps
    assert gaps[1] >= 4.5, gaps
    assert "daemon process of group 'nouid' exited (status 100: it could not start); starting a new one in 5s" in server.error_log()


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
    status, data, elapsed = du.try_get(server, '/nopy', timeout=30)
    log = server.error_log()
    assert "daemon process for group 'nopy' cannot initialise Python" in log, log[-3000:]
    assert marker_files(server) == []
    assert du.get_json(server, '/fine')['process_group'] == 'fine'
    assert status == 503, (status, elapsed)
    assert 1.5 <= elapsed < 2 + 10, elapsed


def test_exit_status_of_failed_daemon_reported_correctly(nopy_server):
    """The parent's log line says how a daemon ended: one that could not
    start exited with the start-up failure status, which the parent names;
    one killed by a signal is not described as a start-up failure."""
    server = nopy_server
    assert server.wait_for_log("daemon process of group 'nopy' exited", timeout=10) is not None
    lines = du.log_lines(server.error_log(), "daemon process of group 'nopy' exited")
    assert lines and all('exited (status 100: it could not start)' in line for line in lines), lines[:3]
    (fine,) = du.daemon_pids(server, 'fine')
    offset = server.log_size()
    assert du.kill(fine, signal.SIGKILL)
    text = server.wait_for_log("daemon process of group 'fine' exited", offset, timeout=10)
    assert text is not None, server.log_since(offset)
    (line,) = du.log_lines(text, "daemon process of group 'fine' exited")
    assert "exited (status 9); starting a new one now" in line, line
