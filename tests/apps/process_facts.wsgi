# Reports where and how the serving process runs, as JSON: the facts the
# daemon options and interpreter settings decide.
import builtins
import json
import os
import sys


def application(environ, start_response):
    with open('/proc/self/cmdline', 'rb') as f:
        title = f.read().split(b'\0')[0].decode('utf-8', 'replace')
    data = {
        'pid': os.getpid(),
        'cwd': os.getcwd(),
        'title': title,
        'path': list(sys.path),
        'lang': os.environ.get('LANG'),
        'lc_all': os.environ.get('LC_ALL'),
        'switch_interval': sys.getswitchinterval(),
        'process_group': environ.get('mod_wsgi.process_group'),
        'application_group': environ.get('mod_wsgi.application_group'),
        'script_name': environ.get('SCRIPT_NAME'),
        # Set by import_marker.wsgi when a WSGIImportScript loaded it here.
        'imported_pid': getattr(builtins, '_mwrs_imported', {}).get('pid'),
    }
    body = json.dumps(data, sort_keys=True).encode('utf-8')
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
