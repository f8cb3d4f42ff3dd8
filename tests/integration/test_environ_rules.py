"""Environ rules in both modes: URIs as Latin-1 bytes, group names from the
configured ServerName, REDIRECT_* variables, SERVER_NAME for URLs, the
listener host, the request's handler, CGIPassAuth, wsgi.run_once, and the
mod_wsgi module's application_group."""
import base64
import concurrent.futures
import hashlib
import os

import pytest

import daemon_util as du
import harness
from harness import build_request, raw_request, Response

# A second port with a wildcard Listen (no host), for mod_wsgi.listener_host.
WILDCARD_PORT = harness.free_port()

CONFIG = r"""
Listen {wildcard}
WSGIDaemonProcess d threads=2 display-name=%{GROUP}
WSGIDaemonProcess once threads=1 maximum-requests=1 display-name=%{GROUP}
WSGIDaemonProcess single threads=1 display-name=%{GROUP}
# The group %{SERVER} names for this server (ServerName 127.0.0.1).
WSGIDaemonProcess 127.0.0.1:{port} threads=1

WSGIScriptAlias /env {apps}/environ.wsgi
WSGIScriptAlias /denv {apps}/environ.wsgi process-group=d
WSGIScriptAliasMatch ^/latin[^/]* {apps}/environ.wsgi
WSGIScriptAliasMatch ^/dlatin[^/]* {apps}/environ.wsgi process-group=d
WSGIScriptAlias /once {apps}/environ.wsgi process-group=once
WSGIScriptAlias /single {apps}/environ.wsgi process-group=single

WSGIScriptAlias /server {apps}/groups.wsgi application-group=%{SERVER}
WSGIScriptAlias /host {apps}/groups.wsgi application-group=%{HOST}
WSGIScriptAlias /resource {apps}/groups.wsgi
WSGIScriptAlias /first {apps}/groups.wsgi application-group=first
WSGIScriptAlias /second {apps}/groups.wsgi application-group=second
WSGIScriptAlias /dserver {apps}/groups.wsgi process-group=%{SERVER}
WSGIScriptAlias /dgroups {apps}/groups.wsgi process-group=d application-group=%{SERVER}

WSGIScriptAlias /sslenv {apps}/environ.wsgi
<Location /sslenv>
    SetEnv HTTPS on
</Location>

WSGIScriptAlias /passauth {apps}/environ.wsgi
<Location /passauth>
    CGIPassAuth On
</Location>

Alias /xh {apps}/sethandler
<Directory {apps}/sethandler>
    Options +ExecCGI
    SetHandler application/x-httpd-wsgi
</Directory>

# Internal redirects: ErrorDocument (embedded and daemon), after Basic
# authentication, with QualifyRedirectURL, and mod_rewrite in a directory.
<Location /gone>
    ErrorDocument 404 /env/err
</Location>
<Location /dgone>
    ErrorDocument 404 /denv/err
</Location>
<Location /private>
    AuthType Basic
    AuthName private
    AuthBasicProvider file
    AuthUserFile {root}/htpasswd
    Require valid-user
    ErrorDocument 404 /env/err
</Location>
WSGIScriptAlias /qerr {apps}/environ.wsgi
<Location /qerr>
    QualifyRedirectURL On
</Location>
<Location /qgone>
    ErrorDocument 404 /qerr
</Location>
<Directory {htdocs}>
    RewriteEngine On
    RewriteRule ^old/(.*)$ /env/$1
</Directory>
""".replace('{wildcard}', str(WILDCARD_PORT))

MODULES = ['auth_basic', 'authn_core', 'authn_file', 'authz_user', 'rewrite']
PASSWORD = 's3cret'


def write_htpasswd(apache):
    digest = base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()
    path = os.path.join(apache.root, 'htpasswd')
    with open(path, 'w') as f:
        f.write('alice:{SHA}%s\n' % digest)
    os.chmod(path, 0o644)


server = du.daemon_fixture(CONFIG, 'rules', {'d': 1, 'once': 1, 'single': 1},
                           mpms=['event', 'prefork'], modules=MODULES, pre_start=write_htpasswd)


def env_of(server, path, **kw):
    return du.get_json(server, path, **kw)['environ']


def basic_auth(user, password):
    return 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode()


# -- 1. URIs are Latin-1 bytes, never lossily decoded -------------------------

@pytest.mark.parametrize('prefix', ['/env', '/denv'])
def test_path_info_is_the_uri_bytes_as_latin1(server, prefix):
    env = env_of(server, prefix + '/caf%E9/%FF')
    assert env['PATH_INFO'] == '/caf\xe9/\xff'
    assert env['mod_wsgi.path_info'] == '/caf\xe9/\xff'
    assert env['SCRIPT_NAME'] == prefix
    assert env['SCRIPT_FILENAME'] == server.apps + '/environ.wsgi'
    assert env['REQUEST_URI'] == prefix + '/caf%E9/%FF'


@pytest.mark.parametrize('prefix', ['/latin', '/dlatin'])
def test_script_name_from_an_alias_match_keeps_its_bytes(server, prefix):
    env = env_of(server, prefix + '%E9/x%E9')
    assert env['SCRIPT_NAME'] == prefix + '\xe9'
    assert env['PATH_INFO'] == '/x\xe9'
    # %{RESOURCE}, the default group, is built from the same bytes.
    assert env['mod_wsgi.application_group'] == '127.0.0.1:%d|%s\xe9' % (server.port, prefix)


def test_utf8_path_info_stays_utf8_bytes(server):
    env = env_of(server, '/env/%C3%A9')
    assert env['PATH_INFO'] == '/\xc3\xa9'
    assert env['PATH_INFO'].encode('latin-1').decode('utf-8') == '/\xe9'


# -- 2. Group names come from ServerName, not the Host header -------------------

OTHER_HOST = 'Other.Example'


def groups_of(server, path, host=OTHER_HOST):
    r = server.get(path, headers={'Host': '%s:%d' % (host, server.port)})
    assert r.status == 200, r.raw[:1500]
    return r.json()


def test_server_group_uses_server_name(server):
    data = groups_of(server, '/server')
    assert data['environ_group'] == '127.0.0.1:%d' % server.port


def test_resource_group_uses_server_name(server):
    data = groups_of(server, '/resource/x')
    assert data['environ_group'] == '127.0.0.1:%d|/resource' % server.port


def test_host_group_is_the_lowercased_host_without_its_port(server):
    data = groups_of(server, '/host')
    assert data['environ_group'] == 'other.example:%d' % server.port


def test_process_group_server_with_another_host(server):
    """WSGIProcessGroup %{SERVER} finds the group named after ServerName
    whatever host name the client sent. (The port is the one the client
    asked for, from ap_get_server_port, as in mod_wsgi.)"""
    for host in (OTHER_HOST, 'evil.example', '127.0.0.1'):
        data = groups_of(server, '/dserver', host=host)
        assert data['environ_group'] == '127.0.0.1:%d|/dserver' % server.port


def test_application_group_server_in_a_daemon(server):
    data = groups_of(server, '/dgroups')
    assert data['environ_group'] == '127.0.0.1:%d' % server.port
    assert data['module_group'] == data['environ_group']


# -- 3. HTTPS is not passed (see also test_environ.py) ---------------------------

def test_https_from_setenv_is_not_passed(server):
    """An HTTPS set in Apache's environment decides wsgi.url_scheme and is
    not passed on itself, as in mod_wsgi 6."""
    env = env_of(server, '/sslenv')
    assert env['wsgi.url_scheme'] == 'https'
    assert 'HTTPS' not in env


# -- 4. REDIRECT_* variables ----------------------------------------------------

@pytest.mark.parametrize('prefix', ['/gone', '/dgone'])
def test_error_document_gets_redirect_variables(server, prefix):
    # The error document's own status line is the app's (200), as with CGI.
    env = env_of(server, prefix + '/missing?q=1&r=%20')
    assert env['REDIRECT_URL'] == prefix + '/missing'
    assert env['REDIRECT_QUERY_STRING'] == 'q=1&r=%20'
    assert env['REDIRECT_STATUS'] == '404'
    assert env['PATH_INFO'] == '/err'
    assert 'REDIRECT_REMOTE_USER' not in env


def test_redirect_query_string_absent_without_a_query(server):
    env = env_of(server, '/gone/missing')
    assert env['REDIRECT_URL'] == '/gone/missing'
    assert 'REDIRECT_QUERY_STRING' not in env


def test_error_document_after_authentication_gets_redirect_remote_user(server):
    env = env_of(server, '/private/missing', headers={'Authorization': basic_auth('alice', PASSWORD)})
    assert env['REDIRECT_REMOTE_USER'] == 'alice'
    assert 'REMOTE_USER' not in env
    assert env['REDIRECT_URL'] == '/private/missing'


def test_qualify_redirect_url_gives_the_full_url(server):
    env = env_of(server, '/qgone/missing?z=1')
    assert env['REDIRECT_URL'] == 'http://127.0.0.1:%d/qgone/missing?z=1' % server.port


def test_mod_rewrite_internal_redirect_gets_redirect_variables(server):
    env = env_of(server, '/old/x?q=2')
    assert env['PATH_INFO'] == '/x'
    assert env['QUERY_STRING'] == 'q=2'
    assert env['REDIRECT_URL'] == '/old/x'
    assert env['REDIRECT_QUERY_STRING'] == 'q=2'
    assert env['REDIRECT_STATUS'] == '200'


def test_no_redirect_variables_without_a_redirect(server):
    env = env_of(server, '/env?q=1')
    assert not [k for k in env if k.startswith('REDIRECT_')]


# -- 5. Smaller differences ------------------------------------------------------

@pytest.mark.parametrize('prefix', ['/env', '/denv'])
def test_server_name_of_an_ipv6_host_is_bracketed(server, prefix):
    env = env_of(server, prefix, headers={'Host': '[::1]:%d' % server.port})
    assert env['SERVER_NAME'] == '[::1]'
    assert env['HTTP_HOST'] == '[::1]:%d' % server.port


def test_listener_host_is_the_listen_directives_host(server):
    assert env_of(server, '/env')['mod_wsgi.listener_host'] == '127.0.0.1'
    raw = raw_request(WILDCARD_PORT, build_request('GET', '/env', port=WILDCARD_PORT))
    env = Response(raw).json()['environ']
    assert env['mod_wsgi.listener_host'] == ''
    assert env['mod_wsgi.listener_port'] == str(WILDCARD_PORT)
    assert env['SERVER_ADDR'] == '127.0.0.1'


def test_request_handler_is_the_requests_handler(server):
    r = server.get('/xh/s.wsgi')
    assert r.status == 200, r.raw[:800]
    assert r.json()['mod_wsgi.request_handler'] == 'application/x-httpd-wsgi'
    assert env_of(server, '/env')['mod_wsgi.request_handler'] == 'wsgi-script'


@pytest.mark.parametrize('path', ['/passauth', '/env'])
def test_cgi_pass_auth_passes_the_credentials_headers(server, path):
    env = env_of(server, path, headers={'Authorization': basic_auth('bob', 'pw'),
                                        'Proxy-Authorization': 'Basic cHJveHk6cHc='})
    if path == '/passauth':
        assert env['HTTP_AUTHORIZATION'] == basic_auth('bob', 'pw')
        assert env['HTTP_PROXY_AUTHORIZATION'] == 'Basic cHJveHk6cHc='
    else:
        assert 'HTTP_AUTHORIZATION' not in env
        assert 'HTTP_PROXY_AUTHORIZATION' not in env


def test_run_once_for_a_one_thread_one_request_daemon(server):
    assert env_of(server, '/once')['wsgi.run_once'] is True
    assert env_of(server, '/single')['wsgi.run_once'] is False
    assert env_of(server, '/denv')['wsgi.run_once'] is False
    assert env_of(server, '/env')['wsgi.run_once'] is False


def test_module_application_group_follows_the_request(server):
    """mod_wsgi.application_group names the group of the request the
    calling thread serves, also with requests of two groups in parallel."""
    def fetch(i):
        path = '/first' if i % 2 else '/second'
        data = server.get(path).json()
        return path, data['environ_group'], data['module_group']

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(fetch, range(40)))
    for path, environ_group, module_group in results:
        assert environ_group == path[1:]
        assert module_group == environ_group


# -- 10. wsgi.errors and wsgi.input are not shared state ----------------------------

def test_stream_attributes_do_not_leak_between_requests(server):
    first = server.get('/first?mark=leak').json()
    assert first['refused'] == ['wsgi.input']
    for _ in range(6):
        data = server.get('/second').json()
        assert data['seen'] == {'wsgi.errors': None, 'wsgi.input': None}
