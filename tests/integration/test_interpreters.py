"""Application groups are interpreters (issue 8): %{GLOBAL} is the main
interpreter and every other group gets a sub-interpreter of its own, made on
its first request, in Apache's children and in daemons alike. Applications
in different groups share no module state, sys.path or sys.modules; the
applications of %{GLOBAL} share everything. The number of sub-interpreters
is capped, an extension module that cannot run in a sub-interpreter (a
PyO3-built wheel, NumPy) gives an ImportError and a log line naming the
fix, and every
interpreter hears of the shutdown and runs its atexit functions.

Each server runs one process (one Apache child with eight threads, or one
daemon process), so every request of a test meets the same interpreters.
The PyO3 wheel and Django come from the package index into a cached venv
(harness.cached_venv); without the network those tests fail rather than skip."""
import os
import re
import shutil
import threading

import pytest

import daemon_util as du
import harness
from harness import Apache

MODES = ['embedded', 'daemon']

ONE_CHILD = """
StartServers 1
ServerLimit 1
ThreadLimit 8
ThreadsPerChild 8
MinSpareThreads 1
MaxSpareThreads 8
MaxRequestWorkers 8
"""

# Packages from the index: a PyO3-built wheel, NumPy (which loads in one
# interpreter per process), and Django.
PACKAGES = ['rpds-py==2026.9.1', 'numpy==2.4.6', 'Django==4.2.16']


def start(mode, body, name, **kw):
    """A started Apache running ``body`` in one Apache child (embedded) or
    in the one process of daemon group ``g`` (daemon)."""
    if mode == 'daemon':
        body = 'WSGIDaemonProcess g processes=1 threads=8 display-name=%{GROUP}\nWSGIProcessGroup g\n' + body
    a = Apache('event', body, name=name, mpm_conf=ONE_CHILD, **kw)
    a.start()
    if mode == 'daemon':
        du.wait_daemons(a, 'g', 1)
    return a


@pytest.fixture
def server_for(request):
    """Starts servers with start(); each is stopped and removed afterwards."""
    made = []

    def make(mode, body, name, **kw):
        a = start(mode, body, name, **kw)
        made.append(a)
        return a
    yield make
    for a in made:
        a.cleanup()


def group_tag(group):
    """How interp.wsgi names its state files for ``group``."""
    return re.sub(r'[^A-Za-z0-9]', '_', group) or 'GLOBAL'


def created_lines(log, group):
    return re.findall(r"created the Python interpreter of application group '%s' in process \d+" % re.escape(group), log)


def assert_no_crash(text):
    assert not harness.crash_lines(text) and 'Fatal Python error' not in text, text[-3000:]


# -- Isolation and sharing -------------------------------------------------------

APPS = r"""
WSGIScriptAlias /a {apps}/interp.wsgi
WSGIScriptAlias /b {apps}/interp.wsgi
WSGIScriptAlias /named {apps}/interp.wsgi application-group=named
WSGIScriptAlias /global1 {apps}/interp.wsgi application-group=%{GLOBAL}
WSGIScriptAlias /global2 {apps}/interp.wsgi application-group=%{GLOBAL}
"""


@pytest.fixture(scope='module', params=MODES)
def groups(request):
    a = start(request.param, APPS, 'groups')
    yield a
    a.cleanup()


def test_every_group_but_global_has_an_interpreter_of_its_own(groups):
    port = groups.port
    seen = {path: du.get_json(groups, path) for path in ['/a', '/b', '/named', '/global1', '/global2']}
    assert len({s['pid'] for s in seen.values()}) == 1, seen
    expected = {'/a': '127.0.0.1:%d|/a' % port, '/b': '127.0.0.1:%d|/b' % port,
                '/named': 'named', '/global1': '', '/global2': ''}
    for path, group in expected.items():
        # The mod_wsgi module of each interpreter names its group.
        assert seen[path]['group'] == seen[path]['module_group'] == group, (path, seen[path])
    interpreters = [seen[p]['interpreter'] for p in ['/a', '/b', '/named', '/global1']]
    assert len(set(interpreters)) == 4, seen
    assert seen['/global2']['interpreter'] == seen['/global1']['interpreter']


def test_groups_share_no_module_state_path_or_modules(groups, token):
    """The same script in /a and /b is two modules, in two interpreters:
    what one request does to module state, sys.path or sys.modules is
    seen by its own group's later requests and never by the other's."""
    first_b = du.get_json(groups, '/b')['hits']
    before = du.get_json(groups, '/a?mark=' + token)
    after = du.get_json(groups, '/a')
    assert after['hits'] == before['hits'] + 1
    assert token in after['marks_in_path'] and token in after['marks_in_modules']
    for path in ['/b', '/named', '/global1']:
        other = du.get_json(groups, path)
        assert token not in other['marks_in_path'] and token not in other['marks_in_modules'], (path, other)
    assert du.get_json(groups, '/b')['hits'] == first_b + 2


def test_global_is_one_interpreter_shared_by_its_applications(groups, token):
    """Two aliases in %{GLOBAL}: one interpreter, the script loaded once."""
    first = du.get_json(groups, '/global1?mark=' + token)
    second = du.get_json(groups, '/global2')
    assert second['interpreter'] == first['interpreter']
    assert second['hits'] == first['hits'] + 1
    assert token in second['marks_in_path'] and token in second['marks_in_modules']
    assert token not in du.get_json(groups, '/a')['marks_in_modules']


VHOSTS = r"""
<VirtualHost 127.0.0.1:{port}>
    ServerName one.test
    WSGIScriptAlias /app {apps}/interp.wsgi
</VirtualHost>
<VirtualHost 127.0.0.1:{port}>
    ServerName two.test
    WSGIScriptAlias /app {apps}/interp.wsgi
</VirtualHost>
"""


@pytest.mark.parametrize('mode', MODES)
def test_default_groups_of_two_virtual_hosts(server_for, mode, token):
    """The default %{RESOURCE} names a group by ServerName, port and
    script: the same script under two virtual hosts runs twice, isolated."""
    a = server_for(mode, VHOSTS, 'vhosts')
    one = du.get_json(a, '/app?mark=' + token, host='one.test:%d' % a.port)
    two = du.get_json(a, '/app', host='two.test:%d' % a.port)
    assert one['group'] == one['module_group'] == 'one.test:%d|/app' % a.port
    assert two['group'] == two['module_group'] == 'two.test:%d|/app' % a.port
    assert one['pid'] == two['pid'] and one['interpreter'] != two['interpreter']
    assert token not in two['marks_in_modules']
    assert token in du.get_json(a, '/app', host='one.test:%d' % a.port)['marks_in_modules']


# -- Creation -------------------------------------------------------------------

CONCURRENT = ''.join('WSGIScriptAlias /c%d {apps}/interp.wsgi application-group=c%d\n' % (i, i) for i in range(4))


@pytest.mark.slow
@pytest.mark.parametrize('mode', MODES)
def test_concurrent_first_requests_create_each_group_once(server_for, mode):
    """Eight first requests at once for each of four new groups: every one
    is answered, by one interpreter per group, each created once."""
    a = server_for(mode, CONCURRENT, 'create')
    offset = a.log_size()
    paths = ['/c%d?sleep=0.3' % (i % 4) for i in range(32)]
    results = [None] * len(paths)
    ready = threading.Barrier(len(paths))

    def one(i):
        ready.wait()
        results[i] = du.try_get(a, paths[i], timeout=60)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(paths))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(status == 200 for status, _, _ in results), results
    log = a.log_since(offset)
    for i in range(4):
        group = 'c%d' % i
        served = [data for status, data, _ in results if data['group'] == group]
        assert len(served) == 8 and len({d['interpreter'] for d in served}) == 1, served
        assert len(created_lines(log, group)) == 1, log[-3000:]
    assert len({data['interpreter'] for _, data, _ in results}) == 4
    assert_no_crash(a.error_log())


CAPPED = r"""
WSGIMaximumInterpreters 2
SetEnvIf Request_URI "^/cap/(\w+)" MWRS_GROUP=$1
WSGIScriptAlias /cap {apps}/interp.wsgi
<Location /cap>
    WSGIApplicationGroup %{ENV:MWRS_GROUP}
</Location>
WSGIScriptAlias /global {apps}/interp.wsgi application-group=%{GLOBAL}
"""


@pytest.mark.parametrize('mode', MODES)
def test_interpreter_cap(server_for, mode):
    """A group name taken from the request (%{ENV:...}) can ask for any
    number of interpreters: past WSGIMaximumInterpreters the request gets
    500 and the log says why; the groups that exist keep working."""
    a = server_for(mode, CAPPED, 'cap', modules=['setenvif'])
    assert du.get_json(a, '/cap/x')['group'] == 'x'
    assert du.get_json(a, '/cap/y')['group'] == 'y'
    offset = a.log_size()
    r = a.get('/cap/z')
    assert r.status == 500, r.raw[:500]
    log = a.wait_for_log("application group 'z'", offset)
    assert log is not None and 'WSGIMaximumInterpreters' in log and 'already has 2' in log, a.log_since(offset)
    assert du.get_json(a, '/cap/x')['group'] == 'x'
    assert du.get_json(a, '/global')['group'] == ''
    assert a.get('/cap/z').status == 500


# -- Shutdown -----------------------------------------------------------------------

LIFE = r"""
WSGIDestroyInterpreter {destroy}
WSGIScriptAlias /a {apps}/interp.wsgi application-group=a
WSGIScriptAlias /b {apps}/interp.wsgi application-group=b
WSGIScriptAlias /global {apps}/interp.wsgi application-group=%{GLOBAL}
"""
LIFE_GROUPS = ['a', 'b', '']


def state(a, kind, group, pid):
    path = a.state_file('%s-%s-%d' % (kind, group_tag(group), pid))
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.read()


def stop_and_wait(a, pid):
    left = a.stop(kill=False, timeout=30)
    assert left == [], left
    assert du.wait_for(lambda: not du.alive(pid), 15), du.proc_stat(pid)


@pytest.mark.slow
@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('destroy', ['On', 'Off'])
def test_every_interpreter_hears_of_the_shutdown_and_runs_atexit(server_for, mode, destroy):
    """Shutdown subscribers run in every interpreter; with
    WSGIDestroyInterpreter On the sub-interpreters are ended (their atexit
    functions run) before the main one, Off skips only the ending."""
    a = server_for(mode, LIFE.replace('{destroy}', destroy), 'life')
    pid = {du.get_json(a, '/' + (g or 'global'))['pid'] for g in LIFE_GROUPS}.pop()
    stop_and_wait(a, pid)
    for group in LIFE_GROUPS:
        assert state(a, 'stopped', group, pid) == 'shutdown_signal', group
    ran = {group: state(a, 'atexit', group, pid) for group in LIFE_GROUPS}
    if destroy == 'On':
        assert all(ran.values()), ran
        assert float(ran['']) > max(float(ran['a']), float(ran['b'])), ran
    else:
        assert not any(ran.values()), ran
    assert_no_crash(a.error_log())


def start_sleeping(a, pid, seconds):
    """A request sleeping in Python in every interpreter of LIFE; returns
    the client threads."""
    results = []
    clients = [threading.Thread(target=lambda g=g: results.append(du.try_get(a, '/%s?sleep=%s' % (g or 'global', seconds), timeout=70)),
                                daemon=True) for g in LIFE_GROUPS]
    for c in clients:
        c.start()
    for group in LIFE_GROUPS:
        assert du.wait_for(lambda: state(a, 'sleeping', group, pid) is not None, 15), group
    return clients, results


@pytest.mark.slow
def test_apache_child_stopped_with_every_interpreter_busy(server_for):
    """A gracefully stopping child lets its requests finish first: then
    every interpreter hears of the shutdown and is ended, none under a
    request."""
    a = server_for('embedded', LIFE.replace('{destroy}', 'On'), 'busy')
    pid = du.get_json(a, '/global')['pid']
    clients, results = start_sleeping(a, pid, 2)
    a._ctl('graceful-stop')
    assert du.wait_for(lambda: not du.alive(pid), 30), du.proc_stat(pid)
    for c in clients:
        c.join(30)
    assert [status for status, _, _ in results] == [200] * 3, results
    for group in LIFE_GROUPS:
        assert state(a, 'stopped', group, pid) == 'shutdown_signal', group
        assert state(a, 'atexit', group, pid) is not None, group
    assert_no_crash(a.error_log())


@pytest.mark.slow
def test_daemon_stopped_with_every_interpreter_busy(server_for):
    """A daemon stops with a request still in Python in every interpreter:
    each interpreter hears of it, none is torn down under its request, and
    the process exits."""
    a = server_for('daemon', LIFE.replace('{destroy}', 'On'), 'dbusy')
    pid = du.get_json(a, '/global')['pid']
    clients, _ = start_sleeping(a, pid, 60)
    os.kill(pid, 15)
    assert du.wait_for(lambda: not du.alive(pid), 30), du.proc_stat(pid)
    for group in LIFE_GROUPS:
        assert state(a, 'stopped', group, pid) == 'shutdown_signal', group
        assert state(a, 'atexit', group, pid) is None, group
    log = a.error_log()
    assert 'still running Python for a request' in log
    assert_no_crash(log)


@pytest.mark.slow
@pytest.mark.parametrize('mode', MODES)
def test_daemon_threads_left_in_a_sub_interpreter(server_for, mode):
    """Ending an interpreter that still has threads would abort the
    process: it is left, its atexit functions run, and the main
    interpreter is not finalised either (that would end it too)."""
    a = server_for(mode, LIFE.replace('{destroy}', 'On'), 'daemonthread')
    pid = du.get_json(a, '/a?daemon=1')['pid']
    du.get_json(a, '/b')
    du.get_json(a, '/global')
    stop_and_wait(a, pid)
    for group in LIFE_GROUPS:
        assert state(a, 'stopped', group, pid) == 'shutdown_signal', group
        assert state(a, 'atexit', group, pid) is not None, group
    log = a.error_log()
    assert "the interpreter of application group 'a' is not destroyed" in log, log[-3000:]
    assert_no_crash(log)


# -- Extension modules that refuse sub-interpreters, and Django -------------------------

@pytest.fixture(scope='module')
def venv():
    try:
        return harness.cached_venv('interpreters', PACKAGES)
    except harness.VenvUnavailable as e:
        pytest.fail('cannot install %s from the package index: %s' % (' '.join(PACKAGES), e))


EXTENSION = r"""
WSGIPythonHome {home}
WSGIScriptAlias /sub {apps}/interp.wsgi
WSGIScriptAlias /named {apps}/interp.wsgi application-group=named
WSGIScriptAlias /global {apps}/interp.wsgi application-group=%{GLOBAL}
"""


def imports(a, path, module):
    return du.get_json(a, '%s?import=%s' % (path, module))['imported']


def hint_lines(log):
    return [line for line in log.splitlines() if 'cannot be loaded in' in line]


@pytest.mark.slow
@pytest.mark.parametrize('mode', MODES)
def test_pyo3_wheel_works_only_in_the_main_interpreter(server_for, venv, mode):
    """A PyO3-built module cannot be shared by interpreters: a
    sub-interpreter gets an ImportError naming the fix, whether or not the
    main interpreter has it, and the log says so once."""
    a = server_for(mode, EXTENSION.replace('{home}', venv), 'pyo3')
    for path in ['/sub', '/global', '/sub']:
        got = imports(a, path, 'rpds')
        if path == '/global':
            assert got == 'ok'
        else:
            assert got.startswith('ImportError') and 'PyO3' in got and 'WSGIApplicationGroup %{GLOBAL}' in got, got
    hints = hint_lines(a.error_log())
    assert len(hints) == 1, hints
    assert "'rpds.rpds' cannot be loaded in application group '127.0.0.1:%d|/sub' (a sub-interpreter)" % a.port in hints[0]
    assert 'WSGIApplicationGroup %{GLOBAL}' in hints[0]
    assert_no_crash(a.error_log())


@pytest.mark.slow
@pytest.mark.parametrize('mode', MODES)
def test_extension_loaded_once_per_process_gets_the_hint(server_for, venv, mode):
    """NumPy loads in the first interpreter that imports it and refuses the
    others: each refusal is the application's ImportError, with one log
    line per interpreter naming the fix."""
    a = server_for(mode, EXTENSION.replace('{home}', venv), 'numpy')
    assert imports(a, '/sub', 'numpy') == 'ok'
    for path in ['/global', '/named']:
        got = imports(a, path, 'numpy')
        assert got.startswith('ImportError') and 'once per process' in got, (path, got)
    hints = hint_lines(a.error_log())
    assert len(hints) == 2, hints
    assert 'the main interpreter; a sub-interpreter loaded it first' in hints[0], hints
    assert "application group 'named' (a sub-interpreter)" in hints[1], hints
    assert_no_crash(a.error_log())


DJANGO = r"""
WSGIPythonHome {home}
WSGIDaemonProcess dj processes=1 threads=4 display-name=%{GROUP}
WSGIScriptAlias /one {apps}/django-one/app.wsgi process-group=dj
WSGIScriptAlias /two {apps}/django-two/app.wsgi process-group=dj
"""


def copy_django_projects(a):
    for name in ['django-one', 'django-two']:
        shutil.copytree(os.path.join(a.apps, 'django'), os.path.join(a.apps, name))
        for dirpath, _, filenames in os.walk(os.path.join(a.apps, name)):
            os.chmod(dirpath, 0o755)
            for fn in filenames:
                os.chmod(os.path.join(dirpath, fn), 0o644)


@pytest.mark.slow
def test_two_django_projects_in_one_daemon_group(venv):
    """Two projects whose settings packages have the same name, in one
    daemon process, each in its own interpreter, under concurrent load."""
    with du.running(DJANGO.replace('{home}', venv), 'django', {'dj': 1}, pre_start=copy_django_projects) as a:
        results = []
        lock = threading.Lock()

        def client(n):
            for i in range(20):
                site = ['one', 'two'][(n + i) % 2]
                status, data, _ = du.try_get(a, '/' + site, timeout=30)
                with lock:
                    results.append((site, status, data))
        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 80 and all(status == 200 for _, status, _ in results), \
            [r for r in results if r[1] != 200][:3] or a.error_log()[-3000:]
        interpreters = {}
        for site, _, data in results:
            assert data['site'] == 'django-' + site, data
            assert data['package'].endswith('/django-%s/mysite' % site), data
            assert data['group'] == '127.0.0.1:%d|/%s' % (a.port, site)
            interpreters.setdefault(site, set()).add(data['interpreter'])
        assert len(interpreters['one']) == len(interpreters['two']) == 1
        assert interpreters['one'] != interpreters['two']
        assert len({data['pid'] for _, _, data in results}) == 1
        assert_no_crash(a.error_log())
