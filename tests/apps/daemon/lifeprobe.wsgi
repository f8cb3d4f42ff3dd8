# Reports facts about the process and thread serving the request, as JSON,
# for the daemon lifecycle and isolation tests.  The query string picks:
#   sockets       the listening UNIX sockets this process holds (by path):
#                 what its code could accept() connections on
#   sigblk        the signal mask a program started by the app inherits
#                 (SigBlk of `cat /proc/self/status`, run by subprocess)
#   stack         this thread's stack size in bytes
#   depth=N       json.dumps of a list nested N deep (C recursion)
#   hang=thread   leave a non-daemon thread running that never ends
#   hang=atexit   register an atexit handler that never returns
#   sleep=S       sleep S seconds first
# Every answer includes the pid and the script's modification time (ns)
# when this process loaded it.
import atexit
import ctypes
import json
import os
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import parse_qs


LOADED = os.stat(__file__).st_mtime_ns


def listening_unix_sockets():
    paths = []
    for name in os.listdir('/proc/self/fd'):
        fd = int(name)
        try:
            if not os.readlink('/proc/self/fd/%d' % fd).startswith('socket:'):
                continue
            s = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if s.family == socket.AF_UNIX and s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                paths.append(s.getsockname())
        finally:
            s.close()
    return sorted(paths)


def child_sigblk():
    out = subprocess.run(['cat', '/proc/self/status'], stdout=subprocess.PIPE, check=True).stdout
    for line in out.decode().splitlines():
        if line.startswith('SigBlk:'):
            return line.split()[1]
    return None


class _Attr(ctypes.Structure):
    _fields_ = [('data', ctypes.c_byte * 64)]


def thread_stack_size():
    libc = ctypes.CDLL(None)
    libc.pthread_self.restype = ctypes.c_ulong
    attr = _Attr()
    size = ctypes.c_size_t()
    if libc.pthread_getattr_np(ctypes.c_ulong(libc.pthread_self()), ctypes.byref(attr)) != 0:
        return None
    try:
        libc.pthread_attr_getstacksize(ctypes.byref(attr), ctypes.byref(size))
    finally:
        libc.pthread_attr_destroy(ctypes.byref(attr))
    return size.value


def nested_json(depth):
    sys.setrecursionlimit(max(sys.getrecursionlimit(), depth + 1000))
    value = []
    for _ in range(depth):
        value = [value]
    return len(json.dumps(value))


def hang(how):
    if how == 'thread':
        threading.Thread(target=time.sleep, args=(3600,), daemon=False).start()
    elif how == 'atexit':
        atexit.register(time.sleep, 3600)


def application(environ, start_response):
    qs = parse_qs(environ.get('QUERY_STRING', ''), keep_blank_values=True)
    if 'sleep' in qs:
        time.sleep(float(qs['sleep'][0]))
    data = {'pid': os.getpid(), 'group': environ.get('mod_wsgi.process_group'), 'loaded': LOADED}
    if 'sockets' in qs:
        data['sockets'] = listening_unix_sockets()
    if 'sigblk' in qs:
        data['sigblk'] = child_sigblk()
    if 'stack' in qs:
        data['stack'] = thread_stack_size()
    if 'depth' in qs:
        data['json_length'] = nested_json(int(qs['depth'][0]))
    if 'hang' in qs:
        hang(qs['hang'][0])
    body = json.dumps(data).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
