"""The servers ``mod_wsgi-express setup-server`` (mod_wsgi 6.1.1 from the
package index, see express_util) generates, run on our module with only
their ``LoadModule wsgi_module`` line changed (issue 7, part 4).

Each site is one generated server root: the options people use, each in
daemon mode and with ``--embedded-mode``, and a Flask application and a
Django project (admin login, a form POST, static files). All sites are
generated once, then started at once through their own ``apachectl``:
first with mod_wsgi's module (built in the venv) to record its answers to
each site's requests, then with ours. Ours must pass ``configtest``, start,
answer as each site expects, and give the same status, headers, body and
environ as mod_wsgi, except for the differences in ``PRESENCE_ONLY``
(docs/migrating.md explains them).

The first run builds the venv (see express_util); it needs the network,
and fails loudly rather than skipping when it cannot."""
import concurrent.futures
import json
import os
import re
import time
import urllib.parse

import pytest

import express_util as ex
import harness

# Environ keys whose values differ from run to run (or by design), so only
# their presence is compared: the client's port, timestamps, ids, process
# and thread numbers, Django's CSRF cookie, and wsgi.input/wsgi.errors,
# which are objects of our adapter's own classes.
PRESENCE_ONLY = {
    'REMOTE_PORT', 'HTTP_COOKIE', 'CSRF_COOKIE',
    'mod_wsgi.request_start', 'mod_wsgi.queue_start', 'mod_wsgi.daemon_start',
    'mod_wsgi.application_start', 'mod_wsgi.request_id', 'mod_wsgi.connection_id',
    'mod_wsgi.server_pid', 'mod_wsgi.thread_id', 'wsgi.input', 'wsgi.errors',
    # The mod_wsgi release whose behaviour we follow, where mod_wsgi has its own.
    'mod_wsgi.version',
}

FORM = {'Content-Type': 'application/x-www-form-urlencoded'}


def wsgi_app_requests(site, server):
    """The requests to the reporting app of express_util.APP."""
    requests = [
        ('GET', '/a/b?x=1'),
        ('GET', '/'),
        ('GET', '/caf%C3%A9/%E9?q=%20'),
        ('POST', '/form', FORM, b'a=1&b=%C3%A9'),
        ('HEAD', '/a'),
    ]
    if site.variant == 'url-alias':
        requests.append(('GET', '/static/hello.txt'))
    answers = [(' '.join(r[:2]), server.request(*r)) for r in requests]
    if site.variant == 'https':
        answers.append(('https GET /s?y=2', server.request('GET', '/s?y=2', https=True)))
    return answers


def flask_requests(site, server):
    return [(' '.join(r[:2]), server.request(*r)) for r in [
        ('GET', '/env?x=1'),
        ('GET', '/'),
        ('POST', '/form', FORM, b'name=Ann'),
        ('GET', '/hello/Ann'),
        ('GET', '/static/style.css'),
    ]]


def cookies(response, jar=None):
    jar = dict(jar or {})
    for value in response.header_all('Set-Cookie'):
        name, _, rest = value.partition('=')
        jar[name.strip()] = rest.split(';', 1)[0]
    return jar


def cookie_header(jar):
    return '; '.join('%s=%s' % item for item in sorted(jar.items()))


def csrf_token(response):
    m = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.body)
    assert m, response.raw[:3000]
    return m.group(1).decode()


def django_requests(site, server):
    """The environ; a form POST with its CSRF token; the admin's login and
    its index page with the session; a static file Apache serves."""
    answers = [('GET /env/?x=1', server.request('GET', '/env/?x=1'))]
    page = server.request('GET', '/form/')
    jar = cookies(page)
    body = urllib.parse.urlencode({'csrfmiddlewaretoken': csrf_token(page), 'name': 'Bea'}).encode()
    posted = server.request('POST', '/form/', dict(FORM, Cookie=cookie_header(jar)), body)
    answers += [('GET /form/', page), ('POST /form/', posted),
                ('GET /hello/Bea/', server.request('GET', '/hello/Bea/'))]
    login_page = server.request('GET', '/admin/login/?next=/admin/')
    jar = cookies(login_page)
    user, password = ex.DJANGO_ADMIN
    body = urllib.parse.urlencode({'csrfmiddlewaretoken': csrf_token(login_page), 'username': user,
                                   'password': password, 'next': '/admin/'}).encode()
    login = server.request('POST', '/admin/login/?next=/admin/', dict(FORM, Cookie=cookie_header(jar)), body)
    jar = cookies(login, jar)
    admin = server.request('GET', '/admin/', {'Cookie': cookie_header(jar)})
    answers += [('GET /admin/login/', login_page), ('POST /admin/login/', login), ('GET /admin/', admin),
                ('GET /static/admin/css/base.css', server.request('GET', '/static/admin/css/base.css'))]
    return answers


class Site:
    """One generated server root and what each module answered there."""

    def __init__(self, kind, variant, mode, extra_args, requests, files=ex.FILES, prepare=None,
                 ready_path='/'):
        self.kind, self.variant, self.mode = kind, variant, mode
        self.id = '%s-%s' % (variant, mode) if kind == 'app' else '%s-%s' % (kind, mode)
        self.extra_args, self.requests, self.files, self.prepare = extra_args, requests, files, prepare
        self.ready_path = ready_path
        self.generated = self.server = None
        self.configtest = {}
        self.answers = {}
        self.errors = {}

    def generate(self, venv):
        prepare = self.prepare and (lambda base: self.prepare(venv, base))
        self.generated = ex.Generated(venv, ex.MODES[self.mode], self.extra_args, self.files, prepare)
        self.server = ex.Server(self.generated, foreground=self.variant == 'log-to-terminal',
                                ready_path=self.ready_path)

    def run(self, module, so):
        """configtest, start, send the requests and keep the answers (or
        what failed) under ``module``; ours is left running."""
        try:
            self.generated.use_module(so)
            self.configtest[module] = self.generated.configtest()
            self.server.start()
            self.answers[module] = self.requests(self, self.server)
        except Exception as e:  # noqa: BLE001 - reported by the tests of this site
            self.errors[module] = '%s: %s\n%s' % (type(e).__name__, e, self.server.describe())
        if module == 'mod_wsgi':
            self.server.stop()

    def answered(self, module):
        assert module not in self.errors, '%s could not serve %s:\n%s' % (module, self.id, self.errors[module])
        return self.answers[module]

    def cleanup(self):
        if self.server is not None:
            self.server.stop()
        if self.generated is not None:
            self.generated.cleanup()


def all_sites():
    sites = [Site('app', variant, mode, args, wsgi_app_requests)
             for variant, args in ex.VARIANTS.items() for mode in ex.MODES]
    for mode in ex.MODES:
        sites.append(Site('flask', 'flask', mode,
                          ['--application-type', 'module', '--entry-point', 'flaskapp',
                           '--callable-object', 'app'],
                          flask_requests, files=ex.FLASK_FILES))
        sites.append(Site('django', 'django', mode,
                          ['--application-type', 'module', '--entry-point', 'mysite.wsgi',
                           '--url-alias', '/static', '{base}/collected'],
                          django_requests, files={}, prepare=ex.make_django_project,
                          ready_path='/hello/ready/'))
    return sites


SITES = all_sites()


def in_parallel(function, sites):
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        for future in [pool.submit(function, site) for site in sites]:
            future.result()


@pytest.fixture(scope='module')
def venv():
    try:
        return ex.ensure_venv()
    except ex.Unavailable as e:
        pytest.fail('cannot install %s from the package index: %s' % (', '.join(ex.REQUIREMENTS), e))


@pytest.fixture(scope='module')
def sites(venv):
    """Every site, run with mod_wsgi's module, then left running with ours."""
    mod_wsgi_so = ex.mod_wsgi_module(venv)
    try:
        in_parallel(lambda site: site.generate(venv), SITES)
        in_parallel(lambda site: site.run('mod_wsgi', mod_wsgi_so), SITES)
        in_parallel(lambda site: site.run('ours', harness.module_path()), SITES)
        yield {site.id: site for site in SITES}
    finally:
        in_parallel(Site.cleanup, SITES)


@pytest.fixture(params=[s.id for s in SITES])
def site(sites, request):
    return sites[request.param]


def app_sites(kind='app', variant=None, mode=None):
    return [s.id for s in SITES
            if s.kind == kind and variant in (None, s.variant) and mode in (None, s.mode)]


def test_configtest(site):
    # mod_wsgi's own module accepts what express generated, and so does ours.
    for module in ('mod_wsgi', 'ours'):
        rc, out = site.configtest.get(module, (None, site.errors.get(module)))
        assert rc == 0 and 'Syntax OK' in out, (module, out)


def comparable_headers(response, leave_out=()):
    """The headers, sorted, without Date and Expires (times of the response)
    or ``leave_out``, and with cookie values and expiry times masked (they
    are new on every response)."""
    headers = []
    for name, value in response.headers:
        name = name.lower()
        if name in ('date', 'expires') or name in leave_out:
            continue
        if name == 'set-cookie':
            value = re.sub(r'^([^=]*)=[^;]*', r'\1=*', value)
            value = re.sub(r'(?i)expires=[^;]*', 'expires=*', value)
        headers.append((name, value))
    return sorted(headers)


def environ_of(response):
    if 'json' not in (response.header('Content-Type') or '') or response.method == 'HEAD':
        return None
    return json.loads(response.body).get('environ')


def compare_environ(theirs, ours):
    """The differences between two environs, but for PRESENCE_ONLY values."""
    keys = set(theirs) | set(ours)
    return {k: (theirs.get(k, '<absent>'), ours.get(k, '<absent>')) for k in sorted(keys)
            if (k in theirs) != (k in ours) or (k not in PRESENCE_ONLY and theirs[k] != ours[k])}


def masked_body(response):
    """The body, with Django's per-response CSRF tokens masked."""
    return re.sub(rb'(name="csrfmiddlewaretoken" value=")[^"]+', rb'\1*', response.body)


def test_same_answers_as_mod_wsgi(site):
    theirs = dict(site.answered('mod_wsgi'))
    ours = site.answered('ours')
    assert [name for name, _ in ours] == list(theirs)
    for name, response in ours:
        expected = theirs[name]
        environ = environ_of(response)
        # An environ report's length varies with its values (pids, ports).
        length = {'content-length'} if 'json' in (response.header('Content-Type') or '') else set()
        assert (response.status, comparable_headers(response, length)) == (expected.status, comparable_headers(expected, length)), name
        if environ is None:
            assert masked_body(response) == masked_body(expected), name
        else:
            assert compare_environ(environ_of(expected), environ) == {}, name


def answers(site):
    return dict(site.answered('ours'))


@pytest.mark.parametrize('site_id', app_sites())
def test_app_serves(sites, site_id):
    site = sites[site_id]
    got = answers(site)
    environ = json.loads(got['GET /a/b?x=1'].body)['environ']
    assert (environ['SCRIPT_NAME'], environ['PATH_INFO'], environ['QUERY_STRING']) == ('', '/a/b', 'x=1')
    assert environ['mod_wsgi.handler_script'] == os.path.join(site.generated.root, 'handler.wsgi')
    assert environ['mod_wsgi.request_handler'] == 'wsgi-handler'
    assert environ['mod_wsgi.callable_object'] == 'handle_request'
    # The file the request maps to, which need not exist.
    assert environ['SCRIPT_FILENAME'] == os.path.join(site.generated.root, 'htdocs', 'a')
    assert environ['mod_wsgi.process_group'] == ('' if site.mode == 'embedded' else 'localhost:%d' % site.generated.port)
    assert json.loads(got['GET /'].body)['environ']['PATH_INFO'] == '/'
    latin1 = json.loads(got['GET /caf%C3%A9/%E9?q=%20'].body)['environ']
    assert latin1['PATH_INFO'] == '/caf\xc3\xa9/\xe9'
    posted = json.loads(got['POST /form'].body)
    assert posted['body'] == 'a=1&b=%C3%A9' and posted['environ']['CONTENT_TYPE'] == FORM['Content-Type']
    assert got['HEAD /a'].status == 200 and got['HEAD /a'].body == b''


@pytest.mark.parametrize('site_id', app_sites(variant='url-alias'))
def test_url_alias_serves_static_files(sites, site_id):
    static = answers(sites[site_id])['GET /static/hello.txt']
    assert (static.status, static.body) == (200, b'static\n')


@pytest.mark.parametrize('site_id', app_sites(variant='https'))
def test_https(sites, site_id):
    environ = json.loads(answers(sites[site_id])['https GET /s?y=2'].body)['environ']
    assert environ['wsgi.url_scheme'] == 'https' and 'HTTPS' not in environ
    assert environ['SERVER_PORT'] == str(sites[site_id].generated.https_port)


@pytest.mark.parametrize('site_id', app_sites(variant='processes-threads'))
def test_processes_and_threads(sites, site_id):
    environ = json.loads(answers(sites[site_id])['GET /a/b?x=1'].body)['environ']
    assert environ['wsgi.multithread'] is True and environ['wsgi.multiprocess'] is True


@pytest.mark.parametrize('site_id', app_sites(variant='log-to-terminal'))
def test_log_to_terminal(sites, site_id):
    # The app's stderr reaches the terminal apachectl ran in.
    out = sites[site_id].server.output()
    assert 'express app served GET /a/b?x=1' in out, out[-3000:]


@pytest.mark.parametrize('site_id', app_sites(kind='flask'))
def test_flask(sites, site_id):
    got = answers(sites[site_id])
    assert json.loads(got['GET /env?x=1'].body)['environ']['PATH_INFO'] == '/env'
    assert got['POST /form'].status == 303
    assert got['POST /form'].header('Location').endswith('/hello/Ann')
    assert got['GET /hello/Ann'].body == b'Hello, Ann!'
    # Flask sends its static files through wsgi.file_wrapper.
    assert got['GET /static/style.css'].body == ex.FLASK_FILES['static/style.css']


@pytest.mark.parametrize('site_id', app_sites(kind='django'))
def test_django(sites, site_id):
    got = answers(sites[site_id])
    assert json.loads(got['GET /env/?x=1'].body)['environ']['QUERY_STRING'] == 'x=1'
    assert got['POST /form/'].status == 302
    assert got['POST /form/'].header('Location') == '/hello/Bea/'
    assert got['GET /hello/Bea/'].body == b'Hello, Bea!'
    login = got['POST /admin/login/']
    assert login.status == 302 and login.header('Location') == '/admin/', login.raw[:3000]
    assert b'Site administration' in got['GET /admin/'].body
    static = got['GET /static/admin/css/base.css']
    assert static.status == 200 and static.header('Content-Type').startswith('text/css')


def version_served(server, path='/'):
    report = ex.parse_json(server.request('GET', path))
    return report['version'], report['helper']


def rewrite(path, old, new):
    with open(path) as f:
        text = f.read()
    assert old in text
    with open(path, 'w') as f:
        f.write(text.replace(old, new))
    # A later modification time, whatever the file system's resolution.
    later = time.time() + 2
    os.utime(path, (later, later))


def wait_for_version(server, expected, timeout=20.0):
    deadline = time.time() + timeout
    while True:
        got = version_served(server)
        if got == expected or time.time() > deadline:
            return got
        time.sleep(0.2)


# The tests below change the sites' files, so they come last.

@pytest.mark.parametrize('site_id', app_sites(variant='default', mode='daemon'))
def test_reload_required_reloads_the_app(sites, site_id):
    # express's handler.wsgi defines reload_required(): called with the
    # request's file before each request, it reports the app script's
    # change, and the daemon restarts to load it. A module the app imports
    # is reloaded with it, but its change alone does not count.
    site = sites[site_id]
    server = site.server
    assert version_served(server) == ('one', 'first')
    rewrite(os.path.join(site.generated.base, 'helper.py'), "'first'", "'second'")
    assert version_served(server) == ('one', 'first')
    rewrite(os.path.join(site.generated.base, 'app.wsgi'), "VERSION = 'one'", "VERSION = 'two'")
    assert wait_for_version(server, ('two', 'second')) == ('two', 'second')


@pytest.mark.parametrize('site_id', app_sites(variant='reload-on-changes', mode='daemon'))
def test_reload_on_changes_restarts_for_any_module(sites, site_id):
    # --reload-on-changes: express's monitor thread sees any loaded
    # module's file change and restarts the daemon (it sends SIGINT to it).
    site = sites[site_id]
    assert version_served(site.server) == ('one', 'first')
    rewrite(os.path.join(site.generated.base, 'helper.py'), "'first'", "'second'")
    assert wait_for_version(site.server, ('one', 'second')) == ('one', 'second')
