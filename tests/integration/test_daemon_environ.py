"""The environ in a daemon matches embedded mode, apart from the keys that
describe the process; and output from a daemon goes to the error log of
the virtual host that defined its group."""
import os
import uuid

import harness
import daemon_util as du

CONFIG = r"""
WSGIDaemonProcess par processes=2 threads=3 display-name=%{GROUP}
# One URL for both modes: a request header picks the process group.
SetEnvIf X-Mode "^daemon$" MWRS_GROUP=par
# (for X-Mode: embedded MWRS_GROUP stays unset: %{ENV:...} expands to "")
WSGIScriptAlias /env {apps}/environ.wsgi
<Location /env>
    WSGIProcessGroup %{ENV:MWRS_GROUP}
</Location>

<VirtualHost *:{port}>
    ServerName 127.0.0.1
</VirtualHost>
<VirtualHost *:{port}>
    ServerName logs.test
    ErrorLog {root}/logs/vhost_error.log
    WSGIDaemonProcess vlog processes=1 threads=2 display-name=%{GROUP}
    WSGIScriptAlias /info {apps}/daemon/info.wsgi process-group=vlog
    WSGIScriptAlias /boom {apps}/daemon/boom.wsgi process-group=vlog
</VirtualHost>
"""

# Keys allowed to differ between the two modes, and why.
DIFFERENT = {
    'HTTP_X_MODE', 'MWRS_GROUP',          # the switch itself
    'REMOTE_PORT',                        # a new client connection
    'mod_wsgi.process_group',             # '' vs 'par'
    'wsgi.multithread', 'wsgi.multiprocess',
    'mod_wsgi.thread_id', 'mod_wsgi.request_id', 'mod_wsgi.connection_id',
    'mod_wsgi.request_start', 'mod_wsgi.queue_start', 'mod_wsgi.daemon_start',
    'mod_wsgi.thread_requests', 'mod_wsgi.total_requests',
    'mod_wsgi.script_start', 'mod_wsgi.application_start', 'UNIQUE_ID',
    'mod_wsgi.server_pid',                # the Apache child that took each request
}


server = du.daemon_fixture(CONFIG, 'denv', {'par': 2, 'vlog': 1}, modules=['setenvif'])


def fetch(server, mode):
    return du.get_json(server, '/env/x?a=1&b=%20',
                       headers={'X-Mode': mode, 'X-Test': 'v', 'Cookie': 'c=1'})


def test_daemon_environ_matches_embedded(server):
    emb = fetch(server, 'embedded')
    dae = fetch(server, 'daemon')
    assert emb['environ']['mod_wsgi.process_group'] == ''
    assert dae['environ']['mod_wsgi.process_group'] == 'par'
    assert emb['process']['pid'] in server.child_pids()
    assert dae['process']['pid'] in du.daemon_pids(server, 'par')
    assert dae['process']['uid'] == harness.WWW_UID
    assert dae['environ']['wsgi.multithread'] is True
    assert dae['environ']['wsgi.multiprocess'] is True
    # The Apache child that accepted the request, in both modes.
    assert emb['environ']['mod_wsgi.server_pid'] == str(emb['process']['pid'])
    assert int(dae['environ']['mod_wsgi.server_pid']) in server.child_pids()
    e, d = emb['environ'], dae['environ']
    missing = sorted(set(e) - set(d) - DIFFERENT)
    extra = sorted(set(d) - set(e) - DIFFERENT)
    assert missing == [] and extra == [], ('only embedded', missing, 'only daemon', extra)
    changed = {k: (e[k], d[k]) for k in sorted(set(e) & set(d) - DIFFERENT) if e[k] != d[k]}
    assert changed == {}, changed
    types_changed = {k: (emb['types'][k], dae['types'][k])
                     for k in sorted(set(e) & set(d)) if emb['types'][k] != dae['types'][k]}
    assert types_changed == {}, types_changed
    assert 'MWRS_GROUP' not in e and d['MWRS_GROUP'] == 'par'
    assert d['QUERY_STRING'] == 'a=1&b=%20'
    assert d['SCRIPT_NAME'] == '/env'
    assert d['PATH_INFO'] == '/x'
    assert d['HTTP_X_TEST'] == 'v'


def test_daemon_output_goes_to_the_defining_vhost_log(server):
    vlog = os.path.join(server.logs, 'vhost_error.log')
    token = uuid.uuid4().hex
    data = du.get_json(server, '/info?log=printed-' + token, host='logs.test')
    assert data['process_group'] == 'vlog'
    r = server.get('/boom?' + token, headers={'Host': 'logs.test'})
    assert r.status == 500

    def vhost_text():
        with open(vlog, errors='replace') as f:
            return f.read()
    assert du.wait_for(lambda: 'boom-' + token in vhost_text(), 5), vhost_text()[-3000:]
    text = vhost_text()
    assert 'printed-' + token in text
    assert 'RuntimeError: boom-' + token in text
    main = server.error_log()
    assert token not in main, [l for l in main.splitlines() if token in l]
