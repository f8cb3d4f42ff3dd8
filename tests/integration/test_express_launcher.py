"""Our ``mod_wsgi-express`` (express/), over real Apache with the module
under test: each command, the start-up summary, static files, reloading,
embedded mode, TLS, usage errors, and that stopping it leaves no process.

The launcher is ``target/release/mod_wsgi-express`` (``$MOD_WSGI_EXPRESS``)
and loads ``$MOD_WSGI_RS_SO``, as the rest of the suite does."""
import json
import os
import re
import signal
import stat
import subprocess
import tempfile
import time

import pytest

import daemon_util
import harness
from launcher_util import RUN_AS, Launched, Site, descendants, express_env, run

APP = '''import json
import os

import greeting

VERSION = 1
KEYS = ('REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'SERVER_NAME',
        'SERVER_PORT', 'HTTP_HOST', 'wsgi.url_scheme', 'mod_wsgi.process_group',
        'mod_wsgi.application_group', 'wsgi.multithread', 'wsgi.multiprocess', 'MY_SETTING')


def application(environ, start_response):
    data = {key: environ.get(key) for key in KEYS}
    data.update(pid=os.getpid(), version=VERSION, greeting=greeting.TEXT, cwd=os.getcwd(),
                express=os.environ.get('MOD_WSGI_EXPRESS'),
                body=environ['wsgi.input'].read().decode())
    out = json.dumps(data).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(out)))])
    return [out]
'''

FILES = {
    'app.wsgi': APP,
    'greeting.py': "TEXT = 'hello'\n",
    'static/hello.txt': 'static hello\n',
    'htdocs/robots.txt': 'User-agent: *\n',
}


def replace_file(site, relative, text):
    """Rewrites a file, which gives it a new modification time."""
    before = os.stat(site.path(relative)).st_mtime_ns
    path = site.write(relative, text)
    assert os.stat(path).st_mtime_ns != before


def until(predicate, timeout=20.0):
    """predicate()'s first truthy value, polling until ``timeout``."""
    return daemon_util.wait_for(predicate, timeout=timeout, interval=0.2)


def start(site, *args, script='app.wsgi', **kw):
    """start-server for ``script`` in ``site``, with a server root of its own."""
    port = harness.free_port()
    root = tempfile.mkdtemp(prefix='root-', dir=site.dir)
    argv = ([script] if script else []) + ['--port', str(port), '--server-root', root] + RUN_AS + list(args)
    return Launched(argv, root, port, cwd=site.dir, **kw)


@pytest.fixture(scope='module')
def site():
    with Site(FILES, name='launcher') as s:
        yield s


@pytest.fixture(scope='module')
def server(site):
    """One daemon-mode server for most tests: static files from a URL alias
    and a document root, and reloading on any change."""
    with start(site, '--url-alias', '/static', site.path('static'), '--document-root', site.path('htdocs'),
               '--reload-on-changes', '--log-level', 'info', '--access-log', '--setenv', 'MY_SETTING', 'on') as s:
        yield s


def get_json(server, path, **kw):
    r = server.get(path, **kw)
    assert r.status == 200, (r.status, r.body, server.describe())
    return r.json()


# -- start-server ---------------------------------------------------------------------------

def test_start_server_runs_the_app_in_a_daemon_process(server):
    data = get_json(server, '/some/path?x=1')
    assert data['SCRIPT_NAME'] == '' and data['PATH_INFO'] == '/some/path'
    assert data['QUERY_STRING'] == 'x=1'
    assert data['mod_wsgi.process_group'] == 'localhost:%d' % server.port
    assert data['mod_wsgi.application_group'] == ''
    assert data['express'] == 'true'
    # The daemon runs as www-data, below Apache's parent, in the directory it was started from.
    apache = server.apache_pid()
    assert daemon_util.ppid(data['pid']) == apache
    assert daemon_util.uids(data['pid'])[1] == harness.WWW_UID
    assert (daemon_util.cmdline(data['pid']) or b'').startswith(b'(wsgi:localhost:%d:0)' % server.port)
    assert data['cwd'] == os.path.dirname(server.root)
    assert data['MY_SETTING'] == 'on'
    r = server.request('POST', '/form', body=b'a=1&b=2', headers={'Content-Type': 'application/x-www-form-urlencoded'})
    assert r.status == 200 and r.json()['body'] == 'a=1&b=2'


def test_start_up_summary(server):
    out, err = server.output()
    assert 'http://localhost:%d/' % server.port in out
    for label, value in [('Server root', server.root), ('Configuration', server.root + '/httpd.conf'),
                         ('Error log', server.root + '/error_log (level info)'),
                         ('Mode', 'daemon processes, event MPM'),
                         ('Capacity', '5 requests at once (1 process × 5 threads)'),
                         ('Timeouts', 'request 60s, queue 45s, startup 15s, socket 60s, connect 15s')]:
        assert re.search(r'^  %s +%s$' % (re.escape(label), re.escape(value)), out, re.M), (label, out)
    assert 'warning' not in err, err


def test_access_log(server):
    server.get('/logged-request')
    path = os.path.join(server.root, 'access_log')
    assert until(lambda: os.path.exists(path) and 'GET /logged-request HTTP/1.1" 200' in open(path).read())


def test_url_alias_serves_static_files(server):
    r = server.get('/static/hello.txt')
    assert (r.status, r.body) == (200, b'static hello\n')
    assert r.header('Content-Type') == 'text/plain'
    # Under the alias, a missing file is Apache's 404, not the application's.
    r = server.get('/static/missing.txt')
    assert r.status == 404 and b'"PATH_INFO"' not in r.body


def test_document_root_files_are_static_and_the_rest_goes_to_the_app(server):
    r = server.get('/robots.txt')
    assert (r.status, r.body) == (200, b'User-agent: *\n')
    assert get_json(server, '/robots.txt.missing')['PATH_INFO'] == '/robots.txt.missing'
    assert get_json(server, '/')['PATH_INFO'] == '/'


def test_a_changed_script_is_reloaded(site, server):
    before = get_json(server, '/')
    replace_file(site, 'app.wsgi', APP.replace('VERSION = 1', 'VERSION = 2'))
    after = until(lambda: (lambda d: d if d['version'] == 2 else None)(get_json(server, '/')))
    assert after, server.describe()
    # In daemon mode the process that had the old code was replaced.
    assert after['pid'] != before['pid']


def test_reload_on_changes_restarts_for_an_imported_module(site, server):
    before = get_json(server, '/')
    assert before['greeting'] == 'hello'
    replace_file(site, 'greeting.py', "TEXT = 'changed'\n")
    after = until(lambda: (lambda d: d if d['greeting'] == 'changed' else None)(get_json(server, '/')))
    assert after, server.describe()
    assert after['pid'] != before['pid']
    assert re.search(r'greeting\.py changed; restarting', server.error_log()), server.error_log()[-2000:]


def test_a_changed_module_entry_point_is_reloaded(site):
    site.write('entrymod.py', "def app(environ, start_response):\n"
                              "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                              "    return [b'one']\n")
    with start(site, '--application-type', 'module', '--entry-point', 'entrymod', '--callable-object', 'app',
               script=None) as s:
        assert s.get('/').body == b'one'
        replace_file(site, 'entrymod.py', open(site.path('entrymod.py')).read().replace("b'one'", "b'two'"))
        assert until(lambda: s.get('/').body == b'two'), s.describe()


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
def test_a_signal_stops_apache_and_every_daemon(sig):
    with Site(FILES, name='signal') as site, \
            start(site, '--processes', '2', '--threads', '2', '--log-to-terminal', '--log-level', 'info') as s:
        # Apache's parent, its children and both daemons, all below the launcher.
        pids = until(lambda: (lambda p: p if len(p) >= 4 else None)(s.pids()))
        assert pids, s.describe()
        daemons = [p for p in pids if (daemon_util.cmdline(p) or b'').startswith(b'(wsgi:')]
        assert len(daemons) == 2, daemon_util.describe_pids(pids)
        status, left = s.stop(sig)
        assert left == [], daemon_util.describe_pids(left)
        assert status == 0, s.describe()
        assert not os.path.exists(os.path.join(s.root, 'httpd.pid'))
        # --log-to-terminal: Apache's log went to the launcher's stderr.
        _, err = s.output()
        assert 'shutting down' in err, err
        assert not os.path.exists(os.path.join(s.root, 'error_log'))


def test_embedded_mode_under_prefork_warns_once(site):
    with start(site, '--embedded-mode', '--server-mpm', 'prefork', '--processes', '2', '--threads', '1') as s:
        data = get_json(s, '/x')
        assert data['mod_wsgi.process_group'] == ''
        assert data['wsgi.multiprocess'] is True and data['wsgi.multithread'] is False
        # The app runs in one of Apache's own children, not in a daemon.
        apache = s.apache_pid()
        assert daemon_util.ppid(data['pid']) == apache
        assert not (daemon_util.cmdline(data['pid']) or b'').startswith(b'(wsgi:')
        assert not [p for p in s.pids() if (daemon_util.cmdline(p) or b'').startswith(b'(wsgi:')]
        out, err = s.output()
        assert re.search(r'^  Mode +embedded \(in Apache.s processes\), prefork MPM$', out, re.M), out
        assert err.count('warning:') == 1 and 'prefork' in err and 'Daemon mode' in err, err
        status, left = s.stop()
        assert left == [] and status == 0


def test_embedded_mode_prefers_the_worker_mpm_without_a_warning(site):
    p = run(['setup-server', 'app.wsgi', '--embedded-mode', '--server-root', site.path('root-embedded')] + RUN_AS,
            cwd=site.dir)
    assert p.returncode == 0, p.stderr
    assert re.search(r'^  Mode +embedded \(in Apache.s processes\), worker MPM$', p.stdout, re.M), p.stdout
    assert 'warning' not in p.stderr


@pytest.mark.parametrize('server_name', [None, 'localhost'], ids=['any-name', 'server-name'])
def test_https_with_a_self_signed_certificate(site, server_name):
    cert, key = site.path('cert.pem'), site.path('key.pem')
    if not os.path.exists(key):
        harness.self_signed_cert(cert, key)
    https = harness.free_port()
    args = ['--https-port', str(https), '--ssl-certificate-file', cert, '--ssl-certificate-key-file', key]
    if server_name:
        args += ['--server-name', server_name]
    with start(site, *args) as s:
        data = get_json(s, '/secure', https_port=https)
        assert data['wsgi.url_scheme'] == 'https' and data['SERVER_PORT'] == str(https)
        assert get_json(s, '/plain')['wsgi.url_scheme'] == 'http'
        out, _ = s.output()
        assert 'https://localhost:%d/' % https in out
        if server_name:
            # Other host names are refused, as with mod_wsgi-express.
            assert s.get('/', host='other.example').status == 403


# -- setup-server and apachectl ---------------------------------------------------------------

def test_setup_server_writes_a_server_root_apachectl_controls(site):
    root = site.path('root-setup')
    p = run(['setup-server', 'app.wsgi', '--port', str(harness.free_port()), '--server-root', root] + RUN_AS,
            cwd=site.dir)
    assert p.returncode == 0, p.stderr
    assert 'Control script' in p.stdout
    port = int(re.search(r'http://localhost:(\d+)/', p.stdout).group(1))
    for name, mode in [('httpd.conf', 0o644), ('apachectl', 0o755), ('envvars', 0o644), ('handler.wsgi', 0o644)]:
        assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == mode, name
    eggs = os.stat(os.path.join(root, 'python-eggs'))
    assert (eggs.st_uid, eggs.st_gid) == (harness.WWW_UID, harness.WWW_GID)

    apachectl = os.path.join(root, 'apachectl')

    def ctl(*args):
        return subprocess.run([apachectl] + list(args), env=express_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=60)

    def answer():
        try:
            r = harness.Response(harness.raw_request(port, harness.build_request('GET', '/', port=port), timeout=5))
            return r.json() if r.status == 200 else None
        except (OSError, harness.ApacheError):
            return None

    def parent():
        try:
            with open(os.path.join(root, 'httpd.pid')) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    p = ctl('configtest')
    assert p.returncode == 0 and 'Syntax OK' in p.stdout, p.stdout
    p = ctl()
    assert p.returncode == 2 and 'usage' in p.stdout
    pids = set()
    try:
        assert ctl('start').returncode == 0
        first = until(answer)
        assert first, open(os.path.join(root, 'error_log')).read()
        apache = parent()
        pids.update([apache] + [int(x) for x in daemon_util.wait_for(lambda: descendants(apache))])
        for action in ('graceful', 'restart'):
            assert ctl(action).returncode == 0
            # A new generation of daemons answers; Apache's parent stays.
            later = until(lambda: (lambda d: d if d and d['pid'] != first['pid'] else None)(answer()))
            assert later, (action, open(os.path.join(root, 'error_log')).read()[-3000:])
            assert parent() == apache
            pids.update(descendants(apache))
            first = later
    finally:
        assert ctl('stop').returncode == 0
    left = until(lambda: not [p for p in pids if daemon_util.alive(p)] and not daemon_util.processes_using(root),
                 timeout=20)
    assert left, daemon_util.describe_pids([p for p in pids if daemon_util.alive(p)])


def test_every_supported_option_passes_configtest(site):
    """Setup with (nearly) every option we support; Apache must accept it all."""
    cert, key = site.path('cert.pem'), site.path('key.pem')
    if not os.path.exists(key):
        harness.self_signed_cert(cert, key)
    include = site.write('extra.conf', '# included\n')
    script = site.write('access.wsgi', 'def allow_access(environ, host):\n    return True\n')
    root = site.path('root-all')
    # An existing directory of the user's keeps its permissions.
    docroot = site.path('docroot')
    os.mkdir(docroot, 0o751)
    os.chmod(docroot, 0o751)
    args = ['setup-server', 'app.wsgi', '--server-root', root, '--port', str(harness.free_port())] + RUN_AS + [
        '--host', '127.0.0.1', '--server-name', 'www.example.test', '--server-alias', 'alt.example.test',
        '--allow-localhost', '--https-port', str(harness.free_port()), '--ssl-certificate-file', cert,
        '--ssl-certificate-key-file', key, '--ssl-ca-certificate-file', cert, '--ssl-verify-client', '/private',
        '--ssl-certificate-chain-file', cert, '--ssl-environment', '--https-only', '--hsts-policy', 'max-age=60',
        '--http2', '--processes', '2', '--threads', '3', '--max-clients', '40', '--initial-workers', '0.5',
        '--minimum-spare-workers', '0.2', '--maximum-spare-workers', '0.8', '--limit-request-body', '1000',
        '--maximum-requests', '100', '--restart-interval', '600', '--inactivity-timeout', '60',
        '--ignore-activity', '/health', '--request-timeout', '30', '--queue-timeout', '10',
        '--header-timeout', '5', '--body-max-timeout', '60', '--keep-alive-timeout', '0',
        '--map-head-to-get', 'off', '--chunked-request', '--error-override', '--trust-proxy-header',
        'X-Forwarded-For', '--trust-proxy', '10.0.0.0/8', '--compress-responses', '--enable-sendfile',
        '--url-alias', '/static', site.path('static'), '--url-alias', '/robots.txt', site.path('htdocs', 'robots.txt'),
        '--document-root', docroot, '--directory-index', 'index.html', '--directory-listing',
        '--allow-override', 'FileInfo', '--error-document', '404', '/missing.html', '--with-cgi',
        '--proxy-mount-point', '/api', 'http://127.0.0.1:9/', '--proxy-virtual-host', 'proxied.example.test',
        'http://127.0.0.1:9/', '--proxy-timeout', '30', '--host-access-script', script,
        '--auth-user-script', script, '--auth-type', 'Digest', '--auth-group-script', script,
        '--auth-group', 'staff', '--server-metrics', '--server-status', '--telemetry-service',
        'unix:/tmp/telemetry.sock', '--slow-requests', '5', '--access-log', '--access-log-format', '%h %>s',
        '--error-log-format', '[%t] %M', '--rotate-logs', '--startup-log', '--setenv', 'MY_KEY', 'my value',
        '--passenv', 'HOME', '--python-path', site.dir, '--python-warnings', 'ignore', '--locale', 'C.UTF-8',
        '--include-file', include, '--application-group', 'site', '--process-group', 'site-daemons',
        '--mount-point', '/app', '--orphan-interpreter', '--switch-interval', '0.01',
        '--socket-prefix', site.path('sockets')]
    os.makedirs(site.path('sockets'), exist_ok=True)
    p = run(args, cwd=site.dir)
    assert p.returncode == 0, p.stderr
    c = subprocess.run([os.path.join(root, 'apachectl'), 'configtest'], env=express_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert c.returncode == 0 and 'Syntax OK' in c.stdout, c.stdout
    assert stat.S_IMODE(os.stat(docroot).st_mode) == 0o751
    conf = open(os.path.join(root, 'httpd.conf')).read()
    for line in ['WSGIDaemonProcess "site-daemons"', 'processes=2', 'threads=3', 'maximum-requests=100',
                 'KeepAlive Off', 'ServerAlias alt.example.test', 'ServerName example.test',
                 'WSGIScriptAlias "/app"', 'application-group="site"', 'LimitRequestBody 1000',
                 'RequestReadTimeout header=5-30,MinRate=500 body=15-60,MinRate=500', 'SetEnv "MY_KEY" "my value"',
                 'Include "%s"' % include, 'Listen 127.0.0.1:']:
        assert line in conf, line


# -- module commands ------------------------------------------------------------------------

def test_module_config_prints_the_lines_for_an_existing_apache(site):
    p = run(['module-config'])
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ['LoadModule wsgi_module "%s"' % harness.module_path(), 'WSGIPythonHome "/usr"']
    venv = site.path('venv')
    subprocess.run([harness.SYSTEM_PYTHON, '-m', 'venv', '--without-pip', venv], check=True)
    p = run(['module-config', '--python-home', venv])
    assert p.stdout.splitlines()[1] == 'WSGIPythonHome "%s"' % venv
    p = run(['module-location'])
    assert p.stdout.strip() == harness.module_path()


def test_install_module_copies_the_module(site):
    target = site.path('modules')
    os.makedirs(target)
    p = run(['install-module', '--modules-directory', target])
    assert p.returncode == 0, p.stderr
    installed = os.path.join(target, 'mod_wsgi_rs.so')
    with open(installed, 'rb') as a, open(harness.module_path(), 'rb') as b:
        assert a.read() == b.read()
    assert stat.S_IMODE(os.stat(installed).st_mode) == 0o644
    assert p.stdout.splitlines()[0] == 'LoadModule wsgi_module "%s"' % installed
    # The printed lines load it into Apache.
    conf = p.stdout + '\nWSGIScriptAlias / {apps}/environ.wsgi\n'
    with harness.Apache('event', conf, load_wsgi=False, name='installed') as a:
        assert a.get('/').status == 200


# -- usage errors -----------------------------------------------------------------------------

@pytest.mark.parametrize('args, needle', [
    (['--no-such-option'], "'--no-such-option'"),
    (['--port', 'eighty'], "'eighty' for '--port <NUMBER>'"),
    (['--port', '70000'], "'70000' for '--port <NUMBER>'"),
    (['--threads', '0'], "'0' for '--threads <NUMBER>'"),
    (['--initial-workers', '1.5'], "'1.5' for '--initial-workers <NUMBER>'"),
    (['--server-mpm', 'winnt'], "'winnt' for '--server-mpm <NAME>'"),
    (['--application-type', 'jar'], "'jar' for '--application-type"),
    (['--add-handler', '.x', 'x.wsgi'], '--add-handler is not supported by mod_wsgi-rs'),
    (['--debug-mode'], '--debug-mode is not supported by mod_wsgi-rs'),
    (['--ssl-certificate-file', 'c.pem'], '--https-port must be given with the SSL certificate options'),
    (['--https-port', '8443'], '--https-port needs --ssl-certificate-file'),
    (['--slow-requests', '2'], '--slow-requests needs --telemetry-service'),
    (['--telemetry-service', 'udp:host:9'], 'only unix:PATH targets'),
    (['--python-home', '/no/such/venv'], '--python-home /no/such/venv: no such directory'),
    (['--user', 'no-such-user-here'], '--user no-such-user-here: there is no such user'),
    (['--working-directory', '/no/such/dir'], '--working-directory /no/such/dir: no such directory'),
], ids=lambda v: v if isinstance(v, str) else ' '.join(v))
def test_bad_options_are_usage_errors_naming_them(site, args, needle):
    p = run(['setup-server', 'app.wsgi', '--server-root', site.path('root-bad')] + RUN_AS + args, cwd=site.dir)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert needle in p.stderr, p.stderr
    assert "try '--help'" in p.stderr, p.stderr
    assert not os.path.exists(site.path('root-bad'))


def test_root_needs_user_and_group(site):
    p = run(['setup-server', 'app.wsgi', '--server-root', site.path('root-root')], cwd=site.dir)
    assert p.returncode == 2
    assert 'running as root, mod_wsgi-express needs --user and --group' in p.stderr, p.stderr
    p = run(['setup-server', 'app.wsgi', '--server-root', site.path('root-root'), '--user', 'root', '--group', 'root'],
            cwd=site.dir)
    assert p.returncode == 2 and 'needs --user and --group' in p.stderr


def test_a_script_the_server_cannot_read_is_reported(site):
    private = site.path('private')
    os.makedirs(private, mode=0o700)
    site.write('private/app.wsgi', APP)
    p = run(['setup-server', 'private/app.wsgi', '--server-root', site.path('root-private')] + RUN_AS, cwd=site.dir)
    assert p.returncode == 0
    assert 'not readable by www-data' in p.stderr and private in p.stderr, p.stderr


def test_a_venv_of_another_python_is_refused(site):
    venv = site.path('venv-other')
    os.makedirs(venv)
    site.write('venv-other/pyvenv.cfg', 'home = /usr/bin\nversion = 3.8.10\n')
    p = run(['setup-server', 'app.wsgi', '--python-home', venv] + RUN_AS, cwd=site.dir)
    assert p.returncode == 2
    assert 'Python 3.8 virtual environment' in p.stderr, p.stderr


def test_environment_variables_in_arguments_are_expanded(site):
    port = harness.free_port()
    env = dict(express_env(), MY_PORT=str(port))
    p = run(['setup-server', 'app.wsgi', '--port', '$MY_PORT', '--server-root', site.path('root-env')] + RUN_AS,
            cwd=site.dir, env=env)
    assert p.returncode == 0, p.stderr
    assert 'http://localhost:%d/' % port in p.stdout


def test_option_prefixes_work_as_with_mod_wsgi_express(site):
    p = run(['setup-server', 'app.wsgi', '--server-root', site.path('root-prefix'), '--processes', '3',
             '--thr', '2', '--log-lev', 'info'] + RUN_AS, cwd=site.dir)
    assert p.returncode == 0, p.stderr
    assert '6 requests at once (3 processes × 2 threads)' in p.stdout
    assert '(level info)' in p.stdout
    # As with optparse, a prefix of more than one option is refused, and
    # an option given again replaces its earlier value.
    p = run(['setup-server', 'app.wsgi', '--proc', '3'] + RUN_AS, cwd=site.dir)
    assert p.returncode == 2 and "'--proc'" in p.stderr
    p = run(['setup-server', 'app.wsgi', '--server-root', site.path('root-prefix'), '--threads', '2',
             '--threads', '4'] + RUN_AS, cwd=site.dir)
    assert p.returncode == 0 and '(1 process × 4 threads)' in p.stdout, p.stderr
