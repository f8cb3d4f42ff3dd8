"""The same ``mod_wsgi-express start-server`` command line, given to the
one from the package index (mod_wsgi 6.1.1, with its own module) and to
ours, serves the same responses: status, body and the headers that matter.

Each variant runs the PyPI launcher, then ours, on the same port and
server root, with the same arguments. The application reports the parts of
its environ that do not depend on how the request reached it (ours mounts
the application with WSGIScriptAlias, mod_wsgi-express with
WSGIHandlerScript: see docs/express.md). The first run builds mod_wsgi into
a cached venv (see express_util) and fails loudly when it cannot."""
import json
import os
import shutil

import pytest

import express_util
import harness
from launcher_util import EXPRESS, RUN_AS, Launched, Site

APP = '''import json
import os
import sys

KEYS = ('REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'CONTENT_TYPE',
        'CONTENT_LENGTH', 'SERVER_NAME', 'SERVER_PORT', 'SERVER_PROTOCOL', 'SERVER_SOFTWARE',
        'HTTP_HOST', 'REQUEST_URI', 'DOCUMENT_ROOT', 'REMOTE_ADDR', 'GATEWAY_INTERFACE',
        'SCRIPT_URI', 'SCRIPT_URL', 'wsgi.url_scheme', 'wsgi.multithread', 'wsgi.multiprocess',
        'wsgi.run_once', 'wsgi.version', 'mod_wsgi.process_group', 'mod_wsgi.application_group')
EXPRESS_VARIABLES = ('MOD_WSGI_EXPRESS', 'MOD_WSGI_SERVER_NAME', 'MOD_WSGI_SERVER_ALIASES')


def application(environ, start_response):
    if environ['PATH_INFO'] == '/redirect':
        start_response('302 Found', [('Location', 'http://localhost/elsewhere'),
                                     ('Content-Type', 'text/plain')])
        return [b'moved']
    if environ['PATH_INFO'] == '/error':
        raise RuntimeError('a deliberate error')
    data = {key: environ.get(key) for key in KEYS}
    data['os.environ'] = {key: os.environ.get(key) for key in EXPRESS_VARIABLES}
    data['utf-8 locale'] = os.environ.get('LC_ALL', '').endswith('UTF-8')
    data['cwd'] = os.getcwd()
    data['cwd on sys.path'] = os.getcwd() in sys.path
    data['body'] = environ['wsgi.input'].read().decode('latin-1')
    out = json.dumps(data, sort_keys=True, indent=1).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(out)))])
    return [out]
'''

FILES = {
    'app.wsgi': APP,
    'appmod.py': APP.replace('def application', 'def app'),
    'static/hello.txt': 'static hello\n',
}

VARIANTS = {
    'daemon': ['app.wsgi', '--url-alias', '/static', '{dir}/static'],
    'embedded': ['app.wsgi', '--embedded-mode', '--url-alias', '/static', '{dir}/static'],
    'module': ['--application-type', 'module', '--entry-point', 'appmod', '--callable-object', 'app'],
    'mount-point': ['app.wsgi', '--mount-point', '/app', '--processes', '2', '--threads', '3'],
    'https': ['app.wsgi', '--https-port', '{https}', '--ssl-certificate-file', '{dir}/cert.pem',
              '--ssl-certificate-key-file', '{dir}/key.pem', '--server-name', 'localhost'],
}

REQUESTS = [
    ('GET', '/', None),
    ('GET', '/a/b%20c?x=1&y=2', None),
    ('POST', '/submit', b'name=World&x=%2F'),
    ('HEAD', '/head', None),
    ('GET', '/redirect', None),
    ('GET', '/error', None),
    ('GET', '/static/hello.txt', None),
    ('GET', '/static/missing.txt', None),
    ('GET', '/app', None),
    ('GET', '/app/', None),
    ('GET', '/app/x/y?z', None),
    ('POST', '/app/submit', b'a=1'),
]

HEADERS = ('Content-Type', 'Content-Length', 'Location', 'Server', 'Last-Modified', 'ETag')


@pytest.fixture(scope='module')
def pypi_express():
    try:
        venv = express_util.ensure_venv()
    except express_util.Unavailable as e:
        pytest.fail('cannot install mod_wsgi %s from the package index: %s' % (express_util.MOD_WSGI_VERSION, e))
    return os.path.join(venv, 'bin', 'mod_wsgi-express')


@pytest.fixture(scope='module')
def site():
    with Site(FILES, name='compat') as s:
        harness.self_signed_cert(s.path('cert.pem'), s.path('key.pem'))
        # Apache makes the ETag of a file changed within the last second weak.
        an_hour_ago = os.stat(s.path('static/hello.txt')).st_mtime - 3600
        os.utime(s.path('static/hello.txt'), (an_hour_ago, an_hour_ago))
        yield s


def responses(executable, env, site, args, ports):
    """What one launcher's server answers to REQUESTS, over HTTP and, when
    the arguments ask for it, over HTTPS."""
    port, https_port = ports
    root = site.path('server-root')
    shutil.rmtree(root, ignore_errors=True)
    argv = [a.replace('{dir}', site.dir).replace('{https}', str(https_port)) for a in args]
    argv += ['--port', str(port), '--server-root', root] + RUN_AS
    schemes = [None, https_port] if '--https-port' in args else [None]
    with Launched(argv, root, port, cwd=site.dir, executable=executable, env=env,
                  ready_path='/static/hello.txt') as server:
        answers = []
        for tls_port in schemes:
            for method, path, body in REQUESTS:
                headers = {'Content-Type': 'application/x-www-form-urlencoded'} if body else None
                r = server.request(method, path, headers=headers, body=body, https_port=tls_port)
                content = r.body
                if r.header('Content-Type') == 'application/json' and method != 'HEAD':
                    content = json.loads(r.body)
                request = (method, path) if tls_port is None else (method, path, 'https')
                answers.append((request, r.status, {h: r.header(h) for h in HEADERS}, content))
        log = server.describe()
        _, left = server.stop()
    assert left == [], left
    return answers, log


def differences(ours, theirs):
    """What differs between two answers, field by field."""
    out = []
    for name, mine, expected in [('status', ours[1], theirs[1]), ('headers', ours[2], theirs[2]),
                                 ('body', ours[3], theirs[3])]:
        if isinstance(mine, dict) and isinstance(expected, dict):
            out += ['%s %s: ours %r, theirs %r' % (name, key, mine.get(key), expected.get(key))
                    for key in sorted(set(mine) | set(expected)) if mine.get(key) != expected.get(key)]
        elif mine != expected:
            out.append('%s: ours %.300r, theirs %.300r' % (name, mine, expected))
    return out


@pytest.mark.parametrize('variant', VARIANTS)
def test_same_command_line_same_responses(pypi_express, site, variant):
    ports = (harness.free_port(), harness.free_port())
    theirs, their_log = responses(pypi_express, dict(harness.APACHE_ENV), site, VARIANTS[variant], ports)
    ours, our_log = responses(EXPRESS, None, site, VARIANTS[variant], ports)
    wrong = {' '.join(mine[0]): differences(mine, expected) for mine, expected in zip(ours, theirs) if mine != expected}
    assert not wrong, '%s\n--- mod_wsgi-express (PyPI) ---\n%s\n--- ours ---\n%s' % (
        json.dumps(wrong, indent=1), their_log[-3000:], our_log[-3000:])
    assert sum(answer[1] == 200 for answer in ours) >= 3
    if variant == 'https':
        assert [a for a in ours if a[0][-1] == 'https' and isinstance(a[3], dict) and a[3]['wsgi.url_scheme'] == 'https']
