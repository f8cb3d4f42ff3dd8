"""The mod_wsgi module's event API: subscribe_events (request_started can
wrap the application), request_data(), and subscribe_shutdown."""
import glob
import os

import pytest

import harness
from harness import Apache


@pytest.fixture(params=['embedded', 'daemon'])
def server(request):
    cfg = 'WSGIScriptAlias / {apps}/events.wsgi\n'
    if request.param == 'daemon':
        cfg = 'WSGIDaemonProcess ev processes=1 threads=2\nWSGIProcessGroup ev\n' + cfg
    # One process serves every request, in either mode.
    with Apache('prefork', cfg, single=True, name='events') as a:
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
    assert second['pid'] == first['pid']
    # The first request's later events, in order, before this one's.
    earlier = second['seen'][len(first['seen']):-1]
    assert earlier == ['response_started', 'request_finished', 'status=200 OK'], second['seen']


def test_shutdown_subscribers_run_when_the_process_stops(server):
    pid = server.get('/').json()['pid']
    state = os.path.join(server.root, 'apps', 'state')
    server.stop()
    path = os.path.join(state, 'stopped-%d' % pid)
    assert harness.wait_for(lambda: os.path.exists(path), 10), glob.glob(state + '/*')
    with open(path) as f:
        assert f.read() == 'shutdown_signal'
