# Reports how the process that runs it was set up (identity, umask,
# working directory, environment, limits, Python settings) as JSON, and
# does one of a few things first when asked, by query string:
#   status=N          answer with status N and the body "app-body-N"
#   started=T         write state/started-T before anything slow, so a test
#                     can wait for "the request is running"
#   sleep=S           sleep S seconds (releasing the GIL)
#   hold_gil=S        sleep S seconds in C while holding the GIL
#   done=T            write state/done-T once the above are over
#   alloc=N           try to allocate N bytes; reports "ok" or the error
#   atexit=T          register an atexit handler writing state/atexit-T-PID
#   import=NAME       import module NAME; reports its __file__ or the error
#   spawn=same|new    start /bin/sleep 1000 in this session or a new one and
#                     leave it running; reports its pid
#   sockets=1         report the accepted UNIX stream connections the
#                     process holds (in a daemon: those from Apache's
#                     children): inode, SO_SNDBUF and SO_RCVBUF of each
import atexit
import ctypes
import json
import locale
import os
import resource
import socket
import stat
import subprocess
import sys
import time
from urllib.parse import parse_qs

STATE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'state')


def write_state(name, text):
    path = os.path.join(STATE, name)
    with open(path + '.tmp', 'w') as f:
        f.write(text)
    os.rename(path + '.tmp', path)


def umask():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('Umask:'):
                return line.split()[1]
    return None


def unix_stream_connections():
    """[inode, SO_SNDBUF, SO_RCVBUF] of every UNIX stream connection this
    process accepted: connected, and named after the socket it came in on
    (a socket pair has no name)."""
    found = []
    for name in os.listdir('/proc/self/fd'):
        try:
            fd = os.dup(int(name))
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISSOCK(st.st_mode):
                continue
            with socket.socket(fileno=fd) as sock:
                fd = None
                if (sock.family == socket.AF_UNIX and sock.type == socket.SOCK_STREAM
                        and not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                        and sock.getsockname()):
                    found.append([st.st_ino, sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
                                  sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)])
        finally:
            if fd is not None:
                os.close(fd)
    return found


def application(environ, start_response):
    qs = {k: v[0] for k, v in parse_qs(environ.get('QUERY_STRING', '')).items()}
    if 'started' in qs:
        write_state('started-' + qs['started'], str(os.getpid()))
    if 'sleep' in qs:
        time.sleep(float(qs['sleep']))
    if 'hold_gil' in qs:
        # PyDLL calls keep the GIL, unlike CDLL.
        ctypes.PyDLL(None).sleep(int(qs['hold_gil']))
    if 'done' in qs:
        write_state('done-' + qs['done'], str(os.getpid()))
    if 'status' in qs:
        body = b'app-body-' + qs['status'].encode()
        start_response('%s App Status' % qs['status'], [('Content-Type', 'text/plain'),
                                                        ('Content-Length', str(len(body)))])
        return [body]
    data = {
        'pid': os.getpid(),
        'ppid': os.getppid(),
        'uid': os.getuid(),
        'euid': os.geteuid(),
        'gid': os.getgid(),
        'egid': os.getegid(),
        'groups': sorted(os.getgroups()),
        'umask': umask(),
        'cwd': os.getcwd(),
        'env': {k: os.environ.get(k) for k in ('HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL',
                                               'PYTHON_EGG_CACHE')},
        'lc_ctype': locale.setlocale(locale.LC_CTYPE),
        'rlimit_data': list(resource.getrlimit(resource.RLIMIT_DATA)),
        'rlimit_as': list(resource.getrlimit(resource.RLIMIT_AS)),
        'nice': os.getpriority(os.PRIO_PROCESS, 0),
        'switch_interval': sys.getswitchinterval(),
        'path': list(sys.path),
        'prefix': sys.prefix,
        'base_prefix': sys.base_prefix,
        'version': list(sys.version_info[:2]),
        'process_group': environ.get('mod_wsgi.process_group'),
    }
    if 'alloc' in qs:
        try:
            block = bytearray(int(qs['alloc']))
            data['alloc'] = 'ok %d' % len(block)
            del block
        except MemoryError:
            data['alloc'] = 'MemoryError'
    if 'atexit' in qs:
        name = 'atexit-%s-%d' % (qs['atexit'], os.getpid())
        atexit.register(write_state, name, 'ran')
    if 'spawn' in qs:
        child = subprocess.Popen(['/bin/sleep', '1000'], start_new_session=qs['spawn'] == 'new')
        data['spawned'] = child.pid
    if 'sockets' in qs:
        data['sockets'] = unix_stream_connections()
    if 'import' in qs:
        try:
            data['import'] = __import__(qs['import']).__file__
        except Exception as e:  # noqa: BLE001 - reported to the test
            data['import'] = 'ERROR %s' % type(e).__name__
    body = json.dumps(data, sort_keys=True).encode('utf-8')
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
