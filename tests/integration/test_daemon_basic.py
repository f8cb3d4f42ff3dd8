"""Daemon mode, the basics: the configuration docs/daemon-mode.md opens
with, run under the event, worker and prefork MPMs.

  WSGIDaemonProcess example.com processes=2 threads=15 display-name=%{GROUP}
  WSGIProcessGroup example.com
  WSGIScriptAlias / /path/to/myapp.wsgi

plus a <Location> routing part of the site to a second, single-threaded
group, and script reloading in daemon mode.
"""
import os
import re
import time

import pytest

import harness
import daemon_util as du

HOST = 'www.example.com'

CONFIG = r"""
# The first vhost is the default for other Host headers (the harness's
# readiness probe), so it never reaches the daemons.
<VirtualHost *:{port}>
    ServerName default.test
</VirtualHost>

<VirtualHost *:{port}>
    ServerName www.example.com

    WSGIDaemonProcess example.com processes=2 threads=15 display-name=%{GROUP}
    WSGIProcessGroup example.com

    WSGIDaemonProcess single processes=1 threads=1 display-name=%{GROUP}

    # A second mount of the same script, listed first so it wins for /sub.
    WSGIScriptAlias /sub {apps}/daemon/myapp.wsgi
    WSGIScriptAlias / {apps}/daemon/myapp.wsgi

    <Directory {apps}/daemon>
    <IfVersion < 2.4>
        Order allow,deny
        Allow from all
    </IfVersion>
    <IfVersion >= 2.4>
        Require all granted
    </IfVersion>
    </Directory>

    <Location /single>
        WSGIProcessGroup single
    </Location>
    <Location /sub/single>
        WSGIProcessGroup single
    </Location>
</VirtualHost>
"""


server = du.daemon_fixture(CONFIG, 'dbasic', {'example.com': 2, 'single': 1})


def get(server, path):
    return du.get_json(server, path, host=HOST)


def served_by_both(server, path, want=2, timeout=10.0):
    """Concurrent bursts until responses from ``want`` distinct pids were
    seen; returns every response."""
    seen = {}
    out = []
    deadline = time.time() + timeout
    while len(seen) < want and time.time() < deadline:
        results = du.burst(server, path + '?', 12, host=HOST)
        for status, data, _ in results:
            assert status == 200, (status, server.error_log()[-3000:])
            out.append(data)
            seen[data['pid']] = data
    return seen, out


def test_example_config_environ_and_process(server):
    daemons = du.daemon_pids(server, 'example.com')
    assert len(daemons) == 2, daemons
    data = get(server, '/')
    assert data['process_group'] == 'example.com'
    assert data['application_group'] == 'www.example.com|'
    assert data['multithread'] is True
    assert data['multiprocess'] is True
    assert data['run_once'] is False
    assert data['uid'] == harness.WWW_UID
    assert data['euid'] == harness.WWW_UID
    assert data['gid'] == harness.WWW_GID
    assert data['version'] == 'v1'
    assert data['server_name'] == HOST
    pid = data['pid']
    # Not an Apache child: a daemon titled (wsgi:example.com), child of the
    # Apache parent, running as www-data.
    assert pid in daemons
    assert pid not in server.child_pids()
    assert du.cmdline(pid).startswith(b'(wsgi:example.com)')
    assert du.ppid(pid) == server.parent
    assert data['ppid'] == server.parent
    assert du.uids(pid) == (harness.WWW_UID,) * 4


def test_example_config_both_processes_serve(server):
    seen, _ = served_by_both(server, '/')
    assert sorted(seen) == du.daemon_pids(server, 'example.com'), seen
    for pid, data in seen.items():
        assert data['process_group'] == 'example.com'
        assert du.cmdline(pid).startswith(b'(wsgi:example.com)')
        assert du.ppid(pid) == server.parent


def test_root_mount_paths(server):
    # WSGIScriptAlias / : SCRIPT_NAME is '' and the whole URI is PATH_INFO.
    for path in ('/', '/x', '/x/y/', '/myapp.wsgi'):
        data = get(server, path)
        assert (data['script_name'], data['path_info']) == ('', path), path
        assert data['process_group'] == 'example.com'


def check_single(server, path, script_name, path_info):
    single = du.daemon_pids(server, 'single')
    assert len(single) == 1
    data = get(server, path)
    assert data['process_group'] == 'single'
    assert data['multithread'] is False
    assert data['pid'] == single[0]
    assert data['uid'] == harness.WWW_UID
    assert (data['script_name'], data['path_info']) == (script_name, path_info)
    assert du.cmdline(data['pid']).startswith(b'(wsgi:single)')
    return data


def test_location_routes_to_second_group(server):
    """WSGIScriptAlias / for the site plus a <Location /single> routed to
    another group."""
    check_single(server, '/single', '', '/single')
    check_single(server, '/single/deeper', '', '/single/deeper')
    other = get(server, '/singles')
    assert other['process_group'] == 'example.com'
    assert other['multithread'] is True
    assert other['pid'] in du.daemon_pids(server, 'example.com')
    assert get(server, '/')['process_group'] == 'example.com'


def test_single_process_group_is_not_multiprocess(server):
    """wsgi.multiprocess is processes > 1 (our documented choice; mod_wsgi
    also makes an explicit processes=1 count as multiprocess)."""
    data = get(server, '/sub/single')
    assert data['process_group'] == 'single'
    assert data['multiprocess'] is False


def test_location_routes_to_second_group_under_sub_mount(server):
    """The same routing under a non-root mount (/sub)."""
    check_single(server, '/sub/single', '/sub', '/single')
    check_single(server, '/sub/single/x', '/sub', '/single/x')
    other = get(server, '/sub/other')
    assert other['process_group'] == 'example.com'
    assert (other['script_name'], other['path_info']) == ('/sub', '/other')
    assert other['pid'] in du.daemon_pids(server, 'example.com')


@pytest.mark.slow
def test_script_touch_reloads_daemons(server):
    # Load v1 in whichever daemons serve (both, if the load spreads).
    before = du.burst(server, '/', 12, host=HOST)
    assert all(st == 200 and d['version'] == 'v1' for st, d, _ in before), before
    old_pids = {d['pid'] for _, d, _ in before}
    single_v1 = get(server, '/sub/single')
    assert single_v1['version'] == 'v1'

    offset = server.log_size()
    harness.rewrite_script(os.path.join(server.apps, 'daemon', 'myapp.wsgi'),
                           old="VERSION = 'v1'", new="VERSION = 'v2'")

    # The very next request runs the new code, and so does every later one:
    # a daemon that had loaded v1 restarts instead of answering.
    first = get(server, '/')
    assert first['version'] == 'v2', first
    assert first['pid'] not in old_pids, (first['pid'], old_pids)
    versions = {first['pid']: ['v2']}
    for _ in range(4):
        for status, data, _ in du.burst(server, '/', 8, host=HOST):
            assert status == 200, (status, server.error_log()[-3000:])
            versions.setdefault(data['pid'], []).append(data['version'])
    bad = {pid: v for pid, v in versions.items() if 'v1' in v}
    assert not bad, ('old code served after the script changed', bad)
    assert not (set(versions) & old_pids), (versions, old_pids)
    for pid in versions:
        assert du.cmdline(pid).startswith(b'(wsgi:example.com)')
        assert du.ppid(pid) == server.parent
    log = server.log_since(offset)
    assert re.search(r'myapp\.wsgi changed; restarting daemon process (%s) of group '
                     r"'example\.com'" % '|'.join(map(str, old_pids)), log), log[-3000:]
    # Two processes after the restarts, as configured.
    du.wait_daemons(server, 'example.com', 2)
    # /sub/single runs the same script in its own group: it reloads too.
    data = get(server, '/sub/single')
    assert data['version'] == 'v2'
    assert data['process_group'] == 'single'
    assert data['pid'] != single_v1['pid']
