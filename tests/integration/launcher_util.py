"""Helpers for the tests of our ``mod_wsgi-express`` (test_express_*.py).

``Site`` is a world-readable directory under /tmp holding an application's
files. ``Launched`` runs ``mod_wsgi-express start-server`` (ours, or any
other executable of that name) in the foreground as a user would, waits
until it answers, and stops it with a signal, checking that nothing it
started is left running.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import daemon_util  # noqa: E402
import harness  # noqa: E402

EXPRESS = os.environ.get('MOD_WSGI_EXPRESS',
                         os.path.join(harness.REPO, 'target', 'release', 'mod_wsgi-express'))
RUN_AS = ['--user', 'www-data', '--group', 'www-data']


def express_env():
    """The environment our launcher runs with: Apache's fixed one, plus the
    module under test."""
    env = dict(harness.APACHE_ENV)
    env['MOD_WSGI_RS_SO'] = harness.module_path()
    return env


def run(args, cwd=None, executable=EXPRESS, env=None, timeout=120):
    """Runs a mod_wsgi-express command to completion."""
    return subprocess.run([executable] + list(args), cwd=cwd, env=env or express_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


class Site:
    """A directory under /tmp with ``files`` ({relative path: text}) that
    Apache's www-data processes can read; removed by ``cleanup()``."""

    def __init__(self, files, name='site'):
        self.dir = tempfile.mkdtemp(prefix='mwrs-express-%s-' % name, dir='/tmp')
        os.chmod(self.dir, 0o755)
        for path, text in files.items():
            self.write(path, text)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, relative, text):
        path = self.path(relative)
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        mode = 'wb' if isinstance(text, bytes) else 'w'
        with open(path, mode) as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def cleanup(self):
        if not os.environ.get('MWRS_KEEP'):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


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


class Launched:
    """``mod_wsgi-express start-server ARGS`` running in the foreground.

    ``args`` should include ``--server-root`` (``root``) so the processes
    it leaves behind, if any, can be found. The launcher's output goes to
    files: ``output()`` reads them."""

    def __init__(self, args, root, port, cwd, executable=EXPRESS, env=None,
                 ready_path='/', timeout=30.0):
        self.root = root
        self.port = port
        out = tempfile.NamedTemporaryFile(prefix='mwrs-express-out-', dir='/tmp', delete=False)
        err = tempfile.NamedTemporaryFile(prefix='mwrs-express-err-', dir='/tmp', delete=False)
        self.out_path, self.err_path = out.name, err.name
        self.process = subprocess.Popen([executable, 'start-server'] + list(args), cwd=cwd,
                                        env=env or express_env(), stdout=out, stderr=err,
                                        stdin=subprocess.DEVNULL)
        out.close()
        err.close()
        self.seen = set()
        try:
            self.wait_ready(ready_path, timeout)
        except BaseException:
            self.cleanup()
            raise

    def output(self):
        with open(self.out_path) as f, open(self.err_path) as g:
            return f.read(), g.read()

    def error_log(self):
        try:
            with open(os.path.join(self.root, 'error_log'), errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def describe(self):
        out, err = self.output()
        return 'stdout:\n%s\nstderr:\n%s\nerror_log:\n%s' % (out, err, self.error_log()[-4000:])

    def wait_ready(self, path, timeout):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError('mod_wsgi-express exited (%s) before serving\n%s'
                                     % (self.process.returncode, self.describe()))
            try:
                response = self.get(path, timeout=5)
                if response.status < 500:
                    self.note_pids()
                    return
                last = response
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise AssertionError('no answer on port %d (%r)\n%s' % (self.port, last, self.describe()))

    def note_pids(self):
        """Remembers every process of the server seen so far."""
        self.seen.update(self.pids())

    def pids(self):
        """The launcher's live descendants: Apache, its children, its daemons."""
        return descendants(self.process.pid)

    def apache_pid(self):
        children = [p for p in self.pids() if daemon_util.ppid(p) == self.process.pid]
        assert len(children) == 1, children
        return children[0]

    def request(self, method, path, **kw):
        """A request to the HTTP port, or with ``https_port`` to that one."""
        https = kw.pop('https_port', None)
        port = https or self.port
        data = harness.build_request(method, path, kw.pop('headers', None), kw.pop('body', None),
                                     host=kw.pop('host', 'localhost'), port=port)
        raw = harness.raw_request(port, data, use_ssl=https is not None, **kw)
        return harness.Response(raw, method)

    def get(self, path, **kw):
        return self.request('GET', path, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Signals the launcher and waits for it; returns its exit status and
        the processes of the server still alive (killed, so none is left)."""
        self.note_pids()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
        deadline = time.time() + 5
        left = []
        while time.time() < deadline:
            left = [p for p in self.seen if daemon_util.alive(p)]
            left += [p for p in daemon_util.processes_using(self.root) if p not in left]
            if not left:
                break
            time.sleep(0.05)
        for pid in left:
            daemon_util.kill(pid, signal.SIGKILL)
        return status, left

    def cleanup(self):
        """Stops the server if it runs, and removes the output files."""
        self.stop()
        for path in (self.out_path, self.err_path):
            try:
                os.unlink(path)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
