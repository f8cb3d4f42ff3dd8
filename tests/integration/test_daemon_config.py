"""Daemon-mode configuration: where requests may be routed
(WSGIRestrictProcess, groups owned by another virtual host, unknown
groups, %{ENV:var}, %{GLOBAL}) and what `apache2 -t` refuses."""
import harness
import daemon_util as du

CONFIG = r"""
WSGIDaemonProcess allowed processes=1 threads=2 cpu-time-limit=30 display-name=%{GROUP}
WSGIDaemonProcess other processes=1 threads=2 display-name=%{GROUP}

WSGIScriptAlias /restricted {apps}/daemon/info.wsgi
WSGIScriptAlias /restricted-ok {apps}/daemon/info.wsgi
WSGIScriptAlias /nosuch {apps}/daemon/info.wsgi
WSGIScriptAlias /byenv {apps}/daemon/info.wsgi
WSGIScriptAlias /embedded {apps}/daemon/info.wsgi
<Location /restricted>
    WSGIRestrictProcess allowed
    WSGIProcessGroup other
</Location>
<Location /restricted-ok>
    WSGIRestrictProcess allowed
    WSGIProcessGroup allowed
</Location>
<Location /nosuch>
    WSGIProcessGroup nosuch
</Location>
<Location /byenv>
    SetEnv MWRS_GROUP other
    WSGIProcessGroup %{ENV:MWRS_GROUP}
</Location>
<Location /embedded>
    WSGIProcessGroup %{GLOBAL}
</Location>

<VirtualHost *:{port}>
    ServerName 127.0.0.1
</VirtualHost>
<VirtualHost *:{port}>
    ServerName a.test
    WSGIDaemonProcess agroup processes=1 threads=2 display-name=%{GROUP}
    WSGIScriptAlias /a {apps}/daemon/info.wsgi process-group=agroup
</VirtualHost>
<VirtualHost *:{port}>
    ServerName b.test
    WSGIScriptAlias /b {apps}/daemon/info.wsgi process-group=agroup
</VirtualHost>
"""


server = du.daemon_fixture(CONFIG, 'dconf', {'allowed': 1, 'other': 1, 'agroup': 1})


def test_groups_of_the_main_server_start_once(server):
    """A virtual host with none of our directives shares the main server's
    configuration: its groups still get processes= sockets and processes,
    not a set per such virtual host. (Apache's parent makes every socket
    before it serves.)"""
    assert len(du.daemon_sockets(server)) == 3, du.daemon_sockets(server)
    for group in ('allowed', 'other', 'agroup'):
        assert len(du.daemon_pids(server, group)) == 1, group


def test_restrict_process_refuses_other_group(server):
    offset = server.log_size()
    r = server.get('/restricted')
    assert r.status == 500
    log = server.log_since(offset)
    assert "process group 'other' is not allowed here by WSGIRestrictProcess" in log, log
    data = du.get_json(server, '/restricted-ok')
    assert data['process_group'] == 'allowed'
    assert data['pid'] == du.daemon_pids(server, 'allowed')[0]


def test_unknown_group_500(server):
    offset = server.log_size()
    assert server.get('/nosuch').status == 500
    assert "No WSGI daemon process called 'nosuch' has been configured" in server.log_since(offset)


def test_env_and_global_forms(server):
    data = du.get_json(server, '/byenv')
    assert data['process_group'] == 'other'
    assert data['pid'] == du.daemon_pids(server, 'other')[0]
    data = du.get_json(server, '/embedded')
    assert data['process_group'] == ''
    assert data['pid'] in server.child_pids()


def test_group_of_another_vhost_500(server):
    data = du.get_json(server, '/a', host='a.test')
    assert data['process_group'] == 'agroup'
    assert data['pid'] == du.daemon_pids(server, 'agroup')[0]
    offset = server.log_size()
    r = server.get('/b', headers={'Host': 'b.test'})
    assert r.status == 500
    log = server.log_since(offset)
    assert ("WSGI daemon process group 'agroup' is defined in another virtual host "
            "and cannot be used here") in log, log


def test_ignored_option_warned_once(server):
    log = server.error_log()
    needle = ('WSGIDaemonProcess allowed option cpu-time-limit= is accepted for compatibility '
              'but has no effect')
    assert log.count(needle) == 1, [l for l in log.splitlines() if 'cpu-time-limit' in l]


def config_test(snippet):
    return harness.config_test(snippet, name='dconft')


def test_unknown_option_fails_config_test():
    rc, out = config_test('WSGIDaemonProcess g1 processes=1 bogus-option=3\n')
    assert rc != 0, out
    assert "unknown option 'bogus-option'" in out, out
    assert 'Syntax OK' not in out


def test_duplicate_group_fails_config_test():
    rc, out = config_test('WSGIDaemonProcess dup threads=1\nWSGIDaemonProcess dup threads=2\n')
    assert rc != 0, out
    assert "a process group named 'dup' is already defined" in out, out
    assert 'Syntax OK' not in out


def test_duplicate_group_across_vhosts_fails_config_test():
    rc, out = config_test(r"""
<VirtualHost *:{port}>
    ServerName one.test
    WSGIDaemonProcess dup2 threads=1
</VirtualHost>
<VirtualHost *:{port}>
    ServerName two.test
    WSGIDaemonProcess dup2 threads=1
</VirtualHost>
""")
    assert rc != 0, out
    assert "a process group named 'dup2' is already defined" in out, out


def test_valid_daemon_config_passes_config_test(server):
    rc, out = server.config_test()
    assert rc == 0, out
    assert 'Syntax OK' in out
