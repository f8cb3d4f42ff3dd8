"""chroot=: a daemon process group confined to a directory. The test builds
a small root file system (the Python standard library hard-linked in, an
application and a state directory) and checks, from inside the daemon,
that it runs there: its / is the directory, SCRIPT_FILENAME and
DOCUMENT_ROOT are given as the daemon sees them, and a script outside the
directory is refused with 500. Also what `apache2 -t` says of bad values."""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

import harness
import daemon_util as du


APP = '''import json
import os

# Preloaded (WSGIImportScript) when the daemon starts.
with open('/state/imported', 'w') as f:
    f.write(str(os.getpid()))


def application(environ, start_response):
    with open('/state/ran', 'w') as f:
        f.write(str(os.getpid()))
    data = {
        'pid': os.getpid(),
        'root': sorted(os.listdir('/')),
        'cwd': os.getcwd(),
        'file': __file__,
        'uid': os.getuid(),
        'SCRIPT_FILENAME': environ.get('SCRIPT_FILENAME'),
        'DOCUMENT_ROOT': environ.get('DOCUMENT_ROOT'),
    }
    body = json.dumps(data).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]
'''


def python_lib():
    """The standard library of the Python the module embeds."""
    out = subprocess.run([harness.PYTHON, '-c', 'import os; print(os.path.dirname(os.__file__))'],
                         stdout=subprocess.PIPE, check=True, text=True, env=harness.APACHE_ENV)
    return out.stdout.strip()


@pytest.fixture(scope='module')
def jail():
    """A directory a daemon can run Python in: the standard library at the
    same path (hard links, so no copying), the application, a state
    directory its user may write to, and a document root."""
    root = tempfile.mkdtemp(prefix='mwrs-jail-', dir='/tmp')
    try:
        os.chmod(root, 0o755)
        lib = python_lib()
        os.makedirs(os.path.dirname(root + lib), mode=0o755)
        subprocess.run(['cp', '-al', lib, root + lib], check=True)
        for d, mode in (('app', 0o755), ('state', 0o777), ('htdocs', 0o755)):
            os.mkdir(os.path.join(root, d))
            os.chmod(os.path.join(root, d), mode)
        with open(os.path.join(root, 'app', 'app.wsgi'), 'w') as f:
            f.write(APP)
        os.chmod(os.path.join(root, 'app', 'app.wsgi'), 0o644)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


CONFIG = r"""
WSGIDaemonProcess jailed threads=2 display-name=%{{GROUP}} chroot={jail}/
WSGIImportScript {jail}/app/app.wsgi process-group=jailed application-group=%{{GLOBAL}}
WSGIScriptAlias /jailed {jail}/app/app.wsgi process-group=jailed
WSGIScriptAlias /outside {{apps}}/probe.wsgi process-group=jailed
<VirtualHost *:{{port}}>
    ServerName 127.0.0.1
</VirtualHost>
<VirtualHost *:{{port}}>
    ServerName docroot.test
    DocumentRoot {jail}/htdocs
</VirtualHost>
"""


@pytest.fixture(scope='module')
def server(jail):
    with harness.Apache('event', CONFIG.format(jail=jail), name='dchroot') as a:
        du.wait_daemons(a, 'jailed', 1)
        yield a


def test_daemon_runs_inside_its_chroot(server, jail):
    data = du.get_json(server, '/jailed')
    assert data['pid'] in du.daemon_pids(server, 'jailed')
    # Its / is the jail; the test left a file there.
    assert data['root'] == sorted(os.listdir(jail)), data['root']
    assert data['cwd'] == '/'
    assert data['uid'] == harness.WWW_UID
    assert data['file'] == '/app/app.wsgi'
    assert data['SCRIPT_FILENAME'] == '/app/app.wsgi'
    # The server's document root is outside the jail: left out.
    assert data['DOCUMENT_ROOT'] is None
    # The script was preloaded at start: WSGIImportScript's path, under
    # the jail, is taken as the daemon sees it.
    for name in ('imported', 'ran'):
        with open(os.path.join(jail, 'state', name)) as f:
            assert int(f.read()) == data['pid'], name
    assert os.readlink('/proc/%d/root' % data['pid']) == jail


def test_document_root_inside_the_chroot_is_rewritten(server):
    data = du.get_json(server, '/jailed', host='docroot.test')
    assert data['DOCUMENT_ROOT'] == '/htdocs'


def test_script_outside_the_chroot_is_refused(server, jail):
    offset = server.log_size()
    assert server.get('/outside').status == 500
    log = server.log_since(offset)
    assert ("%s/probe.wsgi is outside the chroot directory %s of daemon process group 'jailed'"
            % (server.apps, jail)) in log, log


@pytest.mark.parametrize('value,expected', [
    ('jail', 'option chroot= must be an absolute path'),
    ('/srv/../etc', 'option chroot= must be an absolute path'),
    ('/mwrs-no-such-dir', 'option chroot=/mwrs-no-such-dir: cannot use it: No such file or directory'),
    ('/etc/passwd', 'option chroot=/etc/passwd: not a directory'),
])
def test_bad_chroot_fails_config_test(value, expected):
    harness.assert_config_refused('WSGIDaemonProcess g chroot=%s\n' % value, expected, name='dchrootcfg')
