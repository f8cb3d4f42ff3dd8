"""mod_wsgi-express from the package index, to check that the server configs
it generates work with our module when only their ``LoadModule wsgi_module``
line changes.

``ensure_venv()`` makes a virtualenv with ``/usr/bin/python3 -m venv`` and
``pip install mod_wsgi==6.1.1`` into it (pip compiles mod_wsgi against
apache2-dev). The venv is kept in ``$MWRS_EXPRESS_VENV`` (default
/var/cache/mod_wsgi-rs/mod_wsgi-6.1.1), so only the first run downloads and
builds it; a half-made one is rebuilt.

Run as a script to print, for each mode, every line of the generated config
that ``apachectl configtest`` refuses with our module::

    MOD_WSGI_RS_SO=target/release/libmod_wsgi_rs.so \\
        /usr/bin/python3 tests/integration/express_util.py
"""
import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

MOD_WSGI_VERSION = '6.1.1'
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

APP = b'''def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'express']
'''

FILES = {
    'app.wsgi': APP,
    'appmod.py': APP.replace(b'def application', b'def app'),
    'static/hello.txt': b'static\n',
}

LOAD_MODULE = re.compile(r'^LoadModule\s+wsgi_module\s+.*$', re.M)
SYNTAX_ERROR = re.compile(r'Syntax error on line (\d+) of (\S+?):\n(.*)')


class Unavailable(Exception):
    """mod_wsgi could not be installed (no network, no compiler, ...)."""


def venv_dir():
    return os.environ.get('MWRS_EXPRESS_VENV',
                          '/var/cache/mod_wsgi-rs/mod_wsgi-%s' % MOD_WSGI_VERSION)


def _run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=900, **kw)


def ensure_venv():
    """The venv's directory, creating it on first use."""
    venv = venv_dir()
    stamp = os.path.join(venv, 'mod_wsgi-installed')
    os.makedirs(os.path.dirname(venv), mode=0o755, exist_ok=True)
    # One test run builds; a concurrent one waits for it.
    with open(venv + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(stamp):
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        steps = [
            [SYSTEM_PYTHON, '-m', 'venv', venv],
            [os.path.join(venv, 'bin', 'python'), '-m', 'pip', 'install', '--quiet',
             'mod_wsgi==%s' % MOD_WSGI_VERSION],
        ]
        for cmd in steps:
            # Readable by everyone, so www-data can run applications from it.
            p = _run(cmd, preexec_fn=lambda: os.umask(0o022))
            if p.returncode != 0:
                raise Unavailable('%s failed (%d):\n%s' % (' '.join(cmd), p.returncode,
                                                           p.stdout.decode('utf-8', 'replace')))
        with open(stamp, 'w') as f:
            f.write(MOD_WSGI_VERSION + '\n')
        return venv


class Generated:
    """One server root made by ``mod_wsgi-express setup-server``."""

    def __init__(self, venv, mode_args, extra_args=()):
        self.base = tempfile.mkdtemp(prefix='mwrs-express-', dir='/tmp')
        os.chmod(self.base, 0o755)
        for name, data in FILES.items():
            path = os.path.join(self.base, name)
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            with open(path, 'wb') as f:
                f.write(data)
            os.chmod(path, 0o644)
        self.root = os.path.join(self.base, 'root')
        self.conf = os.path.join(self.root, 'httpd.conf')
        self.apachectl = os.path.join(self.root, 'apachectl')
        self.port = harness.free_port()
        places = {'{base}': self.base, '{https_port}': str(harness.free_port()),
                  '{cert}': os.path.join(self.base, 'cert.pem'),
                  '{key}': os.path.join(self.base, 'key.pem')}
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
