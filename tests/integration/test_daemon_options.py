"""WSGIDaemonProcess options that set up a daemon process, and the
server-wide directives daemons inherit, checked from inside the process
(tests/apps/probe.wsgi reports how it was set up) against a group that sets
nothing: identity (a user of its own, supplementary groups), umask, home,
python-path, python-home, lang, locale, switch-interval, python-eggs,
memory-limit, listen-backlog; WSGIErrorOverride in daemon mode;
WSGISocketPrefix, WSGISwitchInterval, WSGIPythonEggs; the start-up warning
for directives that are accepted but have no effect; WSGIDestroyInterpreter.

This suite runs under the worker MPM (the recycling options are in
test_daemon_recycle.py, under event)."""
import glob
import grp
import os
import pwd
import subprocess
import uuid

import pytest

import harness
from harness import Apache
import daemon_util as du

CONFIG = r"""
WSGISocketPrefix run/prefixed
WSGISwitchInterval 0.004
WSGIPythonEggs {state}/eggs-global
WSGIVerboseDebugging On
WSGICaseSensitivity Off

WSGIDaemonProcess plain processes=1 threads=2 display-name=%{GROUP}
WSGIDaemonProcess custom processes=1 threads=2 display-name=%{GROUP} umask=0036 home={apps}/lib2 python-path={apps}/lib1 lang=C.UTF-8 locale=C.UTF-8 switch-interval=0.002 python-eggs={state}/eggs-daemon supplementary-groups=adm,staff memory-limit=400000000 listen-backlog=7
WSGIDaemonProcess venv processes=1 threads=1 display-name=%{GROUP} python-home={venv}
WSGIDaemonProcess owner processes=1 threads=1 display-name=%{GROUP} user=@USER@

WSGIScriptAlias /plain {apps}/probe.wsgi process-group=plain
WSGIScriptAlias /custom {apps}/probe.wsgi process-group=custom
WSGIScriptAlias /venv {apps}/probe.wsgi process-group=venv
WSGIScriptAlias /owner {apps}/probe.wsgi process-group=owner
WSGIScriptAlias /embedded {apps}/probe.wsgi

WSGIScriptAlias /eo-on {apps}/probe.wsgi process-group=plain
WSGIScriptAlias /eo-off {apps}/probe.wsgi process-group=plain
<Location /eo-on>
    WSGIErrorOverride On
    ErrorDocument 404 "apache-errdoc-404"
    ErrorDocument 500 "apache-errdoc-500"
    WSGIEnableSendfile On
</Location>
<Location /eo-off>
    WSGIErrorOverride Off
    ErrorDocument 404 "apache-errdoc-404"
    ErrorDocument 500 "apache-errdoc-500"
    WSGIIgnoreActivity On
</Location>
"""

GROUPS = {'plain': 1, 'custom': 1, 'venv': 1, 'owner': 1}


def run_quietly(argv):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope='module')
def owner():
    """A throwaway system user (with a home directory of its own) for a
    daemon to switch to; removed afterwards."""
    name = 'mwrs-t-' + uuid.uuid4().hex[:8]
    home = '/tmp/%s-home' % name
    # useradd fails while another process holds the passwd lock: retry.
    created = du.wait_for(lambda: run_quietly(
        ['useradd', '--system', '--user-group', '--no-create-home', '--home-dir', home,
         '--shell', '/usr/sbin/nologin', name]).returncode == 0, 20, interval=0.5)
    assert created, 'could not create user %s' % name
    try:
        entry = pwd.getpwnam(name)
        os.makedirs(home)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        yield entry
    finally:
        du.wait_for(lambda: run_quietly(['userdel', name]).returncode in (0, 6), 20, interval=0.5)
        if run_quietly(['getent', 'group', name]).returncode == 0:
            run_quietly(['groupdel', name])
        subprocess.run(['rm', '-rf', home])


@pytest.fixture(scope='module')
def server(owner):
    config = CONFIG.replace('@USER@', owner.pw_name)
    with Apache('worker', config, name='doptions', pre_start=lambda a: a.make_venv()) as a:
        for group, count in GROUPS.items():
            du.wait_daemons(a, group, count)
        yield a


def probe(server, group, query=''):
    data = du.get_json(server, '/%s?%s' % (group, query))
    if group != 'embedded':
        assert data['process_group'] == group
        assert data['pid'] in du.daemon_pids(server, group)
    return data


# -- identity ---------------------------------------------------------------------

def test_daemon_switches_to_its_own_user(server, owner):
    """user= names an account other than Apache's: the daemon runs as it,
    with its primary group, its home directory as HOME and working
    directory, and serves."""
    data = probe(server, 'owner')
    assert (data['uid'], data['euid']) == (owner.pw_uid,) * 2
    assert (data['gid'], data['egid']) == (owner.pw_gid,) * 2
    assert du.uids(data['pid']) == (owner.pw_uid,) * 4
    assert data['env']['USER'] == data['env']['LOGNAME'] == owner.pw_name
    assert data['env']['HOME'] == data['cwd'] == owner.pw_dir
    # Apache's children still run as Apache's user.
    assert probe(server, 'embedded')['uid'] == harness.WWW_UID


def test_supplementary_groups(server):
    wanted = {harness.WWW_GID, grp.getgrnam('adm').gr_gid, grp.getgrnam('staff').gr_gid}
    assert probe(server, 'custom')['groups'] == sorted(wanted)
    # Without the option: the user's own groups (initgroups).
    assert probe(server, 'plain')['groups'] == [harness.WWW_GID]


# -- process settings ---------------------------------------------------------------

def test_umask(server):
    assert probe(server, 'custom')['umask'] == '0036'
    assert probe(server, 'plain')['umask'] != '0036'


def test_home_is_working_directory_and_first_on_sys_path(server):
    custom = probe(server, 'custom', 'import=mwrs_lib2')
    lib2 = os.path.join(server.apps, 'lib2')
    assert custom['cwd'] == lib2
    assert custom['path'][0] == lib2
    assert custom['import'] == os.path.join(lib2, 'mwrs_lib2.py')
    plain = probe(server, 'plain', 'import=mwrs_lib2')
    assert plain['cwd'] != lib2
    assert plain['import'] == 'ERROR ModuleNotFoundError'


def test_python_path(server):
    custom = probe(server, 'custom', 'import=mwrs_lib1')
    lib1 = os.path.join(server.apps, 'lib1')
    # After home; lib1's .pth file adds lib1/pthdir right after it.
    assert custom['path'][1:3] == [lib1, os.path.join(lib1, 'pthdir')], custom['path']
    assert custom['import'] == os.path.join(lib1, 'mwrs_lib1.py')
    assert probe(server, 'plain', 'import=mwrs_lib1')['import'] == 'ERROR ModuleNotFoundError'


def test_python_home_venv(server):
    info = harness.python_info()
    data = probe(server, 'venv')
    assert data['prefix'] == server.venv
    assert data['base_prefix'] == info['base_prefix']
    assert data['version'] == info['version']
    assert probe(server, 'plain')['prefix'] == info['prefix']


def test_lang_and_locale(server):
    custom = probe(server, 'custom')
    assert custom['env']['LANG'] == 'C.UTF-8'
    assert custom['env']['LC_ALL'] == 'C.UTF-8'
    assert custom['lc_ctype'] == 'C.UTF-8'
    plain = probe(server, 'plain')
    assert plain['env']['LANG'] == 'C'          # Apache's own environment
    assert plain['env']['LC_ALL'] is None


def test_switch_interval(server):
    """switch-interval= for the group; WSGISwitchInterval for everyone else."""
    assert probe(server, 'custom')['switch_interval'] == pytest.approx(0.002)
    assert probe(server, 'plain')['switch_interval'] == pytest.approx(0.004)
    assert probe(server, 'embedded')['switch_interval'] == pytest.approx(0.004)


def test_python_eggs(server):
    """python-eggs= for the group; WSGIPythonEggs for everyone else."""
    assert probe(server, 'custom')['env']['PYTHON_EGG_CACHE'] == server.state + '/eggs-daemon'
    assert probe(server, 'plain')['env']['PYTHON_EGG_CACHE'] == server.state + '/eggs-global'
    assert probe(server, 'embedded')['env']['PYTHON_EGG_CACHE'] == server.state + '/eggs-global'


def test_memory_limit(server):
    """memory-limit= caps the process's data size: an allocation over it
    fails with MemoryError, the process serves on."""
    pid = probe(server, 'custom')['pid']
    data = probe(server, 'custom', 'alloc=%d' % (800 * 1024 * 1024))
    assert data['rlimit_data'] == [400000000, 400000000]
    assert data['alloc'] == 'MemoryError'
    assert probe(server, 'custom', 'alloc=%d' % (10 * 1024 * 1024))['alloc'] == 'ok 10485760'
    assert probe(server, 'custom')['pid'] == pid
    plain = probe(server, 'plain', 'alloc=%d' % (800 * 1024 * 1024))
    assert plain['alloc'] == 'ok 838860800'
    assert plain['rlimit_data'][0] != 400000000


def test_listen_backlog(server):
    sockets = glob.glob(os.path.join(server.root, 'run', 'prefixed.%d.*.sock' % server.parent))
    # Group index 1 is 'custom', 0 is 'plain' (listen-backlog default 100).
    custom = [l.backlog for l in du.listeners([s for s in sockets if s.endswith('.0.1.0.sock')])]
    plain = [l.backlog for l in du.listeners([s for s in sockets if s.endswith('.0.0.0.sock')])]
    assert custom == [7] and plain == [100], (sockets, custom, plain)


# -- server-wide directives ---------------------------------------------------------

def test_socket_prefix(server):
    """WSGISocketPrefix is relative to ServerRoot."""
    socks = sorted(os.listdir(os.path.join(server.root, 'run')))
    prefixed = [s for s in socks if s.startswith('prefixed.%d.' % server.parent) and s.endswith('.sock')]
    assert len(prefixed) == len(GROUPS), socks
    assert du.daemon_sockets(server) == [], 'sockets at the default place too'


@pytest.mark.parametrize('directive', ['WSGIVerboseDebugging', 'WSGICaseSensitivity',
                                       'WSGIEnableSendfile', 'WSGIIgnoreActivity'])
def test_accepted_directive_warned_once_at_start(server, directive):
    """Directives (and values) accepted for compatibility without effect
    are named in one start-up warning each."""
    warnings = [line for line in server.error_log().splitlines()
                if '[wsgi:warn' in line and '] %s ' % directive in line]
    assert len(warnings) == 1, warnings


# -- WSGIErrorOverride --------------------------------------------------------------------

@pytest.mark.parametrize('status', [404, 500])
def test_error_override_uses_apaches_error_document(server, status):
    r = server.get('/eo-on?status=%d' % status)
    assert r.status == status
    assert r.body == b'apache-errdoc-%d' % status
    assert b'app-body' not in r.raw


@pytest.mark.parametrize('status', [404, 500])
def test_without_error_override_the_apps_body_is_sent(server, status):
    r = server.get('/eo-off?status=%d' % status)
    assert r.status == status
    assert r.body == b'app-body-%d' % status


def test_error_override_leaves_success_alone(server):
    r = server.get('/eo-on?status=200')
    assert r.status == 200 and r.body == b'app-body-200'


# -- WSGIDestroyInterpreter -------------------------------------------------------------------

DESTROY_CONFIG = r"""
WSGIDestroyInterpreter %s
WSGIDaemonProcess fin processes=1 threads=1 display-name=%%{GROUP}
WSGIScriptAlias /daemon {apps}/probe.wsgi process-group=fin
WSGIScriptAlias /embedded {apps}/probe.wsgi
"""


@pytest.mark.parametrize('setting,finalised', [('On', True), ('Off', False)])
def test_destroy_interpreter(setting, finalised):
    """With Off, Python is not finalised when a process exits, so atexit
    handlers do not run; with On (the default) they do, in Apache's
    children and in daemons alike."""
    token = uuid.uuid4().hex[:8]
    with Apache('event', DESTROY_CONFIG % setting, name='destroy', single=True) as a:
        du.wait_daemons(a, 'fin', 1)
        pids = {mode: du.get_json(a, '/%s?atexit=%s' % (mode, token))['pid']
                for mode in ('embedded', 'daemon')}
        assert a.stop(kill=False) == []
        ran = {mode: os.path.exists(a.state_file('atexit-%s-%d' % (token, pid)))
               for mode, pid in pids.items()}
    assert ran == {'embedded': finalised, 'daemon': finalised}
