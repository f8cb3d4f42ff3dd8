"""Directives that select, map and configure the application, checked over
HTTP under event and prefork."""
import pytest

import harness

CONFIG = r"""
SetEnv MWRS_GROUP env-group-name

# File target, directory target, regex target.
WSGIScriptAlias /app {apps}/environ.wsgi
WSGIScriptAlias /scripts/ {apps}/dir/
WSGIScriptAliasMatch ^/m/([^/]+) {apps}/dir/$1.wsgi
WSGIScriptAlias /missing {apps}/does-not-exist.wsgi

# Callable selection.
WSGIScriptAlias /callable-default {apps}/callable.wsgi
WSGIScriptAlias /callable-other {apps}/callable.wsgi
<Location /callable-other>
    WSGICallableObject other
</Location>
WSGIScriptAlias /callable-opt {apps}/callable.wsgi callable-object=other
WSGIScriptAlias /callable-missing {apps}/callable.wsgi
<Location /callable-missing>
    WSGICallableObject mwrs_missing_callable
</Location>

# Scripts that cannot be loaded.
WSGIScriptAlias /module {apps}/module.wsgi
WSGIScriptAlias /broken-syntax {apps}/broken_syntax.wsgi
WSGIScriptAlias /import-error {apps}/import_error.wsgi

# Application groups.
WSGIScriptAlias /ag-global {apps}/environ.wsgi
WSGIScriptAlias /ag-server {apps}/environ.wsgi
WSGIScriptAlias /ag-host {apps}/environ.wsgi
WSGIScriptAlias /ag-resource {apps}/environ.wsgi
WSGIScriptAlias /ag-env {apps}/environ.wsgi
WSGIScriptAlias /ag-literal {apps}/environ.wsgi
WSGIScriptAlias /ag-opt {apps}/environ.wsgi application-group=%{GLOBAL}
<Location /ag-global>
    WSGIApplicationGroup %{GLOBAL}
</Location>
<Location /ag-server>
    WSGIApplicationGroup %{SERVER}
</Location>
<Location /ag-host>
    WSGIApplicationGroup %{HOST}
</Location>
<Location /ag-resource>
    WSGIApplicationGroup %{RESOURCE}
</Location>
<Location /ag-env>
    WSGIApplicationGroup %{ENV:MWRS_GROUP}
</Location>
<Location /ag-literal>
    WSGIApplicationGroup literal-group
</Location>

# Authorization header.
WSGIScriptAlias /auth-on {apps}/environ.wsgi
WSGIScriptAlias /auth-off {apps}/environ.wsgi
WSGIScriptAlias /auth-default {apps}/environ.wsgi
WSGIScriptAlias /auth-opt {apps}/environ.wsgi pass-authorization=On
<Location /auth-on>
    WSGIPassAuthorization On
</Location>
<Location /auth-off>
    WSGIPassAuthorization Off
</Location>

# Chunked request bodies.
WSGIScriptAlias /chunk-on {apps}/echo.wsgi
WSGIScriptAlias /chunk-off {apps}/echo.wsgi
<Location /chunk-on>
    WSGIChunkedRequest On
</Location>
<Location /chunk-off>
    WSGIChunkedRequest Off
</Location>

# HEAD mapping.
WSGIScriptAlias /head-on {apps}/environ.wsgi
WSGIScriptAlias /head-off {apps}/environ.wsgi
WSGIScriptAlias /head-default {apps}/environ.wsgi
WSGIScriptAlias /head-auto-deflate {apps}/environ.wsgi
<Location /head-on>
    WSGIMapHEADToGET On
</Location>
<Location /head-off>
    WSGIMapHEADToGET Off
</Location>
<Location /head-auto-deflate>
    WSGIMapHEADToGET Auto
    SetOutputFilter DEFLATE
</Location>

# No effect in embedded mode (see test_daemon_options.py for daemon mode).
WSGIScriptAlias /errover {apps}/probe.wsgi
<Location /errover>
    WSGIErrorOverride On
    ErrorDocument 404 "apache-errdoc-404"
    ErrorDocument 500 "apache-errdoc-500"
</Location>

# Handlers outside WSGIScriptAlias.
Alias /hx {apps}/handler
Alias /hn {apps}/handler_noexec
Alias /sh {apps}/sethandler
Alias /shn {apps}/handler_noexec
<Directory {apps}/handler>
    Options +ExecCGI
    AddHandler wsgi-script .wsgi
</Directory>
<Directory {apps}/handler_noexec>
    Options None
    AddHandler wsgi-script .wsgi
</Directory>
<Directory {apps}/sethandler>
    Options +ExecCGI
    SetHandler wsgi-script
</Directory>
<Location /shn>
    SetHandler wsgi-script
</Location>

# A name-based virtual host mounting an application at the root; the first
# vhost is the default one and inherits the main server's aliases.
<VirtualHost *:{port}>
    ServerName 127.0.0.1
</VirtualHost>
<VirtualHost *:{port}>
    ServerName rootmount.test
    WSGIScriptAlias / {apps}/environ.wsgi
</VirtualHost>
"""


server = harness.server_fixture(CONFIG, 'directives', modules=['deflate'])


def env_of(server, path, **kw):
    return harness.get_json(server, path, **kw)['environ']


def test_config_test_passes(server):
    rc, out = server.config_test()
    assert rc == 0, out
    assert 'Syntax OK' in out


# -- WSGIScriptAlias / WSGIScriptAliasMatch -----------------------------------

@pytest.mark.parametrize('path,script_name,path_info', [
    ('/app', '/app', ''),
    ('/app/', '/app', '/'),
    ('/app/x/y', '/app', '/x/y'),
    ('/app/x/y/', '/app', '/x/y/'),
])
def test_file_target(server, path, script_name, path_info):
    env = env_of(server, path)
    assert env['SCRIPT_NAME'] == script_name
    assert env['PATH_INFO'] == path_info
    assert env['SCRIPT_FILENAME'] == server.apps + '/environ.wsgi'


def test_alias_matches_whole_segments_only(server):
    # /apple must not be served by the /app mount.
    r = server.get('/apple')
    assert r.status == 404


@pytest.mark.parametrize('path,script,script_name,path_info', [
    ('/scripts/a.wsgi/extra', 'a.wsgi', '/scripts/a.wsgi', '/extra'),
    ('/scripts/a.wsgi/extra/more', 'a.wsgi', '/scripts/a.wsgi', '/extra/more'),
    ('/scripts/b.wsgi', 'b.wsgi', '/scripts/b.wsgi', ''),
])
def test_directory_target(server, path, script, script_name, path_info):
    r = server.get(path)
    assert r.status == 200, r.raw[:1000]
    out = r.json()
    assert out['SCRIPT_NAME'] == script_name
    assert out['PATH_INFO'] == path_info
    assert out['SCRIPT_FILENAME'] == server.apps + '/dir/' + script


@pytest.mark.parametrize('path,script,script_name,path_info', [
    ('/m/a/extra', 'a.wsgi', '/m/a', '/extra'),
    ('/m/b', 'b.wsgi', '/m/b', ''),
    ('/m/b/', 'b.wsgi', '/m/b', '/'),
])
def test_alias_match(server, path, script, script_name, path_info):
    r = server.get(path)
    assert r.status == 200, r.raw[:1000]
    out = r.json()
    assert out['SCRIPT_NAME'] == script_name
    assert out['PATH_INFO'] == path_info
    assert out['SCRIPT_FILENAME'] == server.apps + '/dir/' + script


@pytest.mark.parametrize('path', ['/missing', '/missing/x', '/scripts/nope.wsgi',
                                  '/m/nope', '/hx/nope.wsgi'])
def test_missing_script_404(server, path):
    assert server.get(path).status == 404


def test_directory_target_itself_forbidden(server):
    # The mapped file is the directory: 403, as for mod_wsgi.
    assert server.get('/scripts/').status == 403


def test_percent_encoded_path_and_raw_query(server):
    env = env_of(server, '/app/a%20b/c%3Fd?x=%20&y=%zz')
    assert env['SCRIPT_NAME'] == '/app'
    assert env['PATH_INFO'] == '/a b/c?d'
    assert env['REQUEST_URI'] == '/app/a%20b/c%3Fd?x=%20&y=%zz'
    assert env['QUERY_STRING'] == 'x=%20&y=%zz'


def test_encoded_slash_not_mapped(server):
    assert server.get('/app/..%2fetc').status == 404


@pytest.mark.parametrize('path,path_info,query', [
    ('/', '/', ''),
    ('/foo', '/foo', ''),
    ('/foo/bar?z=1', '/foo/bar', 'z=1'),
    ('/foo/bar/', '/foo/bar/', ''),
    ('/environ.wsgi', '/environ.wsgi', ''),
])
def test_root_mount(server, path, path_info, query):
    host = 'rootmount.test:%d' % server.port
    env = env_of(server, path, headers=[('Host', host)])
    assert (env['SCRIPT_NAME'], env['PATH_INFO'], env['QUERY_STRING']) == ('', path_info, query)
    assert env['SERVER_NAME'] == 'rootmount.test'
    assert env['SCRIPT_FILENAME'] == server.apps + '/environ.wsgi'


# -- handlers -------------------------------------------------------------------

def test_addhandler_with_execcgi(server):
    r = server.get('/hx/h.wsgi/more')
    assert r.status == 200, r.raw[:1000]
    out = r.json()
    assert out['SCRIPT_NAME'] == '/hx/h.wsgi'
    assert out['PATH_INFO'] == '/more'
    assert out['SCRIPT_FILENAME'] == server.apps + '/handler/h.wsgi'
    assert out['mod_wsgi.request_handler'] == 'wsgi-script'


def test_addhandler_without_execcgi_forbidden(server):
    r = server.get('/hn/h.wsgi')
    assert r.status == 403
    assert b'SCRIPT_NAME' not in r.raw


def test_sethandler_with_execcgi(server):
    r = server.get('/sh/s.wsgi')
    assert r.status == 200, r.raw[:1000]
    out = r.json()
    assert out['SCRIPT_NAME'] == '/sh/s.wsgi'
    assert out['SCRIPT_FILENAME'] == server.apps + '/sethandler/s.wsgi'


def test_sethandler_without_execcgi_forbidden(server):
    r = server.get('/shn/h.wsgi')
    assert r.status == 403
    assert b'SCRIPT_NAME' not in r.raw


# -- WSGICallableObject -----------------------------------------------------------

def test_callable_default(server):
    r = server.get('/callable-default')
    assert r.status == 200 and r.body == b'callable=application'


def test_callable_object_directive(server):
    r = server.get('/callable-other')
    assert r.status == 200 and r.body == b'callable=other:other'


def test_callable_object_alias_option(server):
    r = server.get('/callable-opt')
    assert r.status == 200 and r.body == b'callable=other:other'


def test_callable_object_missing_gives_404(server):
    # mod_wsgi answers 404 when the script lacks the callable.
    off = server.log_size()
    r = server.get('/callable-missing')
    assert r.status == 404
    assert b'callable=' not in r.raw
    assert server.wait_for_log('mwrs_missing_callable', off) is not None


def test_script_loaded_as_mod_wsgi_module(server):
    import hashlib
    r = server.get('/module')
    assert r.status == 200
    out = r.json()
    path = server.apps + '/module.wsgi'
    assert out['name'] == '_mod_wsgi_' + hashlib.md5(path.encode()).hexdigest()
    assert out['file'] == path
    assert out['has_mtime'] is True
    assert out['in_sys_modules'] is True
    assert out['argv'] == ['mod_wsgi']


# -- scripts that fail to load ----------------------------------------------------

def test_script_with_syntax_error_gives_500(server):
    off = server.log_size()
    for _ in range(2):
        r = server.get('/broken-syntax')
        assert r.status == 500
        assert b'never' not in r.raw
    text = server.wait_for_log('SyntaxError', off)
    assert text is not None
    assert server.apps + '/broken_syntax.wsgi' in text


def test_script_raising_at_import_gives_500(server):
    off = server.log_size()
    for _ in range(2):
        r = server.get('/import-error')
        assert r.status == 500
    text = server.wait_for_log('RuntimeError: mwrs-import-time-failure', off)
    assert text is not None
    # Still healthy afterwards.
    assert server.get('/app').status == 200


# -- WSGIApplicationGroup -----------------------------------------------------------

def test_application_groups(server):
    port = server.port
    cases = [
        ('/ag-global', None, ''),
        ('/ag-opt', None, ''),
        ('/ag-server', None, '127.0.0.1:%d' % port),
        ('/ag-host', 'example.test:%d' % port, 'example.test:%d' % port),
        ('/ag-resource', None, '127.0.0.1:%d|/ag-resource' % port),
        ('/ag-env', None, 'env-group-name'),
        ('/ag-literal', None, 'literal-group'),
        ('/app', None, '127.0.0.1:%d|/app' % port),   # default is %{RESOURCE}
    ]
    got = {}
    for path, host, _ in cases:
        headers = [('Host', host)] if host else None
        got[path] = env_of(server, path, headers=headers)['mod_wsgi.application_group']
    assert got == {path: expected for path, _, expected in cases}


# -- WSGIPassAuthorization -------------------------------------------------------------

AUTH = 'Basic dXNlcjpwYXNzd29yZA=='


@pytest.mark.parametrize('path,present', [('/auth-on', True), ('/auth-opt', True),
                                          ('/auth-off', False), ('/auth-default', False)])
def test_pass_authorization(server, path, present):
    env = env_of(server, path, headers=[('Authorization', AUTH)])
    if present:
        assert env.get('HTTP_AUTHORIZATION') == AUTH
    else:
        assert 'HTTP_AUTHORIZATION' not in env
        assert AUTH not in env.values()


# -- WSGIChunkedRequest ------------------------------------------------------------------

def _chunked(server, path, body):
    data = harness.build_request('POST', path, headers=[('Transfer-Encoding', 'chunked')],
                                 port=server.port) + harness.chunk_encode(body, [3, 10, 1000])
    return harness.Response(server.raw(data))


def test_chunked_request_off_gives_411(server):
    r = _chunked(server, '/chunk-off?mode=read', b'hello chunked world\n' * 50)
    assert r.status == 411
    assert b'"sha256"' not in r.raw


def test_chunked_request_on_reads_body(server):
    import hashlib
    body = b'hello chunked world\n' * 500
    r = _chunked(server, '/chunk-on?mode=read', body)
    assert r.status == 200, r.raw[:1000]
    out = r.json()
    assert out['len'] == len(body)
    assert out['sha256'] == hashlib.sha256(body).hexdigest()
    assert out['input_terminated'] is True


def test_unknown_transfer_encoding_rejected(server):
    data = harness.build_request('POST', '/chunk-on?mode=read',
                                 headers=[('Transfer-Encoding', 'gzip')], port=server.port) + b'xx'
    r = harness.Response(server.raw(data))
    assert r.status in (400, 501)
    assert b'"sha256"' not in r.raw


# -- WSGIMapHEADToGET ----------------------------------------------------------------------

def _fetch(server, method, path):
    raw = server.raw(harness.build_request(method, path, headers=[('Accept-Encoding', 'gzip')],
                                           port=server.port))
    return harness.Response(raw, method)


@pytest.mark.parametrize('path,method', [
    ('/head-on', 'GET'),
    ('/head-off', 'HEAD'),
    ('/head-default', 'HEAD'),          # Auto, no content filter
    ('/head-auto-deflate', 'GET'),      # Auto with a content filter
])
def test_map_head_to_get(server, path, method):
    r = _fetch(server, 'HEAD', path)
    assert r.status == 200
    assert r.header('X-Method') == method
    assert r.rest == b''                 # HEAD responses never carry a body
    if method == 'GET':
        # The app's body went down the filter chain as for a GET, so the
        # headers filters derive from it (DEFLATE's) are the same.
        get = _fetch(server, 'GET', path)
        for name in ('Content-Encoding', 'Vary', 'Content-Type'):
            assert r.header(name) == get.header(name), (name, r.headers, get.headers)
        assert (r.header('Content-Length') is None) == (get.header('Content-Length') is None), (r.headers, get.headers)


def test_get_still_get(server):
    r = server.get('/head-on')
    assert r.header('X-Method') == 'GET'
    assert r.json()['environ']['REQUEST_METHOD'] == 'GET'


# -- WSGIErrorOverride -----------------------------------------------------------------------

@pytest.mark.parametrize('status', [404, 500])
def test_error_override_has_no_effect_embedded(server, status):
    """As in mod_wsgi, WSGIErrorOverride only acts in daemon mode: here the
    application's own error body is sent, not the ErrorDocument."""
    r = server.get('/errover?status=%d' % status)
    assert r.status == status
    assert r.body == b'app-body-%d' % status
    assert b'apache-errdoc' not in r.raw
