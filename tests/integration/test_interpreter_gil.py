"""WSGIPerInterpreterGIL On gives each sub-interpreter a GIL of its own
(Python 3.12+): two CPU-bound applications in two application groups of
one process run in parallel, where with the shared GIL they take turns.

The system Python is 3.11, so this builds the module against a pyenv build
of Python 3.13 (with a shared libpython). pyenv's tree is not readable by
Apache's user: it is copied to a readable prefix first, and the module is
built into a target directory of its own with a pyo3 configuration that
names the copy's library directory (the copy's sysconfig still names the
original). Both are cached between runs."""
import glob
import os
import shutil
import subprocess
import threading
import time

import pytest

import daemon_util as du
import harness
from harness import Apache

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ONE_CHILD = """
StartServers 1
ServerLimit 1
ThreadLimit 4
ThreadsPerChild 4
MinSpareThreads 1
MaxSpareThreads 4
MaxRequestWorkers 4
"""

APPS = r"""
WSGIPythonHome {prefix}
WSGIPerInterpreterGIL {own}
WSGIScriptAlias /one {apps}/interp.wsgi application-group=one
WSGIScriptAlias /two {apps}/interp.wsgi application-group=two
"""

# Chunks of work per request (a few milliseconds each).
CHUNKS = 400


def pyenv_python(minor):
    root = os.environ.get('PYENV_ROOT') or subprocess.run(
        ['pyenv', 'root'], capture_output=True, text=True).stdout.strip() or os.path.expanduser('~/.pyenv')
    versions = sorted(glob.glob(os.path.join(root, 'versions', '3.%d.*' % minor)))
    if not versions:
        pytest.fail('no pyenv build of Python 3.%d under %s' % (minor, root))
    return versions[-1]


def readable_copy(source):
    """``source`` copied where www-data can read it (once)."""
    prefix = os.path.join(harness.VENV_CACHE, 'python-' + os.path.basename(source))
    stamp = os.path.join(prefix, 'copied')
    if not os.path.exists(stamp):
        shutil.rmtree(prefix, ignore_errors=True)
        shutil.copytree(source, prefix, symlinks=True)
        for dirpath, dirnames, filenames in os.walk(prefix):
            os.chmod(dirpath, 0o755)
            for fn in filenames:
                path = os.path.join(dirpath, fn)
                if not os.path.islink(path):
                    os.chmod(path, os.stat(path).st_mode | 0o444)
        open(stamp, 'w').close()
    return prefix


def build_module(prefix, version):
    """The module built against the Python at ``prefix``."""
    target = os.path.join(REPO, 'target', 'python' + version)
    os.makedirs(target, exist_ok=True)
    config = os.path.join(target, 'pyo3-config.txt')
    with open(config, 'w') as f:
        f.write('implementation=CPython\nversion=%s\nshared=true\nabi3=false\nlib_name=python%s\n'
                'lib_dir=%s/lib\nexecutable=%s/bin/python%s\npointer_width=64\nbuild_flags=\n'
                'suppress_build_script_link_lines=false\n' % (version, version, prefix, prefix, version))
    env = dict(os.environ, CARGO_TARGET_DIR=target, PYO3_CONFIG_FILE=config)
    p = subprocess.run(['make', 'build', 'PYTHON=%s/bin/python%s' % (prefix, version)], cwd=REPO, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1800)
    assert p.returncode == 0, p.stdout.decode('utf-8', 'replace')[-5000:]
    return os.path.join(target, 'release', 'libmod_wsgi_rs.so')


@pytest.fixture(scope='module')
def python313():
    prefix = readable_copy(pyenv_python(13))
    return prefix, build_module(prefix, '3.13')


def overlaps(first, second):
    """Pairs of chunks, one of each request, that ran at the same time.
    Only chunks that ran uninterrupted count (their CPU time is most of
    their wall-clock time): under one GIL two such chunks never overlap."""
    def whole(chunks):
        return sorted((start, end) for start, end, cpu in chunks if cpu >= 0.8 * (end - start))
    a, b = whole(first), whole(second)
    count, j = 0, 0
    for start, end in a:
        while j < len(b) and b[j][1] <= start:
            j += 1
        k = j
        while k < len(b) and b[k][0] < end:
            count += 1
            k += 1
    return count, min(len(a), len(b))


def run_pair(a):
    """/one and /two at once: (wall-clock seconds, overlapping chunks,
    chunks that could overlap)."""
    results = {}

    def spin(path):
        results[path] = du.get_json(a, '%s?spin=%d' % (path, CHUNKS), timeout=120)
    threads = [threading.Thread(target=spin, args=(p,)) for p in ('/one', '/two')]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    assert results['/one']['pid'] == results['/two']['pid']
    return (wall,) + overlaps(results['/one']['chunks'], results['/two']['chunks'])


def measure(python, own, rounds=3):
    prefix, so = python
    a = Apache('event', APPS.replace('{prefix}', prefix).replace('{own}', own), so=so,
               name='gil-' + own.lower(), mpm_conf=ONE_CHILD)
    try:
        a.start()
        for path in ('/one', '/two'):
            assert du.get_json(a, path)['group'] == path[1:]
        runs = [run_pair(a) for _ in range(rounds)]
        log = a.error_log()
        assert not harness.crash_lines(log) and 'Fatal Python error' not in log, log[-3000:]
        return runs, log
    finally:
        a.cleanup()


@pytest.mark.slow
def test_own_gil_runs_two_groups_in_parallel(python313):
    shared, _ = measure(python313, 'Off')
    own, log = measure(python313, 'On')
    assert "created the Python interpreter of application group 'one' in process" in log
    assert '(with its own GIL)' in log
    best_shared = min(wall for wall, _, _ in shared)
    best_own = min(wall for wall, _, _ in own)
    assert best_own < 0.75 * best_shared, (shared, own)
    # With one GIL no two uninterrupted chunks overlap; with two, many do.
    assert all(count <= max(2, possible // 100) for _, count, possible in shared), shared
    assert max(count / max(possible, 1) for _, count, possible in own) >= 0.2, own
