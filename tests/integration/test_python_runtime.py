"""The embedded Python runtime: where it runs and how the WSGIPython*
directives configure it."""
import os
import subprocess

import pytest

import harness
from harness import Apache

CONFIGURED = r"""
WSGIPythonHome {venv}
WSGIPythonPath {apps}/lib1:{apps}/lib2
WSGIPythonOptimize 1
WSGIPythonHashSeed 0
WSGIDontWriteBytecode On
WSGIPythonWarnings ignore::DeprecationWarning
WSGIScriptAlias /env {apps}/environ.wsgi
WSGIScriptAlias /import {apps}/importer.wsgi
"""

DEFAULTS = r"""
WSGIPythonHashSeed random
WSGIScriptAlias /bg {apps}/bgthread.wsgi
WSGIScriptAlias /env {apps}/environ.wsgi
WSGIScriptAlias /import {apps}/importer.wsgi
"""


def seed0_hash():
    out = subprocess.run([harness.PYTHON, '-c', "print(hash('mwrs-hash-probe'))"],
                         env={'PYTHONHASHSEED': '0', 'PATH': '/usr/bin:/bin'},
                         stdout=subprocess.PIPE, check=True)
    return int(out.stdout)


configured = harness.server_fixture(CONFIGURED, 'pyconf', pre_start=lambda a: a.make_venv())
defaults = harness.server_fixture(DEFAULTS, 'pydef')


def info(server, path='/env'):
    return harness.get_json(server, path)


# -- process placement ------------------------------------------------------------

def check_child_not_parent(server):
    parent = server.read_pidfile()
    assert parent is not None
    children = server.child_pids()
    for _ in range(4):
        proc = info(server)['process']
        assert proc['pid'] != parent
        assert proc['ppid'] == parent
        assert proc['pid'] in children or proc['pid'] in server.child_pids()
        assert proc['uid'] == harness.WWW_UID
        assert proc['euid'] == harness.WWW_UID
        assert proc['gid'] == harness.WWW_GID


def test_python_runs_in_child_not_parent(defaults):
    check_child_not_parent(defaults)


def test_python_runs_in_child_not_parent_with_home(configured):
    check_child_not_parent(configured)


def test_parent_runs_as_root_children_as_www_data(defaults):
    parent = defaults.read_pidfile()
    with open('/proc/%d/status' % parent) as f:
        uids = [l for l in f if l.startswith('Uid:')][0].split()[1:]
    assert uids[0] == '0'
    for pid in defaults.child_pids():
        with open('/proc/%d/status' % pid) as f:
            uids = [l for l in f if l.startswith('Uid:')][0].split()[1:]
        assert uids[0] == str(harness.WWW_UID)


# -- WSGIPythonHome -----------------------------------------------------------------

def test_python_home_venv(configured):
    py = info(configured)['python']
    assert py['prefix'] == configured.venv
    assert py['base_prefix'] == harness.python_info()['base_prefix']
    assert py['version'][:2] == harness.python_info()['version']


def test_no_python_home_uses_system_prefix(defaults):
    py = info(defaults)['python']
    assert py['prefix'] == harness.python_info()['prefix']
    assert py['base_prefix'] == harness.python_info()['base_prefix']


# -- WSGIPythonPath -------------------------------------------------------------------

def test_python_path_front_and_importable(configured):
    out = info(configured, '/import')
    lib1 = os.path.join(configured.apps, 'lib1')
    lib2 = os.path.join(configured.apps, 'lib2')
    # site.addsitedir() semantics: lib1's .pth file adds lib1/pthdir right
    # after lib1; all added entries are at the front, in order.
    assert out['path'][:3] == [lib1, os.path.join(lib1, 'pthdir'), lib2]
    assert out['mwrs_pth'] == 'pth-value'
    assert out['mwrs_lib1'] == 'lib1-value'
    assert out['mwrs_lib2'] == 'lib2-value'
    assert out['mwrs_lib1_file'] == os.path.join(lib1, 'mwrs_lib1.py')
    assert out['mwrs_lib2_file'] == os.path.join(lib2, 'mwrs_lib2.py')


def test_no_python_path_not_importable(defaults):
    out = info(defaults, '/import')
    assert out['mwrs_lib1'].startswith('ERROR ModuleNotFoundError')
    assert not [p for p in out['path'] if p.startswith(defaults.apps + '/lib')]


# -- flags ----------------------------------------------------------------------------

def test_optimize_1(configured):
    py = info(configured)['python']
    assert py['optimize'] == 1
    assert py['debug'] is False


def test_hash_seed_0(configured):
    py = info(configured)['python']
    assert py['hash_randomization'] == 0
    assert py['hash_probe'] == seed0_hash()


def test_dont_write_bytecode(configured):
    py = info(configured)['python']
    assert py['dont_write_bytecode'] is True


def test_warnings_option(configured):
    py = info(configured)['python']
    assert 'ignore::DeprecationWarning' in py['warnoptions']


def test_non_ascii_warnings_option_decoded_as_python_decodes_it():
    """WSGIPythonWarnings is decoded by PyConfig after Python's
    pre-initialisation (UTF-8 under Apache's C locale, PEP 538/540), not by
    Py_DecodeLocale before it, which would turn the bytes into surrogates."""
    config = 'WSGIPythonWarnings ignore:caf\xe9\nWSGIScriptAlias /env {apps}/environ.wsgi\n'
    with Apache('event', config, name='pywarn') as a:
        assert 'ignore:caf\xe9' in info(a)['python']['warnoptions']


def test_defaults(defaults):
    py = info(defaults)['python']
    assert py['optimize'] == 0
    assert py['debug'] is True
    assert py['dont_write_bytecode'] is False
    assert 'ignore::DeprecationWarning' not in py['warnoptions']


def test_hash_seed_random(defaults):
    py = info(defaults)['python']
    assert py['hash_randomization'] == 1
    assert py['hash_probe'] != seed0_hash()


def test_python_initialised_separately_in_each_child():
    """With a random hash seed, an interpreter initialised once in the parent
    and inherited through fork() would give every child the same hash secret.
    Each child must initialise its own Python, so two children differ."""
    import concurrent.futures
    mpm_conf = """
StartServers 3
MinSpareServers 3
MaxSpareServers 4
ServerLimit 4
MaxRequestWorkers 4
"""
    with Apache('prefork', DEFAULTS, mpm_conf=mpm_conf, name='pyfork') as a:
        by_pid = {}
        for _ in range(5):
            with concurrent.futures.ThreadPoolExecutor(4) as ex:
                results = list(ex.map(lambda _: a.get('/env?sleep=0.4').json(), range(4)))
            for res in results:
                by_pid.setdefault(res['process']['pid'], set()).add(
                    res['python']['hash_probe'])
            if len(by_pid) >= 2:
                break
        assert len(by_pid) >= 2, by_pid
        # One value per process, and different processes differ.
        assert all(len(v) == 1 for v in by_pid.values()), by_pid
        values = [next(iter(v)) for v in by_pid.values()]
        assert len(set(values)) == len(values), by_pid


@pytest.mark.slow
def test_background_thread_runs_between_requests(defaults):
    """A thread started by the application keeps running while no request
    is active, so the GIL is not held between requests."""
    first = defaults.get('/bg').json()
    assert first['alive'] is True

    def ticked_for_a_second():
        out = defaults.get('/bg').json()
        return out if out['elapsed'] >= 1.0 else None
    sample = harness.wait_for(ticked_for_a_second, 20, interval=0.25)
    assert sample is not None, 'never hit a process that had loaded the app a second ago'
    assert sample['alive'] is True
    # One tick per 10 ms while idle.  Were the thread stopped between
    # requests, it would tick only during them; a loaded machine slows it
    # down, but not tenfold.
    assert sample['ticks'] >= 0.1 * sample['elapsed'] / 0.01, sample
