"""WSGIDaemonProcess options that set up a daemon's process and sockets,
checked from inside the process (tests/apps/probe.wsgi) and from outside
(the socket file, ss): cpu-priority (the nice value), virtual-memory-limit
(RLIMIT_AS), send-buffer-size and receive-buffer-size (the socket buffers
at both ends of a connection), socket-user (who owns, and alone may use,
the daemon socket), script-user and script-group (who must own a script and
its directory, else 403); the start-up warning for a buffer size the system
caps; and the `apache2 -t` error for each bad value of these options."""
import os
import pwd
import grp
import subprocess

import pytest

import harness
from harness import Apache
import daemon_util as du

NOBODY = pwd.getpwnam('nobody')
# Sizes under the system's cap (net.core.wmem_max, rmem_max: 212992 by default).
SEND, RECEIVE = 100000, 150000
BIG = 64 << 20

CONFIG = r"""
WSGIDaemonProcess plain threads=1 display-name=%{{GROUP}}
WSGIDaemonProcess tuned threads=1 display-name=%{{GROUP}} cpu-priority=7 virtual-memory-limit=1500000000 send-buffer-size={send} receive-buffer-size={receive}
WSGIDaemonProcess favoured threads=1 display-name=%{{GROUP}} cpu-priority=-4
WSGIDaemonProcess bigbuf threads=1 display-name=%{{GROUP}} send-buffer-size={big}
WSGIDaemonProcess nobodys threads=1 display-name=%{{GROUP}} socket-user=nobody
WSGIDaemonProcess byuser threads=1 display-name=%{{GROUP}} script-user=root
WSGIDaemonProcess bygroup threads=1 display-name=%{{GROUP}} script-group=adm

WSGIScriptAlias /plain {{apps}}/probe.wsgi process-group=plain
WSGIScriptAlias /tuned {{apps}}/probe.wsgi process-group=tuned
WSGIScriptAlias /favoured {{apps}}/probe.wsgi process-group=favoured
WSGIScriptAlias /nobodys {{apps}}/probe.wsgi process-group=nobodys
WSGIScriptAlias /embedded {{apps}}/probe.wsgi
WSGIScriptAlias /byuser {{root}}/owned process-group=byuser
WSGIScriptAlias /bygroup {{root}}/owned process-group=bygroup
""".format(send=SEND, receive=RECEIVE, big=BIG)

GROUPS = {'plain': 1, 'tuned': 1, 'favoured': 1, 'bigbuf': 1, 'nobodys': 1, 'byuser': 1,
          'bygroup': 1}

APP = b'''def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ran']
'''

ADM = grp.getgrnam('adm').gr_gid

# Scripts under {root}/owned: directory -> (its owner, group, mode),
# {file: (owner, group, mode)}.
OWNED = {
    'rootdir': ((0, 0, 0o755), {'ok.wsgi': (0, 0, 0o644),
                                'nobodys.wsgi': (NOBODY.pw_uid, 0, 0o644),
                                'groupwrite.wsgi': (0, 0, 0o664),
                                'worldwrite.wsgi': (0, 0, 0o646)}),
    'groupdir': ((0, 0, 0o775), {'ok.wsgi': (0, 0, 0o644)}),
    'worlddir': ((0, 0, 0o777), {'ok.wsgi': (0, 0, 0o644)}),
    'nobodydir': ((NOBODY.pw_uid, 0, 0o755), {'ok.wsgi': (0, 0, 0o644)}),
    'admdir': ((0, ADM, 0o775), {'ok.wsgi': (0, ADM, 0o664),
                                 'rootgroup.wsgi': (0, 0, 0o644),
                                 'worldwrite.wsgi': (0, ADM, 0o666)}),
    'admworlddir': ((0, ADM, 0o777), {'ok.wsgi': (0, ADM, 0o644)}),
    'rootgroupdir': ((0, 0, 0o755), {'ok.wsgi': (0, ADM, 0o644)}),
}


def make_owned(a):
    base = os.path.join(a.root, 'owned')
    os.mkdir(base, 0o755)
    for directory, ((uid, gid, mode), files) in OWNED.items():
        path = os.path.join(base, directory)
        os.mkdir(path)
        for name, (fuid, fgid, fmode) in files.items():
            script = os.path.join(path, name)
            with open(script, 'wb') as f:
                f.write(APP)
            os.chown(script, fuid, fgid)
            os.chmod(script, fmode)
        os.chown(path, uid, gid)
        os.chmod(path, mode)


server = du.daemon_fixture(CONFIG, 'dsettings', GROUPS, mpms=('event',),
                           pre_start=make_owned)


def probe(server, group, query=''):
    data = du.get_json(server, '/%s?%s' % (group, query))
    if group != 'embedded':
        assert data['pid'] in du.daemon_pids(server, group)
    return data


# -- cpu-priority ---------------------------------------------------------------------

def test_cpu_priority_sets_the_nice_value(server):
    """cpu-priority= is the daemon's nice value, lower than Apache's too (it
    is set while the process is still root); without it the daemon runs at
    Apache's."""
    assert probe(server, 'tuned')['nice'] == 7
    assert probe(server, 'favoured')['nice'] == -4
    assert probe(server, 'plain')['nice'] == probe(server, 'embedded')['nice']


def test_cpu_priority_covers_every_thread(server):
    """Every thread of the process runs at that priority (on Linux the nice
    value is per thread)."""
    pid = probe(server, 'tuned')['pid']
    nices = set()
    for tid in os.listdir('/proc/%d/task' % pid):
        with open('/proc/%d/task/%s/stat' % (pid, tid)) as f:
            nices.add(int(f.read().rsplit(')', 1)[1].split()[16]))
    assert nices == {7}


# -- virtual-memory-limit --------------------------------------------------------------

def test_virtual_memory_limit(server):
    """virtual-memory-limit= caps the address space: an allocation past it
    fails with MemoryError and the process serves on."""
    data = probe(server, 'tuned', 'alloc=%d' % (2 << 30))
    assert data['rlimit_as'] == [1500000000, 1500000000]
    assert data['alloc'] == 'MemoryError'
    again = probe(server, 'tuned', 'alloc=%d' % (10 << 20))
    assert again['alloc'] == 'ok 10485760' and again['pid'] == data['pid']
    assert probe(server, 'plain')['rlimit_as'][0] == -1


# -- send-buffer-size, receive-buffer-size ---------------------------------------------------

def child_ends(daemon_inodes):
    """{peer inode: (tb, rb)} of the sockets connected to ``daemon_inodes``
    (the Apache children's ends of the daemon's connections), from ss."""
    out = subprocess.run(['ss', '-xmH'], stdout=subprocess.PIPE, text=True, check=True).stdout
    ends = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 9 or fields[0] != 'u_str' or not fields[-1].startswith('skmem:('):
            continue
        peer = int(fields[-2])
        if peer in daemon_inodes:
            mem = dict((m[:2], m[2:]) for m in fields[-1][len('skmem:('):-1].split(','))
            ends[peer] = (int(mem['tb']), int(mem['rb']))
    return ends


def test_socket_buffer_sizes_at_both_ends(server):
    """send-buffer-size= sizes the buffers for data from the daemon (its
    SO_SNDBUF, the Apache child's SO_RCVBUF), receive-buffer-size= those
    for data to it (the child's SO_SNDBUF, its SO_RCVBUF). Linux reports
    twice the size asked for."""
    data = probe(server, 'tuned', 'sockets=1')
    assert data['sockets'], data
    assert {(snd, rcv) for _, snd, rcv in data['sockets']} == {(2 * SEND, 2 * RECEIVE)}
    ends = child_ends({inode for inode, _, _ in data['sockets']})
    assert ends and set(ends.values()) == {(2 * RECEIVE, 2 * SEND)}, ends
    plain = probe(server, 'plain', 'sockets=1')['sockets']
    assert plain and all((snd, rcv) != (2 * SEND, 2 * RECEIVE) for _, snd, rcv in plain)


def system_limit(name):
    with open('/proc/sys/net/core/%s' % name) as f:
        return int(f.read())


def test_buffer_size_over_the_system_cap_is_warned_about_once(server):
    cap = min(system_limit('wmem_max'), system_limit('rmem_max'))
    if cap >= BIG:
        pytest.skip('this system allows socket buffers of %d bytes' % BIG)
    lines = [l for l in server.error_log().splitlines() if 'WSGIDaemonProcess bigbuf option send-buffer-size=' in l]
    assert len(lines) == 1 and '[wsgi:warn' in lines[0], lines
    assert 'is more than the system allows' in lines[0] and 'raise net.core.' in lines[0]


# -- socket-user ----------------------------------------------------------------------------

def group_socket(server, index):
    """The socket of the group defined index-th (0-based), process slot 0."""
    sockets = [s for s in du.daemon_sockets(server) if s.endswith('.%d.0.sock' % index)]
    assert len(sockets) == 1, du.daemon_sockets(server)
    return sockets[0]


HELLO_AS_NOBODY = r'''
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(bytes.fromhex(sys.argv[2]))
data = b''
while len(data) < 70:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.hex())
'''


def test_socket_user_owns_the_socket_and_alone_may_use_it(server):
    """socket-user= gives the group's socket to that user: the daemon
    answers a connection from it, and Apache's children (who run as
    www-data) can no longer connect: 503."""
    nobodys = group_socket(server, list(GROUPS).index('nobodys'))
    st = os.stat(nobodys)
    assert (st.st_uid, st.st_mode & 0o777) == (NOBODY.pw_uid, 0o700)
    assert os.stat(group_socket(server, 0)).st_uid == harness.WWW_UID
    # A process of that user gets the daemon's Challenge.
    p = subprocess.run([harness.PYTHON, '-c', HELLO_AS_NOBODY, nobodys, du.hello_frame().hex()],
                       user=NOBODY.pw_uid, group=NOBODY.pw_gid, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0, p.stderr
    assert du.is_challenge(bytes.fromhex(p.stdout.decode())), p.stdout
    offset = server.log_size()
    assert server.get('/nobodys').status == 503
    assert server.wait_for_log('Permission denied', offset), server.log_since(offset)


# -- script-user, script-group ----------------------------------------------------------------

@pytest.mark.parametrize('path', ['rootdir/ok.wsgi'])
def test_script_user_runs_a_script_owned_as_required(server, path):
    r = server.get('/byuser/' + path)
    assert (r.status, r.body) == (200, b'ran')


@pytest.mark.parametrize('path,why', [
    ('rootdir/nobodys.wsgi', 'the script has owner id %d, not script-user=root (id 0)' % NOBODY.pw_uid),
    ('rootdir/groupwrite.wsgi', 'the script is writable by its group'),
    ('rootdir/worldwrite.wsgi', 'the script is writable by anyone'),
    ('groupdir/ok.wsgi', 'its directory is writable by its group'),
    ('worlddir/ok.wsgi', 'its directory is writable by anyone'),
    ('nobodydir/ok.wsgi', 'its directory has owner id %d' % NOBODY.pw_uid),
])
def test_script_user_forbids_other_scripts(server, path, why):
    """script-user=: a script not owned by that user, or writable by its
    group or anyone, or in a directory that is, gives 403 and never runs."""
    offset = server.log_size()
    r = server.get('/byuser/' + path)
    assert r.status == 403 and b'ran' not in r.body
    log = server.log_since(offset)
    assert "may not run in daemon process group 'byuser': " + why in log, log


@pytest.mark.parametrize('path', ['admdir/ok.wsgi'])
def test_script_group_runs_a_script_of_that_group(server, path):
    """script-group=: the group may write the script and its directory."""
    r = server.get('/bygroup/' + path)
    assert (r.status, r.body) == (200, b'ran')


@pytest.mark.parametrize('path,why', [
    ('admdir/rootgroup.wsgi', 'the script has group id 0, not script-group=adm (id %d)' % ADM),
    ('admdir/worldwrite.wsgi', 'the script is writable by anyone'),
    ('admworlddir/ok.wsgi', 'its directory is writable by anyone'),
    ('rootgroupdir/ok.wsgi', 'its directory has group id 0'),
])
def test_script_group_forbids_other_scripts(server, path, why):
    offset = server.log_size()
    r = server.get('/bygroup/' + path)
    assert r.status == 403 and b'ran' not in r.body
    log = server.log_since(offset)
    assert "may not run in daemon process group 'bygroup': " + why in log, log


# -- bad values fail apache2 -t -------------------------------------------------------------

@pytest.mark.parametrize('options,expected', [
    ('cpu-priority=-21', 'option cpu-priority= must be a whole number from -20'),
    ('cpu-priority=high', 'option cpu-priority= must be a whole number from -20'),
    ('virtual-memory-limit=-1', 'option virtual-memory-limit= must be a whole number'),
    ('virtual-memory-limit=1G', 'option virtual-memory-limit= must be a whole number'),
    ('send-buffer-size=100', 'option send-buffer-size= must be 0 (for the system\'s default) or a whole number of bytes of at least 512'),
    ('receive-buffer-size=x', 'option receive-buffer-size= must be 0'),
    ('socket-user=mwrs-no-such-user', "WSGIDaemonProcess g: user 'mwrs-no-such-user' does not exist"),
    ('script-user=mwrs-no-such-user', "WSGIDaemonProcess g: user 'mwrs-no-such-user' does not exist"),
    ('script-group=mwrs-no-such-group', "WSGIDaemonProcess g: group 'mwrs-no-such-group' does not exist"),
    ('script-user=root script-group=adm', 'give only one of script-user= and script-group='),
    ('socket-user=', 'option socket-user= takes a name or #id'),
])
def test_bad_values_fail_config_test(options, expected):
    harness.assert_config_refused('WSGIDaemonProcess g %s\n' % options, expected, name='dsetcfg')
