# Written by mod_wsgi-express (mod_wsgi-rs {{ s.version }}) each time it sets up
# this server root. WSGIImportScript loads it into every process that runs
# the application, before the first request.
{%- if s.handler_mounts_app() %}
# WSGIScriptAlias also mounts it: it loads the application named by
# --entry-point and hands requests to it.
{%- endif %}
import os

os.environ['MOD_WSGI_EXPRESS'] = 'true'
os.environ['MOD_WSGI_SERVER_NAME'] = {{ s.host_name()|python }}
os.environ['MOD_WSGI_SERVER_ALIASES'] = {{ s.o.server_aliases.join(" ")|python }}
{%- if s.monitor_modules %}
os.environ['MOD_WSGI_RELOADER_ENABLED'] = 'true'
{%- endif %}
{%- match s.o.application_type %}
{%- when ApplicationType::Module %}

import importlib

_entry = importlib.import_module({{ s.entry_point|python }})
application = getattr(_entry, {{ s.o.callable_object|python }})
_entry_file = getattr(_entry, '__file__', None)
{%- when ApplicationType::Paste %}

from paste.deploy import loadapp

application = loadapp('config:' + {{ s.entry_point|python }})
_entry_file = {{ s.entry_point|python }}
{%- when _ %}
_entry_file = None
{%- endmatch %}
{%- if s.monitor_modules || s.monitor_entry %}

import signal
import sys
import threading
import time


def _source(path):
    return path[:-1] if path.endswith(('.pyc', '.pyo')) else path


def _watch(every_module, interval=1.0):
    """Once a watched file changes (or goes), asks this daemon process to
    restart: SIGINT makes it finish its requests and exit, and Apache starts
    a fresh one that loads the new code."""
    seen = {}
    started = time.time()

    def changed(path):
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return path in seen
        if path not in seen:
            seen[path] = mtime
            # Changed since this process started, before it was first looked
            # at (a date in the future is clock skew, not a change).
            return started < mtime <= time.time()
        return seen[path] != mtime

    while True:
        paths = [_entry_file] if _entry_file else []
        if every_module:
            paths += [_source(m.__file__) for m in list(sys.modules.values())
                      if isinstance(getattr(m, '__file__', None), str)]
        for path in paths:
            if changed(path):
                print('mod_wsgi-express (pid %d): %s changed; restarting'
                      % (os.getpid(), path), file=sys.stderr)
                os.kill(os.getpid(), signal.SIGINT)
                return
        time.sleep(interval)


threading.Thread(target=_watch, args=({% if s.monitor_modules %}True{% else %}False{% endif %},),
                 name='mod_wsgi-express monitor', daemon=True).start()
{%- endif %}
