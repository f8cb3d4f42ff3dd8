"""The mod_wsgi module's event API: subscribe_events (request_started can
wrap the application), request_data(), and subscribe_shutdown."""
import glob
import os
import time

import pytest

from harness import Apache


@pytest.fixture(params=['embedded', 'daemon'])
def server(request):
    cfg = 'WSGIScriptAlias / {apps}/events.wsgi\n'
    if request.param == 'daemon':
        cfg = 'WSGIDaemonProcess ev processes=1 threads=2\nWSGIProcessGroup ev\n' + cfg
    else:
        cfg = 'StartServers 1\n' + cfg
    a = Apache('prefork', cfg, name='events')
    with a:
        os.makedirs(os.path.join(a.root, 'apps', 'state'), exist_ok=True)
        os.chmod(os.path.join(a.root, 'apps', 'state'), 0o777)
        yield a


def test_events_wrap_the_app_and_share_request_data(server):
    first = server.get('/').json()
    assert first['wrapped'] is True
    assert first['data'] == {'tag': 'from-started'}
    # The app runs between request_started and response_started.
    assert first['seen'][-1] == 'request_started'
    second = server.get('/').json()
    assert second['seen'][-1] == 'request_started'
    if second['pid'] == first['pid']:
        # The first request's later events, in order, before this one's.
        earlier = second['seen'][len(first['seen']):-1]
        assert earlier == ['response_started', 'request_finished', 'status=200 OK'], second['seen']


def test_shutdown_subscribers_run_when_the_process_stops(server):
    pid = server.get('/').json()['pid']
    state = os.path.join(server.root, 'apps', 'state')
    server.stop()
    deadline = time.time() + 10
    path = os.path.join(state, 'stopped-%d' % pid)
    while time.time() < deadline and not os.path.exists(path):
        time.sleep(0.1)
    assert os.path.exists(path), glob.glob(state + '/*')
    with open(path) as f:
        assert f.read() == 'shutdown_signal'
