"""Shared fixtures for the mod_wsgi-rs integration suite.

Run from the repository root with the system Python:

    /usr/bin/python3 -m pytest tests/integration -q

MOD_WSGI_RS_SO overrides the module under test (default:
target/release/libmod_wsgi_rs.so).  MWRS_KEEP=1 keeps the temporary server
roots for inspection.
"""
import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Apache  # noqa: E402

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


@pytest.fixture(scope='session', params=['event', 'prefork'])
def adapter_server(request):
    with Apache(request.param, ADAPTER_CONFIG, ssl=True, name='adapter',
                pre_start=make_big_file) as a:
        yield a


@pytest.fixture
def token():
    return uuid.uuid4().hex[:12]


def pytest_sessionfinish(session, exitstatus):
    harness.stop_all()
