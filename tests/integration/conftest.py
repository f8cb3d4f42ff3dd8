"""Shared fixtures and hooks for the mod_wsgi-rs integration suite.

Run from the repository root, as root, with the system Python:

    /usr/bin/python3 -m pytest tests/integration -q

Environment (see tests/README.md): MOD_WSGI_RS_SO overrides the module
under test (default: target/release/libmod_wsgi_rs.so); MWRS_PYTHON is the
Python it was built for (default /usr/bin/python3); MWRS_KEEP=1 keeps the
temporary server roots; MWRS_REQUIRE_ALL=1 makes the run fail when a test
marked ``must_run`` was skipped.
"""
import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

# Config for the shared "adapter" server used by test_environ.py,
# test_adapter.py and test_input.py.
ADAPTER_CONFIG = r"""
SetEnv MWRS_SETENV bar
WSGIScriptAlias /env {apps}/environ.wsgi
WSGIScriptAlias /echo {apps}/echo.wsgi
WSGIScriptAlias /adapter {apps}/adapter.wsgi
WSGIScriptAlias /stream {apps}/stream.wsgi
WSGIScriptAlias /filewrap {apps}/filewrap.wsgi
WSGIScriptAlias /chunked {apps}/echo.wsgi
<Location /chunked>
    WSGIChunkedRequest On
</Location>
"""


def make_big_file(apache, size=2 * 1024 * 1024):
    d = os.path.join(apache.apps, 'data')
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    path = os.path.join(d, 'big.bin')
    data = os.urandom(size)
    with open(path, 'wb') as f:
        f.write(data)
    os.chmod(path, 0o644)


adapter_server = harness.server_fixture(ADAPTER_CONFIG, 'adapter', scope='session', ssl=True,
                                        pre_start=make_big_file)


@pytest.fixture
def token():
    return uuid.uuid4().hex[:12]


@pytest.fixture(autouse=True)
def no_leftover_processes():
    """Fails the test during which an Apache instance was stopped and some
    of its processes (daemons included) had to be killed."""
    yield
    leftovers = harness.take_unreported_leftovers()
    if leftovers:
        pytest.fail('processes still alive after their Apache was stopped (now killed): %r'
                    % leftovers, pytrace=False)


# -- tests that must not be skipped ---------------------------------------------

_SKIPPED_MUST_RUN = []


def pytest_runtest_logreport(report):
    if report.skipped and 'must_run' in report.keywords:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _SKIPPED_MUST_RUN.append((report.nodeid, reason))


def _require_all():
    return os.environ.get('MWRS_REQUIRE_ALL', '') not in ('', '0')


def pytest_sessionfinish(session, exitstatus):
    harness.stop_all()
    leftovers = harness.take_unreported_leftovers()
    if leftovers:
        session.config._mwrs_leftovers = leftovers
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if _SKIPPED_MUST_RUN and _require_all():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    tr = terminalreporter
    if _SKIPPED_MUST_RUN:
        tr.section('MUST-RUN TESTS DID NOT RUN', sep='!', red=True, bold=True)
        for nodeid, reason in _SKIPPED_MUST_RUN:
            tr.write_line('NOT RUN: %s (%s)' % (nodeid, reason), red=True, bold=True)
        tr.write_line('%d security test(s) were skipped; %s' % (
            len(_SKIPPED_MUST_RUN),
            'MWRS_REQUIRE_ALL is set, so this run fails.' if _require_all()
            else 'set MWRS_REQUIRE_ALL=1 to make this a failure.'), red=True, bold=True)
    leftovers = getattr(config, '_mwrs_leftovers', None)
    if leftovers:
        tr.section('LEFTOVER PROCESSES', sep='!', red=True, bold=True)
        for root, pids in leftovers:
            tr.write_line('%s: %r' % (root, pids), red=True)
    if os.environ.get('MWRS_EXTRA_CONFIG'):
        tr.write_line('NOTE: MWRS_EXTRA_CONFIG=%r was added to every instance\'s config'
                      % os.environ['MWRS_EXTRA_CONFIG'], yellow=True, bold=True)
