"""Daemon process lifecycle: respawn after kill -9 under load, SIGUSR1
(drain, exit, respawn), Apache graceful restart under load, and a clean
stop that leaves no daemon behind."""
import signal
import socket
import threading
import time
import uuid

import pytest

import harness
from harness import Apache, Response
import daemon_util as du

CONFIG = r"""
WSGIDaemonProcess life processes=2 threads=4 display-name=%{GROUP}
WSGIDaemonProcess usr1 processes=1 threads=2 display-name=%{GROUP}
WSGIScriptAlias /life {apps}/daemon/info.wsgi process-group=life
WSGIScriptAlias /life-count {apps}/daemon/exchange.wsgi process-group=life
WSGIScriptAlias /usr1 {apps}/probe.wsgi process-group=usr1
"""

server = du.daemon_fixture(CONFIG, 'dlife', {'life': 2, 'usr1': 1})


def failures(results, since=0.0, until=None):
    """Failed requests that ended in [since, until]."""
    return [r for r in results if r[3] >= since and (until is None or r[3] <= until) and r[1] != 200]


def served_by(results, pid, since):
    return [r for r in results if r[0] >= since and r[1] == 200 and r[2] == pid]


@pytest.mark.slow
def test_kill_9_under_load(server):
    old = set(du.daemon_pids(server, 'life'))
    offset = server.log_size()
    # Pooled connections in both Apache children, so that the request in
    # flight below is sent over one (the old child re-sent such a request
    # when its connection died under it).
    du.burst(server, '/life', 8)
    # A request in flight in the process that is killed: it ran, so it must
    # fail (502) and must never be sent to another process.
    token = uuid.uuid4().hex[:12]
    inflight = {}
    slow = threading.Thread(target=lambda: inflight.setdefault(
        'result', du.try_get(server, '/life-count?mode=count&sleep=30&token=' + token, timeout=60)))
    slow.start()
    (a_pid,) = du.wait_for(lambda: du.runs(server, token), 10)
    (b_pid,) = old - {a_pid}
    with du.Load(server, '/life', clients=3) as load:
        assert load.wait_answered(5), load.snapshot()[-5:]
        t_kill_a = time.time()
        assert du.kill(a_pid, signal.SIGKILL)
        # A replacement with a new pid and the same title, child of the parent.
        a2 = du.wait_daemons(server, 'life', 2, timeout=10, exclude={a_pid})
        replacement = [p for p in a2 if p not in old]
        assert len(replacement) == 1, (a2, old)
        a_new = replacement[0]
        assert du.ppid(a_new) == server.parent
        assert du.uids(a_new)[0] == harness.WWW_UID
        # Requests keep being answered.  (Apache's children keep their
        # pooled connections to B, so A's replacement need not get any yet.)
        assert load.wait_answered(20, since=t_kill_a), load.snapshot()[-10:]
        # Now kill the other original one: from here on only new daemons can
        # answer, so the first replacement must serve.
        t_kill_b = time.time()
        assert du.kill(b_pid, signal.SIGKILL)
        assert du.wait_for(lambda: not du.alive(b_pid), 10)
        t_b_dead = time.time()
        assert load.wait_answered(10, since=t_b_dead), load.snapshot()[-10:]
        assert du.wait_for(lambda: served_by(load.snapshot(), a_new, t_b_dead), 15)
        load.stop()
        results = load.snapshot()
    slow.join(60)
    status, _, elapsed = inflight['result']
    assert status == 502 and elapsed < 20, (inflight, server.log_since(offset))
    assert du.runs(server, token) == [a_pid], du.runs(server, token)
    # While A was dead, B kept serving. (Requests in flight in a killed
    # process fail with 502 and are not sent again; a pooled connection
    # found dead before sending is dropped, so others are served.)
    during_a = [r for r in results if t_kill_a <= r[0] and r[3] <= t_kill_b]
    ok_a = [r for r in during_a if r[1] == 200]
    assert {r[2] for r in ok_a} <= {b_pid, a_new}, {r[2] for r in ok_a}
    # Only requests in flight at each kill may fail (3 clients).
    bad_a = failures(results, t_kill_a, t_kill_b)
    assert len(bad_a) <= 3, bad_a
    assert all(r[1] == 502 for r in bad_a), bad_a
    bad_b = failures(results, t_kill_b)
    assert len(bad_b) <= 3, bad_b
    assert all(r[1] == 502 for r in bad_b), bad_b
    # Nothing begun after B was gone was answered by it.
    assert b_pid not in {r[2] for r in results if r[0] > t_b_dead}
    # Two live daemons again, neither of them an original.
    now = du.wait_daemons(server, 'life', 2, exclude=old)
    assert not (set(now) & old)
    assert not du.alive(a_pid) and not du.alive(b_pid)
    log = server.log_since(offset)
    assert log.count("daemon process of group 'life' exited (status 9); starting a new one") == 2, log  # APR reports the killing signal as the status
    assert not du.crash_lines(log), du.crash_lines(log)
    # And it still serves normally.
    for _ in range(5):
        data = du.get_json(server, '/life')
        assert data['pid'] in now


def test_sigusr1_drains_and_respawns(server):
    (pid,) = du.daemon_pids(server, 'usr1')
    assert du.get_json(server, '/usr1')['pid'] == pid
    offset = server.log_size()
    inflight = {}
    token = uuid.uuid4().hex[:8]

    def slow():
        inflight['result'] = du.try_get(server, '/usr1?sleep=1.5&started=' + token)
    t = threading.Thread(target=slow)
    t.start()
    assert server.wait_state('started-' + token) == str(pid)
    assert du.kill(pid, signal.SIGUSR1)
    t.join(20)
    # The request in progress was allowed to finish, in the old process.
    status, data, _ = inflight['result']
    assert status == 200, inflight
    assert data['pid'] == pid
    new = du.wait_replaced(server, 'usr1', pid)
    assert du.cmdline(new).startswith(b'(wsgi:usr1)')
    assert du.ppid(new) == server.parent
    for _ in range(3):
        data = du.get_json(server, '/usr1')
        assert data['pid'] == new
        assert data['process_group'] == 'usr1'
    log = server.log_since(offset)
    assert "daemon process %d for group 'usr1' stopping (SIGUSR1: graceful restart)" % pid in log, log
    assert "daemon process of group 'usr1' exited (status 0); starting a new one" in log, log


GRACEFUL_CONFIG = r"""
WSGISocketRotation %s
WSGIDaemonProcess gr processes=2 threads=4 connect-timeout=3 display-name=%%{GROUP}
WSGIScriptAlias /gr {apps}/daemon/info.wsgi process-group=gr
"""


@pytest.fixture(params=['On', 'Off'])
def graceful_server(request):
    with Apache('event', GRACEFUL_CONFIG % request.param, name='dgrace') as a:
        a.rotation = request.param
        yield a


def wait_old_children_gone(server, old_children, timeout=15):
    """Waits until no Apache child of an earlier generation is left, so no
    process that could still hand a request to an old daemon socket
    remains; returns the time it was seen."""
    assert du.wait_for(lambda: not (old_children & set(server.child_pids())), timeout), \
        du.describe_pids(sorted(old_children & set(server.child_pids())))
    return time.time()


@pytest.mark.slow
def test_graceful_under_load_then_clean_stop(graceful_server):
    server = graceful_server
    old = set(du.wait_daemons(server, 'gr', 2))
    assert server.child_pids()
    seen_daemons = set(old)
    old_children = set()
    with du.Load(server, '/gr', clients=4) as load:
        assert load.wait_answered(5), load.snapshot()[-5:]
        t0 = time.time()
        # Three graceful restarts in a row, each once the new daemons run
        # and serve.
        previous = set(old)
        for _ in range(3):
            old_children |= set(server.child_pids())
            server.graceful()
            current = set(du.wait_daemons(server, 'gr', 2, timeout=10, exclude=previous))
            seen_daemons |= current
            previous |= current
            assert load.wait_answered(1, since=time.time()), load.snapshot()[-5:]
        old = previous - current
        new = current
        t_settled = wait_old_children_gone(server, old_children)
        # At least 10 requests begun after that, all answered.
        assert load.wait_answered(10, since=t_settled), load.snapshot()[-10:]
        load.stop()
        results = load.snapshot()
    assert not (new & old)
    assert du.wait_for(lambda: not any(du.alive(p) for p in old), 10), \
        du.describe_pids([p for p in old if du.alive(p)])
    for pid in new:
        assert du.cmdline(pid).startswith(b'(wsgi:gr)')
        assert du.ppid(pid) == server.parent
    before = [r for r in results if r[3] < t0]
    assert before and all(r[1] == 200 for r in before), before
    bad = [r for r in results if r[1] != 200]
    if server.rotation == 'Off':
        # The socket path is stable across generations: requests that an
        # old Apache child is still handling reach the new daemons.
        assert bad == [], bad
    else:
        # With rotation the old generation's socket is gone: requests the
        # old children accepted just before the restart can only fail
        # (503 after connect-timeout=3), never crash or hang longer.
        assert all(r[1] == 503 and r[3] - r[0] < 3 + 10 for r in bad), bad
        assert all(r[0] <= t_settled for r in bad), (t0, t_settled, bad)
    # Requests begun once the old children were gone all succeed, on new daemons.
    after = [r for r in results if r[0] > t_settled]
    assert after, results[-5:]
    assert all(r[1] == 200 for r in after), [r for r in after if r[1] != 200][:10]
    assert {r[2] for r in after} <= new, ({r[2] for r in after}, new)
    for _ in range(5):
        assert du.get_json(server, '/gr')['pid'] in new
    log = server.error_log()
    assert not du.crash_lines(log), du.crash_lines(log)
    assert 'AH00493' in log or 'SIGUSR1 received' in log  # Apache's own graceful notice

    # Stop: nothing of the instance survives, daemons included.
    seen_daemons |= set(du.daemon_pids(server, 'gr'))
    left = server.stop(kill=False, timeout=15)
    assert left == [], du.describe_pids(left)
    assert not any(du.alive(p) for p in seen_daemons), \
        du.describe_pids([p for p in seen_daemons if du.alive(p)])
    assert du.processes_using(server.root) == [], du.describe_pids(du.processes_using(server.root))
    log = server.error_log()
    assert not du.crash_lines(log), du.crash_lines(log)


def test_request_held_by_old_child_across_graceful(graceful_server):
    """A request an old-generation Apache child is still reading when the
    graceful restart happens is handed to a daemon only afterwards.  With
    WSGISocketRotation Off the socket path is stable, so it must reach the
    new daemons; with rotation On the old socket is gone and it fails with
    503 within connect-timeout (as with mod_wsgi)."""
    server = graceful_server
    old = set(du.wait_daemons(server, 'gr', 2))
    assert du.get_json(server, '/gr')['pid'] in old
    old_children = set(server.child_pids())
    sock = socket.create_connection(('127.0.0.1', server.port), timeout=20)
    try:
        sock.sendall(b'GET /gr HTTP/1.1\r\nHost: 127.0.0.1\r\n')
        # An old child has accepted the connection and is reading the head.
        client_port = sock.getsockname()[1]
        holder = du.wait_for(lambda: harness.connection_owner(server.port, client_port))
        assert holder in old_children, (holder, old_children)
        offset = server.log_size()
        server.graceful()
        new = set(du.wait_daemons(server, 'gr', 2, timeout=10, exclude=old))
        t0 = time.time()
        sock.sendall(b'Connection: close\r\n\r\n')
        raw = du.recv_until_closed(sock, timeout=15)[0]
        elapsed = time.time() - t0
    finally:
        sock.close()
    resp = Response(raw)
    log = server.log_since(offset)
    assert not du.crash_lines(log), du.crash_lines(log)
    if server.rotation == 'Off':
        assert resp.status == 200, (resp.status, log)
        data = resp.json()
        assert data['pid'] in new, (data, new)
        assert 'did not authenticate' not in log, log
    else:
        assert resp.status == 503, (resp.status, log)
        assert elapsed < 3 + 10, elapsed
        assert "cannot connect to daemon process group 'gr'" in log, log
    # The old child that held the request is gone now, and later requests
    # are served by the new daemons.
    wait_old_children_gone(server, old_children)
    assert du.get_json(server, '/gr')['pid'] in new
