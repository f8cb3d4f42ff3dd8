"""WSGIImportScript (preloading at process start, embedded and daemon) and
WSGIRestrictSignal."""
import time

import pytest

import harness
from harness import Apache


CONFIG = r"""
StartServers 1
WSGIImportScript {apps}/import_marker.wsgi process-group=%{GLOBAL} application-group=preloaded
WSGIDaemonProcess preload processes=1 threads=2
WSGIImportScript {apps}/import_marker.wsgi process-group=preload application-group=%{GLOBAL}
WSGIScriptAlias /embedded {apps}/signals.wsgi application-group=preloaded
WSGIScriptAlias /daemon {apps}/signals.wsgi process-group=preload application-group=%{GLOBAL}
WSGIScriptAlias /other-embedded {apps}/signals.wsgi
WSGIScriptAlias /other-daemon {apps}/signals.wsgi process-group=preload
"""

server = harness.server_fixture(CONFIG, 'import',
                                pre_start=lambda a: setattr(a, 'started_at', time.time()))


def check_imported(server, path):
    r = server.get(path)
    assert r.status == 200, r.raw[:500]
    data = r.json()
    imported = data['imported']
    assert imported is not None, 'the import script did not run in this process'
    assert imported['pid'] == data['pid'], (imported, data)
    assert imported['at'] >= server.started_at
    return data


def test_import_script_runs_in_apache_children(server):
    check_imported(server, '/embedded')


def test_import_script_runs_in_daemon_processes(server):
    check_imported(server, '/daemon')


@pytest.mark.parametrize('path', ['/other-embedded', '/other-daemon'])
def test_import_script_runs_only_in_the_interpreter_it_names(server, path):
    """The script ran in its application group's interpreter (a
    sub-interpreter in Apache's children, the main one in the daemon), so
    an application in another group of the same process never sees it."""
    r = server.get(path)
    assert r.status == 200, r.raw[:500]
    assert r.json()['imported'] is None


def test_signal_handlers_are_refused_by_default(server):
    off = server.log_size()
    r = server.get('/embedded?signal')
    assert r.status == 200
    data = r.json()
    assert data['installed'] is False
    assert data['previous_is_handler'] is False
    log = server.wait_for_log('signal.signal(', off)
    assert log is not None and 'WSGIRestrictSignal' in log, log


def test_signal_handlers_refused_in_daemons_too(server):
    r = server.get('/daemon?signal')
    assert r.status == 200
    assert r.json()['installed'] is False


def test_restrict_signal_off_allows_handlers():
    # Python installs signal handlers only from the main interpreter.
    cfg = r"""
WSGIRestrictSignal Off
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /embedded {apps}/signals.wsgi
"""
    with Apache('prefork', cfg, name='signals') as a:
        r = a.get('/embedded?signal')
        assert r.status == 200
        assert r.json()['installed'] is True


@pytest.mark.parametrize('line', [
    'WSGIImportScript {apps}/import_marker.wsgi process-group=nowhere application-group=%{GLOBAL}',
    'WSGIImportScript {apps}/import_marker.wsgi process-group=%{GLOBAL}',
    'WSGIImportScript {apps}/import_marker.wsgi process-group=%{SERVER} application-group=%{GLOBAL}',
    'WSGIImportScript',
])
def test_bad_import_script_fails_config_test(line):
    rc, out = harness.config_test(line + '\n', name='badimport')
    assert rc != 0, out
    assert 'WSGIImportScript' in out, out
