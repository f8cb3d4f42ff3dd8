"""A Flask application and a Django project, installed from the package
index into a virtualenv made with the system Python, served by our
``mod_wsgi-express start-server --python-home VENV``: a form POST, a
redirect, a file upload and static files served by Apache. Also an
application loaded from a Paste Deploy configuration.

The first run downloads Flask and Django (see express_util.ensure_venv);
it fails loudly, rather than skipping, when it cannot."""
import hashlib
import os
import re
import subprocess
import tempfile
import urllib.parse

import pytest

import harness
import express_util
from launcher_util import RUN_AS, Launched, Site

FLASK_APP = '''import hashlib

from flask import Flask, jsonify, redirect, request, url_for

# Static files are Apache's job here (--url-alias), not Flask's.
app = Flask(__name__, static_folder=None)


@app.get('/')
def index():
    return '<form method="post" action="/form"><input name="name"></form>'


@app.post('/form')
def form():
    name = request.form.get('name', '')
    if not name:
        return 'name is required', 400
    return redirect(url_for('hello', name=name), code=303)


@app.get('/hello/<name>')
def hello(name):
    return 'Hello, %s!' % name


@app.post('/upload')
def upload():
    upload = request.files['file']
    data = upload.read()
    return jsonify(filename=upload.filename, size=len(data), note=request.form.get('note'),
                   sha256=hashlib.sha256(data).hexdigest())


application = app
'''

DJANGO_SETTINGS = '''from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = 'only-for-this-test'
DEBUG = False
ALLOWED_HOSTS = ['localhost']
INSTALLED_APPS = ['django.contrib.staticfiles']
MIDDLEWARE = ['django.middleware.common.CommonMiddleware',
              'django.middleware.csrf.CsrfViewMiddleware']
ROOT_URLCONF = 'djsite.urls'
TEMPLATES = [{'BACKEND': 'django.template.backends.django.DjangoTemplates'}]
WSGI_APPLICATION = 'djsite.wsgi.application'
DATABASES = {}
USE_TZ = True
STATIC_URL = '/static/'
STATIC_ROOT = BASE_DIR / 'collected'
STATICFILES_DIRS = [BASE_DIR / 'assets']
# Larger uploads are spooled to a temporary file.
FILE_UPLOAD_MAX_MEMORY_SIZE = 65536
'''

DJANGO_VIEWS = '''import hashlib

from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect
from django.template import engines

FORM = engines['django'].from_string(
    '<form method="post">{% csrf_token %}<input name="name"></form>')


def form(request):
    if request.method == 'POST':
        name = request.POST.get('name', '')
        if not name:
            return HttpResponseBadRequest('name is required')
        return redirect('hello', name=name)
    return HttpResponse(FORM.render({}, request))


def hello(request, name):
    return HttpResponse('Hello, %s!' % name)


def upload(request):
    upload = request.FILES['file']
    data = upload.read()
    return JsonResponse({'filename': upload.name, 'size': len(data), 'note': request.POST.get('note'),
                         'sha256': hashlib.sha256(data).hexdigest()})
'''

DJANGO_URLS = '''from django.urls import path

from . import views

urlpatterns = [
    path('form/', views.form),
    path('hello/<str:name>/', views.hello, name='hello'),
    path('upload/', views.upload),
]
'''

DJANGO_WSGI = '''import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'djsite.settings')
application = get_wsgi_application()
'''

CSS = 'body { color: #333; }\n'

PASTE_CONFIG = '''[app:main]
use = call:pasteapp:make_app
greeting = configured by Paste Deploy
'''

PASTE_APP = '''def make_app(global_conf, greeting):
    def app(environ, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [greeting.encode()]
    return app
'''


@pytest.fixture(scope='module')
def venv():
    try:
        return express_util.ensure_venv()
    except express_util.Unavailable as e:
        pytest.fail('cannot install %s from the package index: %s' % (' '.join(express_util.REQUIREMENTS), e))


def serve(site, venv, *args, ready_path='/static/site.css'):
    port = harness.free_port()
    root = tempfile.mkdtemp(prefix='root-', dir=site.dir)
    argv = list(args) + ['--python-home', venv, '--port', str(port), '--server-root', root] + RUN_AS
    return Launched(argv, root, port, cwd=site.dir, ready_path=ready_path)


@pytest.fixture(scope='module')
def flask_server(venv):
    with Site({'app.wsgi': FLASK_APP, 'static/site.css': CSS}, name='flask') as site, \
            serve(site, venv, 'app.wsgi', '--url-alias', '/static', site.path('static')) as server:
        yield server


@pytest.fixture(scope='module')
def django_server(venv):
    with Site({'djsite/__init__.py': '', 'djsite/settings.py': DJANGO_SETTINGS,
               'djsite/views.py': DJANGO_VIEWS, 'djsite/urls.py': DJANGO_URLS,
               'djsite/wsgi.py': DJANGO_WSGI, 'assets/site.css': CSS}, name='django') as site:
        collect = subprocess.run([os.path.join(venv, 'bin', 'django-admin'), 'collectstatic', '--noinput',
                                  '--settings', 'djsite.settings', '--pythonpath', site.dir],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        assert collect.returncode == 0, collect.stdout
        for dirpath, _, filenames in os.walk(site.path('collected')):
            os.chmod(dirpath, 0o755)
            for name in filenames:
                os.chmod(os.path.join(dirpath, name), 0o644)
        with serve(site, venv, '--application-type', 'module', '--entry-point', 'djsite.wsgi',
                   '--working-directory', site.dir, '--url-alias', '/static', site.path('collected')) as server:
            yield server


def multipart(fields, files):
    """A multipart/form-data body: (content type, bytes)."""
    boundary = 'mwrs-boundary-7d93'
    parts = []
    for name, value in fields.items():
        parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                      % (boundary, name, value)).encode())
    for name, (filename, data) in files.items():
        parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                      'Content-Type: application/octet-stream\r\n\r\n' % (boundary, name, filename)).encode()
                     + data + b'\r\n')
    parts.append(('--%s--\r\n' % boundary).encode())
    return 'multipart/form-data; boundary=%s' % boundary, b''.join(parts)


def form_post(server, path, fields, cookie=None):
    headers = {'Content-Type': 'application/x-www-form-urlencoded'}
    if cookie:
        headers['Cookie'] = cookie
    return server.request('POST', path, headers=headers, body=urllib.parse.urlencode(fields).encode())


def check_upload(server, path, fields, cookie=None):
    data = os.urandom(300 * 1024)
    content_type, body = multipart(fields, {'file': ('data.bin', data)})
    headers = {'Content-Type': content_type}
    if cookie:
        headers['Cookie'] = cookie
    r = server.request('POST', path, headers=headers, body=body)
    assert r.status == 200, (r.status, r.body[:2000], server.describe())
    assert r.json() == {'filename': 'data.bin', 'size': len(data), 'note': 'a note',
                        'sha256': hashlib.sha256(data).hexdigest()}


def check_static(server):
    r = server.get('/static/site.css')
    assert (r.status, r.body) == (200, CSS.encode())
    assert r.header('Content-Type') == 'text/css'
    assert server.get('/static/missing.css').status == 404


# -- Flask ------------------------------------------------------------------------------------

def test_flask_form_post_redirects(flask_server):
    assert b'<form' in flask_server.get('/').body
    r = form_post(flask_server, '/form', {'name': 'World'})
    assert r.status == 303, (r.status, r.body)
    location = r.header('Location')
    assert location.endswith('/hello/World'), location
    r = flask_server.get(urllib.parse.urlsplit(location).path)
    assert (r.status, r.body) == (200, b'Hello, World!')
    assert form_post(flask_server, '/form', {}).status == 400


def test_flask_file_upload(flask_server):
    check_upload(flask_server, '/upload', {'note': 'a note'})


def test_flask_static_files_come_from_apache(flask_server):
    check_static(flask_server)


# -- Django -----------------------------------------------------------------------------------

def csrf(server):
    """The CSRF cookie and the form's token, from the form page."""
    r = server.get('/form/')
    assert r.status == 200, (r.status, r.body[:2000], server.describe())
    cookie = re.search(r'csrftoken=([^;]+)', r.header('Set-Cookie') or '').group(1)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', r.body).group(1).decode()
    return 'csrftoken=' + cookie, token


def test_django_form_post_redirects(django_server):
    cookie, token = csrf(django_server)
    r = form_post(django_server, '/form/', {'csrfmiddlewaretoken': token, 'name': 'World'}, cookie)
    assert r.status == 302, (r.status, r.body[:2000])
    assert r.header('Location') == '/hello/World/'
    r = django_server.get('/hello/World/')
    assert (r.status, r.body) == (200, b'Hello, World!')
    # Without the token, Django's CSRF protection refuses it.
    assert form_post(django_server, '/form/', {'name': 'World'}, cookie).status == 403


def test_django_file_upload(django_server):
    cookie, token = csrf(django_server)
    check_upload(django_server, '/upload/', {'csrfmiddlewaretoken': token, 'note': 'a note'}, cookie)


def test_django_static_files_come_from_apache(django_server):
    check_static(django_server)
    # Django itself (DEBUG off) serves no static files; the alias does.
    assert django_server.get('/hello/x/').status == 200


# -- Paste Deploy -----------------------------------------------------------------------------

def test_paste_deploy_application(venv):
    with Site({'config.ini': PASTE_CONFIG, 'pasteapp.py': PASTE_APP}, name='paste') as site, \
            serve(site, venv, 'config.ini', '--application-type', 'paste', ready_path='/') as server:
        r = server.get('/anything')
        assert (r.status, r.body) == (200, b'configured by Paste Deploy'), server.describe()
