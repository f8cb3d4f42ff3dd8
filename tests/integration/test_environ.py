"""The WSGI environ: CGI variables, header rules, wsgi.* / mod_wsgi.* keys."""
import re
import time

import pytest

import harness

ABSENT_SINCE_6 = ['PATH_TRANSLATED', 'GATEWAY_INTERFACE', 'SERVER_SIGNATURE',
                  'REMOTE_HOST', 'REMOTE_IDENT', 'PATH']


@pytest.fixture(scope='module')
def basic(adapter_server):
    """One GET with path info, query string and a handful of headers."""
    s = adapter_server
    t0 = time.time()
    r = s.get('/env/extra/path?a=1&b=two', headers=[
        ('X-Foo', 'dash'),
        ('X_Foo', 'underscore'),
        ('X_Only_Underscore', 'spoof'),
        ('Proxy', 'http://evil.example:3128/'),
        ('X-Latin', 'caf\xe9'),
        ('Accept', 'text/plain'),
    ])
    t1 = time.time()
    assert r.status == 200, r.raw[:2000]
    data = r.json()
    return s, r, data, t0, t1


def test_cgi_variables_exact(basic):
    s, r, data, _, _ = basic
    env = data['environ']
    expected = {
        'SERVER_NAME': '127.0.0.1',
        'SERVER_ADDR': '127.0.0.1',
        'SERVER_PORT': str(s.port),
        'REMOTE_ADDR': '127.0.0.1',
        'REMOTE_PORT': str(r.client_port),
        'DOCUMENT_ROOT': s.htdocs,
        'REQUEST_SCHEME': 'http',
        'CONTEXT_PREFIX': '',
        'CONTEXT_DOCUMENT_ROOT': s.htdocs,
        'SCRIPT_FILENAME': s.apps + '/environ.wsgi',
        'SERVER_PROTOCOL': 'HTTP/1.1',
        'REQUEST_METHOD': 'GET',
        'QUERY_STRING': 'a=1&b=two',
        'REQUEST_URI': '/env/extra/path?a=1&b=two',
        'SCRIPT_NAME': '/env',
        'PATH_INFO': '/extra/path',
        'HTTP_HOST': '127.0.0.1:%d' % s.port,
        'HTTP_ACCEPT': 'text/plain',
        'SERVER_ADMIN': 'admin@example.test',
    }
    got = {k: env.get(k) for k in expected}
    assert got == expected
    for k in expected:
        assert data['types'][k] == 'str', k


def test_server_software_is_banner(basic):
    s, r, data, _, _ = basic
    env = data['environ']
    assert env['SERVER_SOFTWARE'] == r.header('Server')
    assert 'mod_wsgi-rs/' in env['SERVER_SOFTWARE']
    assert 'Python/%s' % harness.python_version_text() in env['SERVER_SOFTWARE']


@pytest.mark.parametrize('name', ABSENT_SINCE_6)
def test_variables_absent(basic, name):
    _, _, data, _, _ = basic
    assert name not in data['environ']


def test_underscore_header_dropped_dash_header_kept(basic):
    _, _, data, _, _ = basic
    env = data['environ']
    # 'X_Foo' must not overwrite or join the value of 'X-Foo'.
    assert env['HTTP_X_FOO'] == 'dash'
    assert 'HTTP_X_ONLY_UNDERSCORE' not in env
    assert not [k for k in env if 'underscore' == env[k] or 'spoof' == env[k]]


def test_proxy_header_never_exported(basic):
    _, _, data, _, _ = basic
    env = data['environ']
    assert 'HTTP_PROXY' not in env
    assert not [k for k, v in env.items() if v == 'http://evil.example:3128/']


def test_header_values_decoded_as_latin1(basic):
    _, _, data, _, _ = basic
    assert data['environ']['HTTP_X_LATIN'] == 'caf\xe9'


def test_no_content_vars_without_body(basic):
    _, _, data, _, _ = basic
    assert 'CONTENT_LENGTH' not in data['environ']
    assert 'CONTENT_TYPE' not in data['environ']


def test_setenv_variable_present(basic):
    _, _, data, _, _ = basic
    assert data['environ']['MWRS_SETENV'] == 'bar'


def test_wsgi_keys(basic, adapter_server):
    _, _, data, _, _ = basic
    env, types = data['environ'], data['types']
    assert env['wsgi.version'] == [1, 0] and types['wsgi.version'] == 'tuple'
    assert env['wsgi.url_scheme'] == 'http'
    assert env['wsgi.input_terminated'] is True
    assert env['wsgi.run_once'] is False
    assert env['wsgi.multiprocess'] is True
    expected_mt = adapter_server.mpm != 'prefork'
    assert env['wsgi.multithread'] is expected_mt
    for key in ('wsgi.input', 'wsgi.errors', 'wsgi.file_wrapper'):
        assert key in env


def test_mod_wsgi_keys(basic, adapter_server):
    s, _, data, t0, t1 = basic
    env, types = data['environ'], data['types']
    assert env['mod_wsgi.process_group'] == ''
    assert env['mod_wsgi.application_group'] == '127.0.0.1:%d|/env' % s.port
    assert env['mod_wsgi.request_handler'] == 'wsgi-script'
    assert env['mod_wsgi.handler_script'] == ''
    # Apache's log id, made for the request when nothing asked for one yet.
    assert types['mod_wsgi.request_id'] == 'str' and env['mod_wsgi.request_id']
    assert env['mod_wsgi.callable_object'] == 'application'
    assert env['mod_wsgi.script_name'] == '/env'
    assert env['mod_wsgi.path_info'] == '/extra/path'
    assert types['mod_wsgi.version'] == 'tuple'
    assert len(env['mod_wsgi.version']) == 3
    assert all(isinstance(x, int) for x in env['mod_wsgi.version'])
    assert types['apache.version'] == 'tuple'
    assert env['apache.version'][:2] == [2, 4]
    assert len(env['apache.version']) == 3
    assert all(isinstance(x, int) for x in env['apache.version'])
    assert types['mod_wsgi.request_start'] == 'float'
    assert t0 - 2 <= env['mod_wsgi.request_start'] <= t1 + 2


def test_empty_query_string_and_path_info(adapter_server):
    env = adapter_server.get('/env').json()['environ']
    assert env['QUERY_STRING'] == ''
    assert env['PATH_INFO'] == ''
    assert env['SCRIPT_NAME'] == '/env'
    assert env['REQUEST_URI'] == '/env'


def test_content_type_and_length_when_sent(adapter_server):
    r = adapter_server.post('/env?x=y', b'hello=world',
                            headers=[('Content-Type', 'application/x-www-form-urlencoded')])
    env = r.json()['environ']
    assert env['CONTENT_TYPE'] == 'application/x-www-form-urlencoded'
    assert env['CONTENT_LENGTH'] == '11'
    assert env['REQUEST_METHOD'] == 'POST'
    assert 'HTTP_CONTENT_TYPE' not in env
    assert 'HTTP_CONTENT_LENGTH' not in env


def test_http10_protocol(adapter_server):
    r = adapter_server.get('/env', version='HTTP/1.0')
    assert r.status == 200
    assert r.json()['environ']['SERVER_PROTOCOL'] == 'HTTP/1.0'


def test_https_url_scheme(adapter_server):
    s = adapter_server
    r = s.get('/env/p?q=1', https=True)
    assert r.status == 200
    env = r.json()['environ']
    assert env['wsgi.url_scheme'] == 'https'
    assert env['REQUEST_SCHEME'] == 'https'
    assert env['SERVER_PORT'] == str(s.sslport)
    assert env['SCRIPT_NAME'] == '/env'
    assert env['PATH_INFO'] == '/p'


def test_https_variable_not_passed_under_mod_ssl(adapter_server):
    """mod_wsgi 6 consumes HTTPS (mod_ssl sets it to 'on'): the app sees the
    scheme only as wsgi.url_scheme."""
    env = adapter_server.get('/env', https=True).json()['environ']
    assert env['wsgi.url_scheme'] == 'https'
    assert 'HTTPS' not in env


def test_no_https_on_plain_http(adapter_server):
    env = adapter_server.get('/env').json()['environ']
    assert env['wsgi.url_scheme'] == 'http'
    assert 'HTTPS' not in env


def test_server_header_banner(adapter_server):
    r = adapter_server.get('/env')
    server = r.header('Server')
    assert re.search(r'\bmod_wsgi-rs/\d', server), server
    assert 'Python/%s' % harness.python_version_text() in server
