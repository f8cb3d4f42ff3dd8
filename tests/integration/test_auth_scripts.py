"""WSGIAuthUserScript (AuthBasicProvider wsgi), WSGIAuthGroupScript
(Require wsgi-group) and WSGIAccessScript, run in Apache's children."""
import base64

import pytest

import harness

CONFIG = r"""
WSGIScriptAlias /private {apps}/environ.wsgi
WSGIScriptAlias /staff {apps}/environ.wsgi
WSGIScriptAlias /guarded {apps}/environ.wsgi
WSGIScriptAlias /digest {apps}/environ.wsgi
<Location /digest>
    AuthType Digest
    AuthName "digest realm"
    AuthDigestProvider wsgi
    WSGIAuthUserScript {apps}/auth.wsgi
    Require valid-user
</Location>
<Location /private>
    AuthType Basic
    AuthName "private"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {apps}/auth.wsgi
    Require valid-user
</Location>
<Location /staff>
    AuthType Basic
    AuthName "staff"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {apps}/auth.wsgi
    WSGIAuthGroupScript {apps}/auth.wsgi
    Require wsgi-group admins
</Location>
<Location /guarded>
    WSGIAccessScript {apps}/auth.wsgi
</Location>
WSGIScriptAlias /guarded-server {apps}/environ.wsgi
<Location /guarded-server>
    WSGIAccessScript {apps}/auth.wsgi application-group=%{SERVER}
</Location>
"""


server = harness.server_fixture(CONFIG, 'auth',
                                modules=['auth_basic', 'auth_digest', 'authn_core', 'authz_user'])


def basic(user, password):
    return {'Authorization': 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode()}


def test_valid_password_is_granted_and_user_reaches_the_app(server):
    r = server.get('/private', headers=basic('alice', 'wonderland'))
    assert r.status == 200, r.raw[:300]
    assert r.json()['environ']['REMOTE_USER'] == 'alice'
    assert r.json()['environ']['AUTH_TYPE'] == 'Basic'


@pytest.mark.parametrize('user,password', [('alice', 'wrong'), ('nobody', 'x'), ('carol', 'wrong')])
def test_wrong_password_or_unknown_user_is_401(server, user, password):
    assert server.get('/private', headers=basic(user, password)).status == 401


def test_no_credentials_is_401(server):
    assert server.get('/private').status == 401


def test_a_returned_name_becomes_the_user(server):
    r = server.get('/private', headers=basic('carol', 'secret'))
    assert r.status == 200
    assert r.json()['environ']['REMOTE_USER'] == 'Carol'


def test_group_membership(server):
    assert server.get('/staff', headers=basic('alice', 'wonderland')).status == 200
    assert server.get('/staff', headers=basic('bob', 'builder')).status == 401


def test_access_script(server):
    assert server.get('/guarded').status == 200
    assert server.get('/guarded', headers={'X-Block': 'yes'}).status == 403


def test_failing_access_script_denies_and_logs(server):
    off = server.log_size()
    assert server.get('/guarded', headers={'X-Block': 'error'}).status == 403
    assert server.wait_for_log('access script failed on purpose', off) is not None


def digest_get(server, user, password):
    import urllib.error
    import urllib.request
    url = 'http://127.0.0.1:%d/digest' % server.port
    handler = urllib.request.HTTPDigestAuthHandler()
    handler.add_password('digest realm', url, user, password)
    try:
        with urllib.request.build_opener(handler).open(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b''


@pytest.mark.slow
def test_digest_uses_get_realm_hash(server):
    import json
    status, body = digest_get(server, 'alice', 'wonderland')
    assert status == 200
    assert json.loads(body)['environ']['REMOTE_USER'] == 'alice'
    assert json.loads(body)['environ']['AUTH_TYPE'] == 'Digest'
    assert digest_get(server, 'alice', 'wrong')[0] == 401
    assert digest_get(server, 'nobody', 'x')[0] == 401


def test_auth_script_outside_a_directory_section_is_refused():
    rc, out = harness.config_test('WSGIAuthUserScript {apps}/auth.wsgi\n', name='authcfg')
    assert rc != 0 and 'WSGIAuthUserScript' in out, out


def test_auth_script_environ_names_its_application_group(server):
    """An auth script's application-group= is expanded for its environ
    (%{SERVER}: the ServerName, whatever Host was sent); the default is
    %{GLOBAL}, as in mod_wsgi."""
    host = {'Host': 'other.example:%d' % server.port}
    expect = dict(host, **{'X-Expect-Group': '127.0.0.1:%d' % server.port})
    assert server.get('/guarded-server', headers=expect).status == 200
    assert server.get('/guarded-server', headers=dict(host, **{'X-Expect-Group': ''})).status == 403
    assert server.get('/guarded', headers={'X-Expect-Group': ''}).status == 200
