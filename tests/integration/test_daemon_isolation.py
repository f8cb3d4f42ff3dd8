"""Daemon groups are kept apart (daemon review 2.1).

* Listening sockets: a daemon process holds its own slot's socket and no
  other (else code in one group could accept() another group's
  connections and answer them); an Apache child holds none after
  child_init.  Checked from inside, by an application that lists the
  listening UNIX sockets of its own process, and from outside through
  /proc/PID/fd.
* Secrets: the module keeps every group's secret in one private mapping
  that shows in /proc/PID/maps as "/memfd:mod_wsgi_rs secrets".  An Apache
  child (which needs them all) is where the test reads them; then every
  readable byte of each daemon's memory is searched: its own group's secret
  is there, no other group's is, with socket rotation on and off (off also
  keeps a copy on Apache's process pool to survive graceful restarts).
"""
import os
import re

import pytest

from harness import Apache
import daemon_util as du

CONFIG = r"""
WSGISocketRotation %s
WSGIDaemonProcess iso_a processes=2 threads=2 display-name=%%{GROUP}
WSGIDaemonProcess iso_b processes=1 threads=2 display-name=%%{GROUP}
WSGIScriptAlias /a {apps}/daemon/lifeprobe.wsgi process-group=iso_a
WSGIScriptAlias /b {apps}/daemon/lifeprobe.wsgi process-group=iso_b
WSGIScriptAlias /embedded {apps}/daemon/lifeprobe.wsgi
"""

GROUP_INDEX = {'iso_a': 0, 'iso_b': 1}
SECRET_LEN = 32
SECRETS_MAPPING = 'mod_wsgi_rs secrets'


@pytest.fixture(scope='module', params=['On', 'Off'])
def server(request):
    with du.running(CONFIG % request.param, 'diso', {'iso_a': 2, 'iso_b': 1}) as a:
        yield a


def socket_name(path):
    """The daemon socket a listening socket's bound name refers to: its
    file name (a socket is bound in a private directory, then renamed)."""
    return os.path.basename(path)


def group_of(name):
    """The group index in wsgi.<pid>.<generation>.<group>.<slot>.sock."""
    m = re.match(r'wsgi\.\d+\.[^.]+\.(\d+)\.(\d+)\.sock', name)
    assert m, name
    return int(m.group(1))


def serving_pids(server, path, count):
    """Sends overlapping ``path?sockets`` requests (each needs a connection
    of its own, and new connections go round the slots) until ``count``
    different processes answered; returns {pid: their listening UNIX
    sockets}."""
    seen = {}

    def more():
        for status, data, _ in du.burst(server, path + '?sockets&sleep=0.2', 4):
            assert status == 200, status
            seen[data['pid']] = data['sockets']
        return len(seen) >= count
    assert du.wait_for(more, timeout=30, interval=0), seen
    return seen


def listening_unix_inodes():
    """inode -> bound name of every listening UNIX socket (/proc/net/unix)."""
    out = {}
    with open('/proc/net/unix') as f:
        next(f)
        for line in f:
            fields = line.split()
            flags, inode = int(fields[3], 16), int(fields[6])
            if flags & 0x10000 and len(fields) > 7:  # __SO_ACCEPTCON
                out[inode] = fields[7]
    return out


def held_daemon_sockets(pid, listening, names):
    """The daemon sockets (by name) among the fds of pid."""
    held = []
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        m = re.match(r'socket:\[(\d+)\]', target)
        if m and int(m.group(1)) in listening:
            name = socket_name(listening[int(m.group(1))])
            if name in names:
                held.append(name)
    return sorted(held)


def test_each_process_holds_only_its_own_socket(server):
    names = {os.path.basename(p) for p in du.daemon_sockets(server)}
    assert len(names) == 3, names
    for group, path, count in (('iso_a', '/a', 2), ('iso_b', '/b', 1)):
        for pid, sockets in serving_pids(server, path, count).items():
            assert len(sockets) == 1, (group, pid, sockets)
            own = socket_name(sockets[0])
            assert own in names and group_of(own) == GROUP_INDEX[group], (group, own)
    # The slots' sockets went one to each process.
    held = [serving_pids(server, '/a', 2), serving_pids(server, '/b', 1)]
    assert len({socket_name(s[0]) for seen in held for s in seen.values()}) == 3
    # Code in an Apache child (an embedded app) holds none.
    assert du.get_json(server, '/embedded?sockets')['sockets'] == []
    # And from outside: no Apache child, and each daemon exactly one.
    listening = listening_unix_inodes()
    children = server.child_pids()
    assert children
    for pid in children:
        assert held_daemon_sockets(pid, listening, names) == [], pid
    for group in GROUP_INDEX:
        for pid in du.daemon_pids(server, group):
            held = held_daemon_sockets(pid, listening, names)
            assert len(held) == 1 and group_of(held[0]) == GROUP_INDEX[group], (group, pid, held)


def readable_memory(pid):
    """(start, name, bytes) of every readable mapping of pid."""
    with open('/proc/%d/maps' % pid) as f:
        maps = f.read().splitlines()
    with open('/proc/%d/mem' % pid, 'rb', buffering=0) as mem:
        for line in maps:
            fields = line.split(None, 5)
            if fields[1][0] != 'r':
                continue
            name = fields[5] if len(fields) > 5 else ''
            start, end = (int(x, 16) for x in fields[0].split('-'))
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except OSError:
                continue  # [vvar] and the like
            yield start, name, data


def secret_entries(pid):
    """The secrets mapping of pid, as a list of 32-byte entries (by group
    index), or None if it has none."""
    for _, name, data in readable_memory(pid):
        if SECRETS_MAPPING in name:
            return [data[i:i + SECRET_LEN] for i in range(0, len(GROUP_INDEX) * SECRET_LEN, SECRET_LEN)]
    return None


def test_daemons_keep_only_their_own_secret(server):
    child = server.child_pids()[0]
    secrets = secret_entries(child)
    assert secrets is not None, 'no %r mapping in Apache child %d' % (SECRETS_MAPPING, child)
    # An Apache child holds every group's secret: it talks to all of them.
    assert all(any(s) for s in secrets), secrets
    assert len(set(secrets)) == len(secrets)
    for group, index in GROUP_INDEX.items():
        for pid in du.daemon_pids(server, group):
            found = {i: 0 for i in range(len(secrets))}
            for _, _, data in readable_memory(pid):
                for i, secret in enumerate(secrets):
                    found[i] += data.count(secret)
            assert found[index] >= 1, (group, pid, 'own secret not found: the scan is broken')
            others = {i: n for i, n in found.items() if i != index and n}
            assert others == {}, (group, pid, 'holds the secrets of groups', others)
