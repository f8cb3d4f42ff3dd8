# Daemon-mode example app: reports which process served the request and
# the daemon-related environ keys as JSON.  VERSION is rewritten by the
# script-reloading test.
import json
import os
import threading

VERSION = 'v1'


def application(environ, start_response):
    data = {
        'version': VERSION,
        'pid': os.getpid(),
        'ppid': os.getppid(),
        'uid': os.getuid(),
        'euid': os.geteuid(),
        'gid': os.getgid(),
        'thread': threading.get_ident(),
        'process_group': environ.get('mod_wsgi.process_group'),
        'application_group': environ.get('mod_wsgi.application_group'),
        'multithread': environ.get('wsgi.multithread'),
        'multiprocess': environ.get('wsgi.multiprocess'),
        'run_once': environ.get('wsgi.run_once'),
        'script_name': environ.get('SCRIPT_NAME'),
        'path_info': environ.get('PATH_INFO'),
        'server_name': environ.get('SERVER_NAME'),
        'http_host': environ.get('HTTP_HOST'),
    }
    body = json.dumps(data, sort_keys=True).encode('utf-8')
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
