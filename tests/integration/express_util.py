"""mod_wsgi-express from the package index, to check that the server configs
it generates work with our module when only their ``LoadModule wsgi_module``
line changes.

``ensure_venv()`` makes a virtualenv with ``/usr/bin/python3 -m venv`` and
pip-installs ``REQUIREMENTS`` into it: mod_wsgi 6.1.1 (pip compiles it
against apache2-dev), and the Flask and Django the framework tests serve
(the generated config's ``WSGIPythonHome`` is this venv, so they must be in
it), and Paste Deploy for our own launcher's tests. It is kept by
``harness.cached_venv`` (under ``$MWRS_VENV_CACHE``, default
/var/cache/mod_wsgi-rs), so only the first run downloads and builds it.

``Generated`` is one server root made by ``mod_wsgi-express setup-server``;
``Server`` starts it through its generated ``apachectl`` and stops it.

Run as a script to print, for each mode, every line of the generated config
that ``apachectl configtest`` refuses with our module::

    MOD_WSGI_RS_SO=target/release/libmod_wsgi_rs.so \\
        /usr/bin/python3 tests/integration/express_util.py
"""
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import daemon_util  # noqa: E402
import harness  # noqa: E402

MOD_WSGI_VERSION = '6.1.1'
REQUIREMENTS = ['mod_wsgi==%s' % MOD_WSGI_VERSION, 'flask==3.0.3', 'django==4.2.16', 'PasteDeploy==3.1.0']
SYSTEM_PYTHON = harness.SYSTEM_PYTHON

# The mode flags of `setup-server` each test run checks.
MODES = {'daemon': [], 'embedded': ['--embedded-mode']}

# The setup-server options people use (issue 7, part 4). '{base}' is the
# directory holding the app, its module form and a static directory;
# '{cert}' and '{key}' are a self-signed certificate made for the run.
VARIANTS = {
    'default': [],
    'url-alias': ['--url-alias', '/static', '{base}/static'],
    'reload-on-changes': ['--reload-on-changes'],
    'processes-threads': ['--processes', '3', '--threads', '4'],
    'request-timeout': ['--request-timeout', '30'],
    'log-to-terminal': ['--log-to-terminal'],
    'module-entry-point': ['--application-type', 'module', '--entry-point', 'appmod',
                           '--callable-object', 'app'],
    'https': ['--https-port', '{https_port}', '--ssl-certificate-file', '{cert}',
              '--ssl-certificate-key-file', '{key}', '--server-name', 'localhost'],
}

# What every application here reports its environ with: values that are
# not plain data by their type's name.
REPORT = b'''def plain(value):
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return '<%s>' % type(value).__name__
'''

# An application that reports what it was given: the environ, the request
# body, and markers the reload tests change (VERSION here, helper.VALUE in
# a module it imports).
APP = b'''import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helper
from report import plain

VERSION = 'one'



def application(environ, start_response):
    body = environ['wsgi.input'].read()
    print('express app served', environ['REQUEST_METHOD'], environ['REQUEST_URI'], file=sys.stderr)
    report = {'environ': {k: plain(v) for k, v in environ.items()},
              'body': body.decode('latin-1'), 'version': VERSION, 'helper': helper.VALUE}
    data = json.dumps(report, sort_keys=True).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(data))),
                              ('X-Express-App', VERSION)])
    return [data]
'''

FILES = {
    'app.wsgi': APP,
    'appmod.py': APP + b'\napp = application\n',
    'helper.py': b"VALUE = 'first'\n",
    'report.py': REPORT,
    'static/hello.txt': b'static\n',
}

# The Flask application the framework tests serve (`--application-type
# module --entry-point flaskapp`): its own static files (wsgi.file_wrapper),
# a form POST answered with a redirect, and its environ.
FLASK_FILES = {
    'flaskapp.py': b"""from flask import Flask, jsonify, redirect, request, url_for

from report import plain

app = Flask(__name__)



@app.get('/env')
def env():
    return jsonify(environ={k: plain(v) for k, v in request.environ.items()})


@app.get('/')
def index():
    return '<form method="post" action="/form"><input name="name"></form>'


@app.post('/form')
def form():
    return redirect(url_for('hello', name=request.form['name']), code=303)


@app.get('/hello/<name>')
def hello(name):
    return 'Hello, %s!' % name
""",
    'static/style.css': b'body { color: #123456; }\n' * 40,
    'report.py': REPORT,
}

# A Django project: the admin (its login), a form POST with CSRF, the
# environ (request.META), and static files collected for Apache to serve.
DJANGO_FILES = {
    'manage.py': b"""import os
import sys

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')
from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
""",
    'report.py': REPORT,
    'mysite/__init__.py': b'',
    'mysite/settings.py': b"""from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = 'only-for-these-tests'
DEBUG = False
ALLOWED_HOSTS = ['localhost']
INSTALLED_APPS = [
    'django.contrib.admin', 'django.contrib.auth', 'django.contrib.contenttypes',
    'django.contrib.sessions', 'django.contrib.messages', 'django.contrib.staticfiles',
]
MIDDLEWARE = [
    'django.middleware.security.SecurityMiddleware',
    'django.contrib.sessions.middleware.SessionMiddleware',
    'django.middleware.common.CommonMiddleware',
    'django.middleware.csrf.CsrfViewMiddleware',
    'django.contrib.auth.middleware.AuthenticationMiddleware',
    'django.contrib.messages.middleware.MessageMiddleware',
    'django.middleware.clickjacking.XFrameOptionsMiddleware',
]
ROOT_URLCONF = 'mysite.urls'
TEMPLATES = [{
    'BACKEND': 'django.template.backends.django.DjangoTemplates',
    'APP_DIRS': True,
    'OPTIONS': {'context_processors': [
        'django.template.context_processors.request',
        'django.contrib.auth.context_processors.auth',
        'django.contrib.messages.context_processors.messages',
    ]},
}]
WSGI_APPLICATION = 'mysite.wsgi.application'
DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3',
                         'NAME': BASE_DIR / 'data' / 'db.sqlite3'}}
USE_TZ = True
STATIC_URL = '/static/'
STATIC_ROOT = BASE_DIR / 'collected'
DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'
""",
    'mysite/urls.py': b"""from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path('admin/', admin.site.urls),
    path('env/', views.env),
    path('form/', views.form),
    path('hello/<str:name>/', views.hello, name='hello'),
]
""",
    'mysite/views.py': b"""from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template import engines
from report import plain

FORM = engines['django'].from_string(
    '<form method="post">{% csrf_token %}<input name="name"></form>')



def env(request):
    return JsonResponse({'environ': {k: plain(v) for k, v in request.META.items()}})


def form(request):
    if request.method == 'POST':
        return redirect('hello', name=request.POST['name'])
    return HttpResponse(FORM.render({}, request))


def hello(request, name):
    return HttpResponse('Hello, %s!' % name)
""",
    'mysite/wsgi.py': b"""import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')
application = get_wsgi_application()
""",
}

DJANGO_ADMIN = ('admin', 'not-a-real-password-42')


def make_django_project(venv, directory):
    """Writes the Django project into ``directory``, then migrates its
    SQLite database, creates the admin user and collects the static files.
    The database's directory is writable by www-data, as sessions need."""
    write_files(directory, DJANGO_FILES)
    data = os.path.join(directory, 'data')
    os.makedirs(data, exist_ok=True)
    python = os.path.join(venv, 'bin', 'python')
    env = dict(harness.APACHE_ENV, DJANGO_SUPERUSER_PASSWORD=DJANGO_ADMIN[1])
    for args in (['migrate', '--noinput'],
                 ['createsuperuser', '--noinput', '--username', DJANGO_ADMIN[0],
                  '--email', 'admin@example.test'],
                 ['collectstatic', '--noinput']):
        p = _run([python, 'manage.py'] + args, cwd=directory, env=env,
                 preexec_fn=lambda: os.umask(0o022))
        assert p.returncode == 0, p.stdout.decode('utf-8', 'replace')
    os.chmod(data, 0o777)
    os.chmod(os.path.join(data, 'db.sqlite3'), 0o666)


LOAD_MODULE = re.compile(r'^LoadModule\s+wsgi_module\s+.*$', re.M)
SYNTAX_ERROR = re.compile(r'Syntax error on line (\d+) of (\S+?):\n(.*)')


Unavailable = harness.VenvUnavailable


def ensure_venv():
    """The venv's directory, creating it on first use."""
    return harness.cached_venv('express', REQUIREMENTS)


def _run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=900, **kw)


def mod_wsgi_module(venv):
    """The path of the mod_wsgi module pip built in ``venv``."""
    p = _run([os.path.join(venv, 'bin', 'mod_wsgi-express'), 'module-location'])
    assert p.returncode == 0, p.stdout
    return p.stdout.decode().strip()


def write_files(base, files):
    """Writes ``{relative path: bytes}`` under ``base``, readable by www-data."""
    for name, data in files.items():
        path = os.path.join(base, name)
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with open(path, 'wb') as f:
            f.write(data)
        os.chmod(path, 0o644)


class Generated:
    """One server root made by ``mod_wsgi-express setup-server``, run in a
    new directory holding ``files`` (then given to ``prepare``, if any),
    with ``app.wsgi`` as the script unless the options name an entry point."""

    def __init__(self, venv, mode_args, extra_args=(), files=FILES, prepare=None):
        self.base = tempfile.mkdtemp(prefix='mwrs-express-', dir='/tmp')
        os.chmod(self.base, 0o755)
        write_files(self.base, files)
        if prepare is not None:
            prepare(self.base)
        self.root = os.path.join(self.base, 'root')
        self.conf = os.path.join(self.root, 'httpd.conf')
        self.apachectl = os.path.join(self.root, 'apachectl')
        self.port = harness.free_port()
        self.https_port = None
        places = {'{base}': self.base, '{cert}': os.path.join(self.base, 'cert.pem'),
                  '{key}': os.path.join(self.base, 'key.pem')}
        if '{https_port}' in extra_args:
            self.https_port = harness.free_port()
            places['{https_port}'] = str(self.https_port)
        if any('{cert}' in a for a in extra_args):
            harness.self_signed_cert(places['{cert}'], places['{key}'])
        extra_args = [places.get(a, a.replace('{base}', self.base)) for a in extra_args]
        # The script, unless the variant names a module instead.
        script = [] if '--entry-point' in extra_args else [os.path.join(self.base, 'app.wsgi')]
        cmd = [os.path.join(venv, 'bin', 'mod_wsgi-express'), 'setup-server'] + script + [
            '--server-root', self.root, '--port', str(self.port),
            '--user', 'www-data', '--group', 'www-data'] + list(mode_args) + extra_args
        p = _run(cmd, cwd=self.base, env=harness.APACHE_ENV)
        if p.returncode != 0:
            self.cleanup()
            raise AssertionError('setup-server failed:\n' + p.stdout.decode('utf-8', 'replace'))

    def read_conf(self):
        with open(self.conf) as f:
            return f.read()

    def write_conf(self, text):
        with open(self.conf, 'w') as f:
            f.write(text)

    def use_module(self, so):
        """Points the one ``LoadModule wsgi_module`` line at ``so``."""
        text = self.read_conf()
        lines = LOAD_MODULE.findall(text)
        assert len(lines) == 1, lines
        self.write_conf(LOAD_MODULE.sub(lambda _: "LoadModule wsgi_module '%s'" % so, text))

    def configtest(self):
        """(exit code, output) of the generated ``apachectl configtest``."""
        p = _run([self.apachectl, 'configtest'], cwd=self.base, env=harness.APACHE_ENV)
        out = p.stdout.decode('utf-8', 'replace')
        # The generated apachectl sets LANG/LC_ALL to a locale this host may lack.
        out = '\n'.join(l for l in out.splitlines() if 'setlocale' not in l)
        return p.returncode, out

    def failing_lines(self, limit=30):
        """Every config line configtest refuses: (line number, the directive
        as written, Apache's message). Each refused line is commented out in
        turn to find the next; the config is restored afterwards."""
        original = self.read_conf()
        failures = []
        try:
            for _ in range(limit):
                rc, out = self.configtest()
                if rc == 0:
                    return failures
                m = SYNTAX_ERROR.search(out)
                if not m or os.path.realpath(m.group(2)) != os.path.realpath(self.conf):
                    failures.append((None, None, out))
                    return failures
                lines = self.read_conf().split('\n')
                last = int(m.group(1)) - 1
                first = last
                # Apache reports a continued line by its last physical line.
                while first > 0 and lines[first - 1].endswith('\\'):
                    first -= 1
                text = ' '.join(l.rstrip('\\').strip() for l in lines[first:last + 1])
                failures.append((first + 1, text, m.group(3).strip()))
                for i in range(first, last + 1):
                    lines[i] = '#' + lines[i]
                self.write_conf('\n'.join(lines))
            raise AssertionError('more than %d failing lines: %r' % (limit, failures))
        finally:
            self.write_conf(original)

    def cleanup(self):
        if os.environ.get('MWRS_KEEP'):
            return
        shutil.rmtree(self.base, ignore_errors=True)


def descendants(pid):
    """Every live process below ``pid``."""
    children = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            parent = daemon_util.ppid(int(name))
            if parent is not None:
                children.setdefault(parent, []).append(int(name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if daemon_util.alive(child):
                found.append(child)
                todo.append(child)
    return found


class Server:
    """A generated server root run through its own ``apachectl``: ``start``
    as an init script would (Apache detaches), or with ``foreground`` as
    ``mod_wsgi-express start-server`` does (``apachectl start
    -DFOREGROUND``, so ``--log-to-terminal`` output reaches our file)."""

    def __init__(self, generated, foreground=False, ready_path='/'):
        self.g = generated
        self.foreground = foreground
        self.ready_path = ready_path
        self.output_path = os.path.join(generated.base, 'apachectl.out')
        self.process = None
        self.seen = set()

    def _apachectl(self, *args, **kw):
        with open(self.output_path, 'ab') as out:
            return subprocess.run([self.g.apachectl] + list(args), cwd=self.g.base,
                                  env=harness.APACHE_ENV, stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=out, **kw)

    def output(self):
        try:
            with open(self.output_path, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def error_log(self):
        try:
            with open(os.path.join(self.g.root, 'error_log'), errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def describe(self):
        return 'apachectl output:\n%s\nerror_log:\n%s' % (self.output()[-4000:],
                                                          self.error_log()[-4000:])

    def parent(self):
        try:
            with open(os.path.join(self.g.root, 'httpd.pid')) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def start(self, timeout=60.0):
        if self.foreground:
            out = open(self.output_path, 'ab')
            self.process = subprocess.Popen([self.g.apachectl, 'start', '-DFOREGROUND'],
                                            cwd=self.g.base, env=harness.APACHE_ENV,
                                            stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            out.close()
        else:
            p = self._apachectl('start', timeout=60)
            assert p.returncode == 0, self.describe()
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError('apachectl exited (%s)\n%s' % (self.process.returncode, self.describe()))
            try:
                response = self.request('GET', self.ready_path, timeout=10)
                if response.status < 500:
                    self.note_pids()
                    return self
                last = response
            except OSError as e:
                last = e
            time.sleep(0.1)
        self.stop()
        raise AssertionError('no answer on port %d (%r)\n%s' % (self.g.port, last, self.describe()))

    def note_pids(self):
        """Remembers every process of this server seen so far."""
        parent = self.parent()
        if parent is not None and daemon_util.alive(parent):
            self.seen.add(parent)
            self.seen.update(descendants(parent))

    def request(self, method, path, headers=None, body=None, https=False, host='localhost',
                timeout=15.0):
        """One request (``Connection: close``) to the HTTP port, or to the
        HTTPS one, naming ``host`` in the Host header and in TLS (SNI)."""
        port = self.g.https_port if https else self.g.port
        data = harness.build_request(method, path, headers, body, host=host, port=port)
        sock = socket.create_connection(('127.0.0.1', port), timeout=timeout)
        try:
            if https:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                sock = context.wrap_socket(sock, server_hostname=host)
            sock.sendall(data)
            return harness.Response(harness.recv_all(sock), method)
        finally:
            sock.close()

    def stop(self, timeout=30.0):
        """Stops the server with ``apachectl stop``; a process of it still
        alive after ``timeout`` is killed. Returns those."""
        self.note_pids()
        if self.parent() is not None:
            try:
                self._apachectl('stop', timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.time() + timeout
        left = []
        while time.time() < deadline:
            left = [p for p in self.seen if daemon_util.alive(p)]
            if not left:
                break
            time.sleep(0.05)
        for pid in left:
            daemon_util.kill(pid, signal.SIGKILL)
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.seen.clear()
        return left


def parse_json(response):
    assert response.status == 200, response.raw[:2000]
    return json.loads(response.body.decode('utf-8'))


@contextlib.contextmanager
def generated(venv, mode, so, extra_args=()):
    g = Generated(venv, MODES[mode], extra_args=extra_args)
    try:
        g.use_module(so)
        yield g
    finally:
        g.cleanup()


def report(so):
    venv = ensure_venv()
    for variant, extra_args in VARIANTS.items():
        for mode in MODES:
            with generated(venv, mode, so, extra_args) as g:
                failures = g.failing_lines()
                print('== %s, %s mode: %d failing line(s)' % (variant, mode, len(failures)))
                for line, text, message in failures:
                    print('line %s: %s\n    -> %s' % (line, text, message))


if __name__ == '__main__':
    report(harness.module_path())
