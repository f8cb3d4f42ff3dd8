"""threads=0: a daemon process group that runs service scripts (its
WSGIImportScript, e.g. a sidecar) and takes no requests. The script runs in
the process's main thread with signals of its own; SIGTERM ends it with
SystemExit; when it returns the process is replaced. mod_wsgi-express's
--service-script generates such a group, and its config runs with ours."""
import os
import signal

import pytest

import harness
import daemon_util as du
import express_util

# Records its start, handles SIGUSR2 itself (WSGIRestrictSignal does not
# apply), and runs until SIGTERM's SystemExit, or until asked to return.
SERVICE = '''import os
import signal
import sys
import time

STATE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'state')
PID = os.getpid()


def write_state(name, text=''):
    with open(os.path.join(STATE, name + '.tmp'), 'w') as f:
        f.write(text)
    os.rename(os.path.join(STATE, name + '.tmp'), os.path.join(STATE, name))


signal.signal(signal.SIGUSR2, lambda signum, frame: write_state('usr2-%d' % PID))
write_state('started-%d' % PID, repr(sys.argv))
try:
    while not os.path.exists(os.path.join(STATE, 'return-%d' % PID)):
        time.sleep(0.05)
finally:
    write_state('stopped-%d' % PID)
'''

CONFIG = r"""
WSGIDaemonProcess 'service:tick' display-name=%{GROUP} threads=0
WSGIImportScript {apps}/service.py process-group='service:tick' application-group=%{GLOBAL}
WSGIDaemonProcess web threads=2 display-name=%{GROUP}
WSGIScriptAlias /web {apps}/probe.wsgi process-group=web
WSGIScriptAlias /service {apps}/probe.wsgi process-group=service:tick
"""


def write_service(a):
    path = os.path.join(a.apps, 'service.py')
    with open(path, 'w') as f:
        f.write(SERVICE)
    os.chmod(path, 0o644)


server = du.daemon_fixture(CONFIG, 'dservice', {'service:tick': 1, 'web': 1},
                           mpms=('event', 'prefork'), pre_start=write_service)


def service_pid(server, exclude=()):
    """The service process, once its script runs."""
    pid = du.wait_daemons(server, 'service:tick', 1, exclude=exclude)[0]
    assert server.wait_state('started-%d' % pid, timeout=20) is not None, server.error_log()[-3000:]
    return pid


def threads(pid):
    return len(os.listdir('/proc/%d/task' % pid))


def test_service_script_runs_in_a_process_without_request_threads(server):
    pid = service_pid(server)
    # Only the main thread, running the script, once start-up is over.
    assert du.wait_for(lambda: threads(pid) == 1, 15), threads(pid)
    # Next to it a normal group serves.
    assert du.get_json(server, '/web')['process_group'] == 'web'
    assert du.daemon_pids(server, 'service:tick') == [pid]


def test_no_request_is_sent_to_a_service_group(server):
    pid = service_pid(server)
    offset = server.log_size()
    assert server.get('/service').status == 500
    log = server.log_since(offset)
    assert "WSGI daemon process group 'service:tick' has threads=0: it runs service scripts and takes no requests" in log, log
    assert du.daemon_pids(server, 'service:tick') == [pid]


def test_service_script_handles_signals_itself(server):
    pid = service_pid(server)
    os.kill(pid, signal.SIGUSR2)
    assert server.wait_state('usr2-%d' % pid, timeout=10) is not None
    assert du.alive(pid)


def test_sigterm_ends_the_script_with_system_exit_and_it_is_replaced(server):
    """SIGTERM raises SystemExit in the script (its finally: block runs);
    the process exits and the parent starts another at once."""
    pid = service_pid(server)
    offset = server.log_size()
    os.kill(pid, signal.SIGTERM)
    assert server.wait_state('stopped-%d' % pid, timeout=10) is not None
    new = service_pid(server, exclude={pid})
    assert new != pid and not du.alive(pid)
    log = server.log_since(offset)
    assert 'Traceback' not in log and 'SystemExit' not in log, log


def test_a_script_that_returns_ends_its_process_and_is_replaced(server):
    pid = service_pid(server)
    offset = server.log_size()
    open(server.state_file('return-%d' % pid), 'w').close()
    assert server.wait_state('stopped-%d' % pid, timeout=10) is not None
    new = service_pid(server, exclude={pid})
    assert new != pid
    assert server.wait_for_log("for group 'service:tick' stopping: its scripts returned", offset)


def test_apache_stop_ends_the_service():
    with harness.Apache('event', CONFIG, name='dservicestop', pre_start=write_service) as a:
        pid = service_pid(a)
        assert a.stop(kill=False) == []
        assert os.path.exists(a.state_file('stopped-%d' % pid))


def test_threads_0_without_a_script_warns():
    config = 'WSGIDaemonProcess idle threads=0 display-name=%{GROUP}\n'
    with harness.Apache('event', config, name='dservicenone') as a:
        assert a.wait_for_log("daemon process group 'idle' has threads=0 but no WSGIImportScript names it",
                              timeout=20), a.error_log()[-3000:]


# -- mod_wsgi-express --service-script -------------------------------------------------------

EXPRESS_SERVICE = '''import os
import time

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'service-ran'), 'w') as f:
    f.write(str(os.getpid()))
while True:
    time.sleep(1)
'''


@pytest.mark.slow
def test_express_service_script_config_runs():
    """mod_wsgi-express setup-server --service-script NAME SCRIPT writes a
    threads=0 group and a WSGIImportScript for it: with only the LoadModule
    line changed, the config starts, the service runs as its own process
    and the application still serves."""
    venv = express_util.ensure_venv()
    files = dict(express_util.FILES)
    files['tick.py'] = EXPRESS_SERVICE.encode()
    g = express_util.Generated(venv, express_util.MODES['daemon'], files=files,
                               prepare=lambda base: os.chmod(base, 0o777),
                               extra_args=['--service-script', 'tick', '{base}/tick.py'])
    try:
        g.use_module(harness.module_path())
        conf = g.read_conf()
        assert "WSGIDaemonProcess 'service:tick'" in conf and 'threads=0' in conf, conf
        rc, out = g.configtest()
        assert rc == 0, out
        s = express_util.Server(g)
        s.start()
        try:
            ran = os.path.join(g.base, 'service-ran')
            assert du.wait_for(lambda: os.path.exists(ran), 20), s.describe()
            with open(ran) as f:
                pid = int(f.read())
            assert du.cmdline(pid).startswith(b'(wsgi:service:tick)')
            assert s.request('GET', '/').status == 200
        finally:
            assert s.stop() == []
    finally:
        g.cleanup()
