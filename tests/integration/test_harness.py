"""The harness's own promises: every process an instance started is gone
after it stops, or the test fails; a port taken before Apache binds it is
not a failure."""
import socket

import pytest

import harness
from harness import Apache
import daemon_util as du

CONFIG = r"""
WSGIDaemonProcess d processes=1 threads=1 display-name=%{GROUP}
WSGIScriptAlias /daemon {apps}/probe.wsgi process-group=d
WSGIScriptAlias /embedded {apps}/probe.wsgi
"""


@pytest.mark.parametrize('mode,session', [('embedded', 'same'), ('daemon', 'same'),
                                          ('daemon', 'new')])
def test_a_process_left_behind_fails_the_test_and_is_killed(mode, session):
    """An application starts a process that outlives Apache: in Apache's
    session, or in a session of its own (found through its parent)."""
    a = Apache('event', CONFIG, name='leftover')
    a.stop_timeout = 3
    with pytest.raises(harness.LeftoverProcesses) as failure:
        with a:
            du.wait_daemons(a, 'd', 1)
            spawned = du.get_json(a, '/%s?spawn=%s' % (mode, session))['spawned']
            assert spawned in a.all_pids()
    assert str(spawned) in str(failure.value)
    assert not harness.alive(spawned)
    assert harness.take_unreported_leftovers() == []


def test_clean_stop_reports_nothing():
    with Apache('event', CONFIG, name='clean') as a:
        du.wait_daemons(a, 'd', 1)
        pids = a.all_pids()
        daemon = du.daemon_pids(a, 'd')[0]
        assert a.parent in pids and daemon in pids and set(a.child_pids()) <= set(pids)
        assert a.stop(kill=False) == []
    assert a.leftovers == []
    assert not any(harness.alive(p) for p in pids)


def test_a_taken_port_is_retried():
    a = Apache('event', CONFIG, name='port')
    taken = socket.socket()
    try:
        taken.bind(('127.0.0.1', a.port))
        taken.listen()
        first = a.port
        with a:
            assert a.port != first
            assert a.get('/embedded').status == 200
    finally:
        taken.close()
