"""Daemon mode under an Apache that is not started as root (daemon review
2.2, 2.4), as in a rootless container: such an Apache cannot switch users,
so its children run as whoever started it, whatever `User` says.

* The daemon sockets belong to that user, and the daemons run as it and
  admit it: the group serves.
* A group that asks for another user= cannot have it: its daemons refuse
  to start, say why, and never run the application (fail-closed), while
  the other groups serve.
* What a group's options cannot do without root (socket-user=, a negative
  cpu-priority=) is said in a warning, and the group serves without it.
"""
import os
import stat
import subprocess

import pytest

import harness
from harness import Apache
import daemon_util as du

NOBODY = 65534
NOGROUP = 65534

CONFIG = r"""
WSGIDaemonProcess asis processes=1 threads=2 display-name=%{GROUP}
WSGIDaemonProcess other processes=1 threads=2 user=www-data connect-timeout=2 display-name=%{GROUP}
WSGIDaemonProcess asks processes=1 threads=1 socket-user=www-data cpu-priority=-5 display-name=%{GROUP}
WSGIScriptAlias /asis {apps}/daemon/lifeprobe.wsgi process-group=asis
WSGIScriptAlias /other {apps}/daemon/marker.wsgi process-group=other
WSGIScriptAlias /asks {apps}/probe.wsgi process-group=asks
"""


class NonRootApache(Apache):
    """An Apache started as nobody:nogroup.  Its config still says
    `User www-data`, as a config written for a root Apache would."""

    def _ctl(self, action, timeout=30):
        if action != 'start':
            return super()._ctl(action, timeout)
        return subprocess.run([harness.APACHE_BIN, '-f', self.conf_path, '-k', 'start'],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                              cwd=self.root, env=harness.APACHE_ENV,
                              user=NOBODY, group=NOGROUP, extra_groups=[])


def writable_by_nobody(apache):
    for d in (apache.run_dir, apache.logs):
        os.chown(d, NOBODY, NOGROUP)


@pytest.fixture(scope='module')
def server():
    with NonRootApache('event', CONFIG, name='dnonroot', pre_start=writable_by_nobody) as a:
        du.wait_daemons(a, 'asis', 1)
        yield a


def test_daemons_serve_as_the_user_apache_runs_as(server):
    assert du.uids(server.parent)[1] == NOBODY
    data = du.get_json(server, '/asis')
    assert du.uids(data['pid']) == (NOBODY,) * 4
    for path in du.daemon_sockets(server):
        st = os.lstat(path)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
        assert (st.st_uid, st.st_gid) == (NOBODY, NOGROUP)
    # The sockets were made in private directories that are gone again.
    assert [n for n in os.listdir(server.run_dir) if n.startswith('.wsgi-bind-')] == []
    log = server.error_log()
    assert 'Apache runs as uid %d, not root' % NOBODY in log, log[-2000:]
    assert not du.crash_lines(log), du.crash_lines(log)


def test_group_with_another_user_refuses_to_start(server):
    status, _, _ = du.try_get(server, '/other', timeout=20)
    assert status == 503
    log = server.error_log()
    expected = ("daemon process for group 'other' not started: Apache is not running as root "
                "(it runs as uid %d), so its daemons cannot run as uid %d; drop user= or start Apache as root"
                % (NOBODY, harness.WWW_UID))
    assert expected in log, log[-3000:]
    assert [f for f in os.listdir(server.state) if f.startswith('marker-')] == []
    for pid in du.daemon_pids(server, 'other'):
        assert harness.WWW_UID not in du.uids(pid)
    # The other group is not affected.
    assert du.get_json(server, '/asis')['group'] == 'asis'


def test_what_needs_root_is_warned_about_and_the_group_serves(server):
    data = du.get_json(server, '/asks')
    assert du.uids(data['pid']) == (NOBODY,) * 4
    assert data['nice'] != -5
    log = server.error_log()
    socket_user = [l for l in log.splitlines() if 'WSGIDaemonProcess asks option socket-user= has no effect' in l]
    assert len(socket_user) == 1 and '[wsgi:warn' in socket_user[0], socket_user
    assert "of group 'asks': cannot set cpu-priority=-5" in log, log[-3000:]
