# Reports the WSGI environ plus facts about the hosting process and Python
# runtime as JSON.  Values that are not JSON-friendly are reported by type.
import json
import os
import sys
import threading
import time


def _plain(value):
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode('latin-1')
    return '<%s>' % type(value).__name__


def application(environ, start_response):
    # ?sleep=SECONDS keeps the worker busy (used to spread requests over
    # several processes).
    query = environ.get('QUERY_STRING', '')
    if query.startswith('sleep='):
        time.sleep(float(query[6:]))
    env = {}
    types = {}
    for key, value in environ.items():
        env[key] = _plain(value)
        types[key] = type(value).__name__
    data = {
        'environ': env,
        'types': types,
        'process': {
            'pid': os.getpid(),
            'ppid': os.getppid(),
            'uid': os.getuid(),
            'euid': os.geteuid(),
            'gid': os.getgid(),
            'thread': threading.get_ident(),
        },
        'python': {
            'version': list(sys.version_info[:3]),
            'prefix': sys.prefix,
            'base_prefix': sys.base_prefix,
            'exec_prefix': sys.exec_prefix,
            'path': list(sys.path),
            'optimize': sys.flags.optimize,
            'hash_randomization': sys.flags.hash_randomization,
            'dont_write_bytecode': sys.dont_write_bytecode,
            'flags_dont_write_bytecode': sys.flags.dont_write_bytecode,
            'warnoptions': list(sys.warnoptions),
            'debug': __debug__,
            'hash_probe': hash('mwrs-hash-probe'),
            'argv': list(getattr(sys, 'argv', [])),
            'os_environ_has_PATH': 'PATH' in environ,
        },
    }
    body = json.dumps(data, sort_keys=True).encode('utf-8')
    start_response('200 OK', [
        ('Content-Type', 'application/json'),
        ('Content-Length', str(len(body))),
        ('X-Method', environ.get('REQUEST_METHOD', '')),
    ])
    return [body]
