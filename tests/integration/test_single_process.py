"""Behaviour that needs exactly one process with one request thread:
script reloading and per-thread state across requests."""
import os

import harness

CONFIG = r"""
WSGIScriptAlias /reload-on {apps}/reload_on.wsgi
WSGIScriptAlias /reload-off {apps}/reload_off.wsgi
<Location /reload-on>
    WSGIScriptReloading On
</Location>
<Location /reload-off>
    WSGIScriptReloading Off
</Location>
WSGIScriptAlias /tlocal {apps}/tlocal.wsgi
WSGIScriptAlias /env {apps}/environ.wsgi
"""

NEW_CODE = """\
VERSION = 'v2'


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'new code ' + VERSION.encode()]
"""


server = harness.server_fixture(CONFIG, 'single', single=True)


def test_single_process_environ_flags(server):
    env = server.get('/env').json()['environ']
    assert env['wsgi.multithread'] is False
    assert env['wsgi.multiprocess'] is False


def test_script_reloading_on(server):
    r = server.get('/reload-on')
    assert r.status == 200 and r.body == b'v1'
    harness.rewrite_script(os.path.join(server.apps, 'reload_on.wsgi'), NEW_CODE)
    r = server.get('/reload-on')
    assert r.status == 200
    assert r.body == b'new code v2'
    r = server.get('/reload-on')
    assert r.body == b'new code v2'


def test_script_reloading_off(server):
    r = server.get('/reload-off')
    assert r.status == 200 and r.body == b'v1'
    pid = server.child_pids()
    harness.rewrite_script(os.path.join(server.apps, 'reload_off.wsgi'), NEW_CODE)
    for _ in range(3):
        r = server.get('/reload-off')
        assert r.status == 200
        assert r.body == b'v1'
    assert server.child_pids() == pid


def test_threading_local_survives_between_requests(server):
    results = [server.get('/tlocal').json() for _ in range(4)]
    assert [r['count'] for r in results] == [1, 2, 3, 4]
    assert len({r['thread'] for r in results}) == 1
    assert len({r['pid'] for r in results}) == 1
